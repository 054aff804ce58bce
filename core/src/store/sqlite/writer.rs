//! The writer thread: one connection that applies every write, grouping the submissions
//! waiting in its queue into one transaction (group commit), so that many concurrent
//! changes share one fsync.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
    mpsc,
};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::queries;
use crate::store::{StorageError, WriteDone, WriteOp};

/// A submission waiting for the writer.
pub(crate) struct Submission {
    pub(crate) writes: Vec<WriteOp>,
    pub(crate) done: Done,
}

/// Reports a submission's outcome exactly once: with the result, or with
/// [`StorageError::Closed`] if the submission is dropped unreported (the writer stopped).
pub(crate) struct Done(Option<WriteDone>);

impl Done {
    pub(crate) fn new(done: WriteDone) -> Self {
        Self(Some(done))
    }

    fn report(mut self, result: Result<(), StorageError>) {
        if let Some(done) = self.0.take() {
            done(result);
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(StorageError::Closed));
        }
    }
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
                    submission.done.report(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, submissions = batch.len(), "storage commit failed");
                if !self.conn.is_autocommit() {
                    // Still inside the failed transaction: end it so the next batch can start.
                    if let Err(rollback) = self.conn.execute_batch("ROLLBACK") {
                        tracing::error!(%rollback, "rollback after a failed commit failed");
                    }
                }
                for submission in batch {
                    submission.done.report(Err(error.clone()));
                }
            }
        }
    }

    /// Applies each submission under its own savepoint, so one failing submission (say, an
    /// append to a deleted document) does not fail the others; then commits them all. An
    /// error that aborts the whole transaction (disk full, I/O error) fails the batch.
    fn apply(
        &mut self,
        batch: &[Submission],
    ) -> Result<Vec<Result<(), StorageError>>, StorageError> {
        if !self.conn.is_autocommit() {
            // A rollback after an earlier failure failed too: try again before going on.
            self.conn.execute_batch("ROLLBACK")?;
        }
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let mut results = Vec::with_capacity(batch.len());
        for submission in batch {
            // Cached statements: rusqlite's `Savepoint` parses its SQL on every use.
            self.conn
                .prepare_cached("SAVEPOINT submission")?
                .execute([])?;
            let result = submission
                .writes
                .iter()
                .try_for_each(|write| queries::apply_write(&self.conn, write));
            if let Err(error) = &result {
                if self.conn.is_autocommit() {
                    // SQLite rolled the whole transaction back (SQLITE_FULL, IOERR, NOMEM).
                    return Err(error.clone());
                }
                self.conn
                    .prepare_cached("ROLLBACK TO submission")?
                    .execute([])?;
            }
            self.conn
                .prepare_cached("RELEASE submission")?
                .execute([])?;
            results.push(result);
        }
        self.conn.prepare_cached("COMMIT")?.execute([])?;
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{
        DocumentId,
        store::{Chunk, ChunkKind, sqlite::schema},
    };

    /// Two submissions in one transaction: the failing one is rolled back to its savepoint,
    /// the other is committed, and each gets its own outcome.
    #[test]
    fn one_failing_submission_does_not_fail_its_batch() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut conn = Connection::open(dir.path().join("w.db")).expect("open the test database");
        conn.pragma_update(None, "foreign_keys", true)
            .expect("foreign keys");
        schema::migrate(&mut conn).expect("migrate");
        let (queue, jobs) = mpsc::channel();
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let id = DocumentId::random();
        let submissions = [
            WriteOp::CreateDocument {
                id,
                chunk: Chunk::new(ChunkKind::Snapshot, b"ok".to_vec()),
                heads: vec![],
                now: 1,
            },
            WriteOp::DeleteDocument {
                id: DocumentId::random(),
            },
        ];
        for (index, write) in submissions.into_iter().enumerate() {
            let outcomes = outcomes.clone();
            let done = Done::new(Box::new(move |result| {
                outcomes
                    .lock()
                    .expect("outcomes lock")
                    .push((index, result.is_ok()));
            }));
            queue
                .send(WriterMessage::Write(Submission {
                    writes: vec![write],
                    done,
                }))
                .expect("queue the submission");
        }
        let (closed, _) = oneshot::channel();
        queue
            .send(WriterMessage::Close(closed))
            .expect("queue close");
        let counters = Arc::new(WriterCounters::default());
        Writer {
            conn,
            queue: jobs,
            max_batch: 16,
            commit_delay: std::time::Duration::ZERO,
            counters: counters.clone(),
        }
        .run();
        assert_eq!(
            *outcomes.lock().expect("outcomes lock"),
            vec![(0, true), (1, false)]
        );
        assert_eq!(
            counters.transactions.load(Ordering::Relaxed),
            1,
            "one shared transaction"
        );
        let check = Connection::open(dir.path().join("w.db")).expect("open the test database");
        let stored: i64 = check
            .query_row("SELECT count(*) FROM chunks", [], |row| row.get(0))
            .expect("count chunks");
        assert_eq!(stored, 1);
    }
}
