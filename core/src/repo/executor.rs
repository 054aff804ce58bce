//! [`Executor`]: the threads that run document work (change closures, automerge loading and
//! saving) off the async runtime.
//!
//! Each document is pinned to one thread by its id, so its work runs in order and two
//! threads never contend for its lock. Under load a thread finds its next job already queued
//! and nothing has to be woken; tokio's blocking pool, by contrast, wakes an idle thread for
//! every job, which on small (virtual) machines costs more than a small change itself
//! (see BENCHMARKS.md).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Mutex, PoisonError, mpsc},
};

use tokio::sync::oneshot;

use crate::{DocumentId, Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads, one job queue each, started on first use.
#[derive(Debug)]
pub(crate) struct Executor {
    queues: Mutex<Vec<Option<mpsc::Sender<Job>>>>,
}

impl Executor {
    /// An executor of `threads` threads (at least one). They stop when it is dropped.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            queues: Mutex::new(vec![None; threads.max(1)]),
        }
    }

    /// One thread per core.
    pub(crate) fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    fn queue(&self, document: DocumentId) -> Result<mpsc::Sender<Job>> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = document.as_bytes();
        let key = u64::from_le_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15],
        ]);
        let index = (key % queues.len() as u64) as usize;
        if let Some(queue) = &queues[index] {
            return Ok(queue.clone());
        }
        let (sender, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("weft-doc-{index}"))
            .spawn(move || {
                for job in jobs {
                    // A job reports its own panic; the thread must survive it.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(|error| Error::Internal(format!("cannot start a document thread: {error}")))?;
        queues[index] = Some(sender.clone());
        Ok(sender)
    }

    /// Queues `job` on the thread of `document` now, without waiting for it; the job reports
    /// its own outcome (and panics).
    pub(crate) fn execute(
        &self,
        document: DocumentId,
        job: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        self.queue(document)?
            .send(Box::new(job))
            .map_err(|_| Error::Internal("the document thread stopped".to_owned()))
    }

    /// Waits until every job queued so far, on every thread, has run.
    pub(crate) async fn drain(&self) {
        let queues: Vec<mpsc::Sender<Job>> = self
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flatten()
            .cloned()
            .collect();
        let mut done = Vec::new();
        for queue in queues {
            let (sender, finished) = oneshot::channel::<()>();
            // Jobs of one thread run in order: this one runs after all queued before it.
            if queue.send(Box::new(move || drop(sender))).is_ok() {
                done.push(finished);
            }
        }
        for finished in done {
            let _ = finished.await;
        }
    }

    /// Queues `work` on the thread of `document` **now** (jobs of one document run in the
    /// order they were queued) and returns a future of its result. A panic in `work` is caught
    /// and returned as [`Error::Panicked`]; the thread carries on.
    pub(crate) fn run<R, F>(
        &self,
        document: DocumentId,
        work: F,
    ) -> impl Future<Output = Result<R>> + Send + use<R, F>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
        });
        let queued = self.queue(document).and_then(|queue| {
            queue
                .send(job)
                .map_err(|_| Error::Internal("the document thread stopped".to_owned()))
        });
        async move {
            queued?;
            match result.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(panic)) => Err(Error::from_panic(panic.as_ref())),
                Err(_) => Err(Error::Internal("the document thread stopped".to_owned())),
            }
        }
    }
}
