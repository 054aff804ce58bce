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
    pub(crate) commit_nanos: AtomicU64,
}

pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) queue: mpsc::Receiver<WriterMessage>,
    pub(crate) max_batch: usize,
    pub(crate) commit_delay: std::time::Duration,
    pub(crate) counters: Arc<WriterCounters>,
}

impl Writer {
    /// Runs until the queue is closed or a `Close` message arrives.
    pub(crate) fn run(mut self) {
        let mut last_batch = 0;
        while let Ok(first) = self.queue.recv() {
            let mut batch = Vec::new();
            let mut close = None;
            match first {
                WriterMessage::Write(submission) => batch.push(submission),
                WriterMessage::Close(reply) => close = Some(reply),
            }
            // Take whatever else is already waiting: these share the transaction. When the
            // last transaction was shared, concurrent writers are active: give their next
            // submissions a moment to arrive (group commit delay).
            let mut waited = false;
            while close.is_none() && batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(WriterMessage::Write(submission)) => batch.push(submission),
                    Ok(WriterMessage::Close(reply)) => close = Some(reply),
                    Err(_) if !waited && last_batch > 1 && !self.commit_delay.is_zero() => {
                        waited = true;
                        match self.queue.recv_timeout(self.commit_delay) {
                            Ok(WriterMessage::Write(submission)) => batch.push(submission),
                            Ok(WriterMessage::Close(reply)) => close = Some(reply),
                            Err(_) => break,
                        }
                    }
                    Err(_) => break,
                }
            }
            last_batch = batch.len();
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
        let started = std::time::Instant::now();
        let outcome = self.apply(&batch);
        self.counters
            .commit_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(batch.len());
        for submission in batch {
            // Cached statements: rusqlite's `Savepoint` parses its SQL on every use.
            tx.prepare_cached("SAVEPOINT submission")?.execute([])?;
            let result = submission
                .writes
                .iter()
                .try_for_each(|write| queries::apply_write(&tx, write));
            if result.is_err() {
                tx.prepare_cached("ROLLBACK TO submission")?.execute([])?;
            }
            tx.prepare_cached("RELEASE submission")?.execute([])?;
            results.push(result);
        }
        tx.commit()?;
        Ok(results)
    }

    fn checkpoint(&self) -> Result<(), StorageError> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy != 0 {
            // Another connection is reading; the WAL is kept and replayed on the next open.
            tracing::info!("WAL checkpoint deferred: the database is in use");
        }
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
