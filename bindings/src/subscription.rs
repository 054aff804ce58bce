//! [`Subscription`]: a listener's registration, stopped on close or when dropped.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use tokio::task::AbortHandle;
use tokio_stream::{Stream, StreamExt};

use crate::{
    WeftError,
    runtime::{lock, runtime},
};

/// A listener's registration. The listener is called until `cancel` is called or this
/// object is freed (Kotlin's `close()`, or garbage collection in Kotlin and Python: keep a
/// reference while listening).
#[derive(Debug, uniffi::Object)]
pub struct Subscription {
    task: Mutex<Option<AbortHandle>>,
    /// Checked before each call: a delivery already handed to a blocking thread when the
    /// task is aborted still runs, and must not call the listener.
    cancelled: Arc<AtomicBool>,
}

#[uniffi::export]
impl Subscription {
    /// Stops the listener. A call already under way (or starting at this moment) finishes;
    /// no other follows.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Subscription {
    /// Delivers what `source` yields to `deliver`, one at a time and in order, each on a
    /// blocking thread (the host's listener may be slow, or take a lock such as Python's
    /// GIL), until `source` ends or the subscription is cancelled. A listener that raises is
    /// logged and called again with the next item.
    pub(crate) fn start<S, D>(mut source: S, deliver: D) -> Result<Self, WeftError>
    where
        S: Stream + Unpin + Send + 'static,
        S::Item: Send + 'static,
        D: Fn(S::Item) -> Result<(), WeftError> + Send + Sync + 'static,
    {
        let cancelled = Arc::new(AtomicBool::new(false));
        let stop = cancelled.clone();
        // Shared by the calls, not copied for each (it may hold a document handle).
        let deliver = Arc::new(deliver);
        let task = runtime()?.spawn(async move {
            while let Some(item) = source.next().await {
                let deliver = deliver.clone();
                let stop = stop.clone();
                let call = move || {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    deliver(item)
                };
                match tokio::task::spawn_blocking(call).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "a listener failed"),
                    Err(error) => tracing::warn!(%error, "a listener panicked"),
                }
            }
        });
        Ok(Self {
            task: Mutex::new(Some(task.abort_handle())),
            cancelled,
        })
    }
}
