//! The writer thread: one connection that applies every write, grouping the submissions
//! waiting in its queue into one transaction (group commit), so that many concurrent
//! changes share one fsync.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
    mpsc,
};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::queries;
use crate::store::{StorageError, WriteOp};

/// A submission waiting for the writer.
pub(crate) struct Submission {
    pub(crate) writes: Vec<WriteOp>,
    pub(crate) done: oneshot::Sender<Result<(), StorageError>>,
}

/// What the writer thread is asked to do.
pub(crate) enum WriterMessage {
    Write(Submission),
    /// Finish what is queued, checkpoint the WAL, close the connection and stop.
    Close(oneshot::Sender<Result<(), StorageError>>),
}

/// Counters that show group commit at work.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    pub(crate) transactions: AtomicU64,
    pub(crate) submissions: AtomicU64,
}

pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) queue: mpsc::Receiver<WriterMessage>,
    pub(crate) max_batch: usize,
    pub(crate) counters: Arc<WriterCounters>,
}

impl Writer {
    /// Runs until the queue is closed or a `Close` message arrives.
    pub(crate) fn run(mut self) {
        while let Ok(first) = self.queue.recv() {
            let mut batch = Vec::new();
            let mut close = None;
            match first {
                WriterMessage::Write(submission) => batch.push(submission),
                WriterMessage::Close(reply) => close = Some(reply),
            }
            // Take whatever else is already waiting: these share the transaction.
            while close.is_none() && batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(WriterMessage::Write(submission)) => batch.push(submission),
                    Ok(WriterMessage::Close(reply)) => close = Some(reply),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit_batch(batch);
            }
            if let Some(reply) = close {
                let result = self.checkpoint();
                // The caller may have stopped waiting; nothing is lost if so.
                let _ = reply.send(result);
                return;
            }
        }
        // Every sender is gone: the storage was dropped without `close`.
        if let Err(error) = self.checkpoint() {
            tracing::warn!(%error, "WAL checkpoint on drop failed");
        }
    }

    fn commit_batch(&mut self, batch: Vec<Submission>) {
        self.counters
            .submissions
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let outcome = self.apply(&batch);
        match outcome {
            Ok(results) => {
                self.counters.transactions.fetch_add(1, Ordering::Relaxed);
                for (submission, result) in batch.into_iter().zip(results) {
                    let _ = submission.done.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, submissions = batch.len(), "storage commit failed");
                let message = error.to_string();
                for submission in batch {
                    let _ = submission.done.send(Err(same_error(&error, &message)));
                }
            }
        }
    }

    /// Applies each submission under its own savepoint, so one failing submission (say, an
    /// append to a deleted document) does not fail the others; then commits them all.
    fn apply(
        &mut self,
        batch: &[Submission],
    ) -> Result<Vec<Result<(), StorageError>>, StorageError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(batch.len());
        for submission in batch {
            let savepoint = tx.savepoint()?;
            let result = submission
                .writes
                .iter()
                .try_for_each(|write| queries::apply_write(&savepoint, write));
            if result.is_ok() {
                savepoint.commit()?;
            }
            // A savepoint dropped without commit rolls back to where it began.
            results.push(result);
        }
        tx.set_drop_behavior(rusqlite::DropBehavior::Commit);
        tx.commit()?;
        Ok(results)
    }

    fn checkpoint(&self) -> Result<(), StorageError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// A commit failure is reported to every submission of the batch.
fn same_error(error: &StorageError, message: &str) -> StorageError {
    match error {
        StorageError::DiskFull { detail } => StorageError::DiskFull {
            detail: detail.clone(),
        },
        StorageError::Corrupt { detail } => StorageError::Corrupt {
            detail: detail.clone(),
        },
        _ => StorageError::Thread(format!("commit failed: {message}")),
    }
}
