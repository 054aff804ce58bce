//! The tokio runtime the bindings own, and running work on it.

use std::{
    future::Future,
    sync::{Mutex, MutexGuard, OnceLock, PoisonError},
};

use tokio::runtime::Runtime;

use crate::WeftError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime, started on first use: two worker threads (sync, sockets, waiting for
/// commits) plus tokio's blocking pool (listeners).
pub(crate) fn runtime() -> Result<&'static Runtime, WeftError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("weft")
                .enable_all()
                .build()
                .map_err(|error| format!("the weft runtime could not start: {error}"))
        })
        .as_ref()
        .map_err(|error| WeftError::Internal(error.clone()))
}

/// Runs `work` on the runtime and waits for it from whatever drives the caller (a Kotlin
/// coroutine, a Swift task, Python's event loop). If the caller gives up waiting, the work
/// still finishes: a change being written is not cut short.
pub(crate) async fn run<T, F>(work: F) -> Result<T, WeftError>
where
    F: Future<Output = Result<T, WeftError>> + Send + 'static,
    T: Send + 'static,
{
    runtime()?
        .spawn(work)
        .await
        .map_err(|error| WeftError::Internal(format!("a weft task failed: {error}")))?
}

/// Locks `mutex`, also after a panic elsewhere while it was held (what it guards stays
/// consistent: every critical section here is a single push, take or retain).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
