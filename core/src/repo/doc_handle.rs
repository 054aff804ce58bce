//! [`DocHandle`]: the app's handle on one document.

use std::{
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
};

use automerge::{Automerge, AutomergeError, ChangeHash, transaction::Transaction};

use tokio::sync::oneshot;

use super::{
    doc_event::DocSubscription,
    document::{Change, Document},
    historic_view::HistoricView,
    sync_driver::Command,
};
use crate::{
    AutomergeUrl, ChangeOptions, DocumentId, Error, Result,
    access::{self, Edit, Path, Value},
};

/// A local change that is committed to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<R> {
    /// What the change closure returned.
    pub value: R,
    /// The document's heads after the change. (For a change that wrote nothing, the current
    /// heads, which may include other changes still being written.)
    pub heads: Vec<ChangeHash>,
    /// The hash of the new change; `None` if the closure changed nothing (nothing was
    /// written).
    pub change: Option<ChangeHash>,
}

/// A cheap, clonable handle on a loaded document.
///
/// All handles of a document share one in-memory automerge document; it is unloaded when
/// the last handle is dropped and no connected peer syncs it.
#[derive(Debug)]
pub struct DocHandle {
    pub(crate) document: Arc<Document>,
}

impl Clone for DocHandle {
    fn clone(&self) -> Self {
        Self::new(self.document.clone())
    }
}

impl Drop for DocHandle {
    fn drop(&mut self) {
        self.document.handle_dropped();
    }
}

impl DocHandle {
    pub(crate) fn new(document: Arc<Document>) -> Self {
        document.handle_made();
        Self { document }
    }

    /// The document's id.
    pub fn id(&self) -> DocumentId {
        self.document.id
    }

    /// The document's `automerge:` URL, as automerge-repo peers name it.
    pub fn url(&self) -> AutomergeUrl {
        AutomergeUrl::new(self.document.id)
    }

    /// Reads the document in place, without copying it.
    ///
    /// This takes the document's read lock on the calling thread: it waits while a change is
    /// being applied, and a change waits for it. Keep the closure short, and do not call
    /// other methods of this document's handles or views inside it (the lock is not
    /// re-entrant). For long reads from async code use [`read`](Self::read).
    pub fn with_doc<R>(&self, read: impl FnOnce(&Automerge) -> R) -> R {
        read(&self.document.read().doc)
    }

    /// Reads the document on the document's own thread, so that a long read never stalls
    /// the async runtime (it does delay other work of documents on that thread).
    pub fn read<R, F>(&self, read: F) -> impl Future<Output = Result<R>> + Send + use<R, F>
    where
        F: FnOnce(&Automerge) -> R + Send + 'static,
        R: Send + 'static,
    {
        let document = self.document.clone();
        self.document
            .repo
            .executor
            .run(self.document.id, move || read(&document.read().doc))
    }

    /// The document's current heads (without taking the document's lock).
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.document.heads()
    }

    /// Changes the document; the returned future resolves once the change is committed to
    /// storage.
    ///
    /// The change is queued when `change` is called, so changes are applied in the order of
    /// the calls even when their futures are awaited later or together: an editor can keep
    /// applying keystrokes while earlier ones are being written, and concurrent changes share
    /// one SQLite transaction (group commit).
    ///
    /// The closure runs on the document's thread, never on the async runtime, inside an
    /// automerge transaction. If it returns an error (or panics) the transaction is rolled
    /// back and nothing is written. Otherwise the change is applied in memory, subscribers get
    /// a [`DocEvent::Changed`](crate::DocEvent::Changed), and the future resolves once the
    /// change is in SQLite (or the in-memory store), with the new heads.
    ///
    /// If the write fails the error is returned; the change stays in the document and is
    /// written again with the next change or compaction, so it is not lost while the process
    /// lives.
    pub fn change<R, F>(
        &self,
        change: F,
    ) -> impl Future<Output = Result<Committed<R>>> + Send + use<R, F>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<R, AutomergeError> + Send + 'static,
        R: Send + 'static,
    {
        self.change_or(change, ChangeOptions::default())
    }

    /// [`change`](Self::change) with a message for the document's history, or a time other
    /// than now.
    pub fn change_with<R, F>(
        &self,
        options: ChangeOptions,
        change: F,
    ) -> impl Future<Output = Result<Committed<R>>> + Send + use<R, F>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<R, AutomergeError> + Send + 'static,
        R: Send + 'static,
    {
        self.change_or(change, options)
    }

    /// The first change of a document this replica does not have (see
    /// [`Repo::create_with_id`](crate::Repo::create_with_id)).
    pub(crate) fn first_change<F>(
        &self,
        init: F,
    ) -> impl Future<Output = Result<Committed<()>>> + Send + use<F>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<(), AutomergeError> + Send + 'static,
    {
        self.apply(init, Change::First, ChangeOptions::default())
    }

    /// [`change`](Self::change) with a closure that fails with any error that becomes
    /// weft's (rolled back as well).
    pub(crate) fn change_or<R, E, F>(
        &self,
        change: F,
        options: ChangeOptions,
    ) -> impl Future<Output = Result<Committed<R>>> + Send + use<R, E, F>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<R, E> + Send + 'static,
        E: Into<Error> + 'static,
        R: Send + 'static,
    {
        self.apply(change, Change::Next, options)
    }

    fn apply<R, E, F>(
        &self,
        change: F,
        kind: Change,
        options: ChangeOptions,
    ) -> impl Future<Output = Result<Committed<R>>> + Send + use<R, E, F>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<R, E> + Send + 'static,
        E: Into<Error> + 'static,
        R: Send + 'static,
    {
        let document = self.document.clone();
        let target = document.clone();
        let (caller, outcome) = oneshot::channel();
        // Nothing is queued once the repo is closed.
        let queued = if document.repo.is_closed() {
            Err(Error::Closed)
        } else {
            document.repo.executor.execute(document.id, move || {
                let mut caller = Some(caller);
                let applied = catch_unwind(AssertUnwindSafe(|| {
                    target.apply_local(change, &mut caller, kind, &options);
                }));
                if let (Err(panic), Some(caller)) = (applied, caller) {
                    let _ = caller.send(Err(Error::from_panic(panic.as_ref())));
                }
            })
        };
        async move {
            queued?;
            let committed = outcome
                .await
                .map_err(|_| Error::Internal("the document thread stopped".to_owned()))??;
            if committed.change.is_some() && document.claim_compaction() {
                document.spawn_claimed_compaction();
            }
            Ok(committed)
        }
    }

    /// What `path` holds (see [`access`](crate::access)): `None` if its last segment names
    /// nothing (a missing key, an index past the end). Fails with [`Error::InvalidPath`] if
    /// the path is malformed or goes through something that is not there or not a map or
    /// list. Takes the document's read lock, like [`with_doc`](Self::with_doc).
    pub fn get(&self, path: &Path) -> Result<Option<Value>> {
        self.with_doc(|doc| access::get(doc, path))
    }

    /// The keys of the map at `path`, in order.
    pub fn keys(&self, path: &Path) -> Result<Vec<String>> {
        self.with_doc(|doc| access::keys(doc, path))
    }

    /// How many keys the map, items the list or units the text at `path` has (text in the
    /// repo's [`text_encoding`](crate::RepoConfig::text_encoding)).
    pub fn length(&self, path: &Path) -> Result<usize> {
        self.with_doc(|doc| access::length(doc, path))
    }

    /// The whole document as JSON: maps as objects, lists as arrays, text as strings,
    /// counters and timestamps as numbers, bytes as arrays of numbers.
    pub fn json(&self) -> Result<String> {
        self.with_doc(access::json)
    }

    /// Applies `edits` in order as one change, committed to storage when the future
    /// resolves (as [`change`](Self::change)). If an edit fails, nothing is kept and the
    /// error names its path.
    pub fn edit(
        &self,
        edits: Vec<Edit>,
    ) -> impl Future<Output = Result<Committed<()>>> + Send + use<> {
        self.edit_with(edits, ChangeOptions::default())
    }

    /// [`edit`](Self::edit) with a message for the document's history, or a time other than
    /// now.
    pub fn edit_with(
        &self,
        edits: Vec<Edit>,
        options: ChangeOptions,
    ) -> impl Future<Output = Result<Committed<()>>> + Send + use<> {
        self.change_or(
            move |tx| edits.iter().try_for_each(|edit| access::apply(tx, edit)),
            options,
        )
    }

    /// Sends an ephemeral payload (presence, a cursor) to the document's peers, which
    /// pass it on to theirs; they see it as [`DocEvent::Ephemeral`](crate::DocEvent). It is
    /// not part of the document and is never stored; with no peer connected it goes nowhere.
    /// automerge-repo apps expect the payload to be CBOR.
    pub fn broadcast(&self, data: Vec<u8>) {
        if let Some(sync) = self.document.repo.sync.get() {
            sync.send(Command::Broadcast {
                document: self.document.clone(),
                data,
            });
        }
    }

    /// Subscribes to the document's change events.
    pub fn subscribe(&self) -> DocSubscription {
        DocSubscription::new(self.document.events.subscribe())
    }

    /// A read-only view of the document as it was at `heads` (its history is the log of every
    /// change). Fails with [`Error::UnknownHeads`] if a head is not in the document.
    pub fn view_at(&self, heads: &[ChangeHash]) -> Result<HistoricView> {
        HistoricView::new(self.document.clone(), heads)
    }

    /// The whole document as automerge bytes (`Automerge::save`), which any automerge
    /// implementation loads.
    pub async fn export(&self) -> Result<Vec<u8>> {
        self.read(Automerge::save).await
    }

    /// Folds the document's incremental chunks into a new snapshot now, instead of waiting
    /// for the compaction policy.
    pub async fn compact(&self) -> Result<()> {
        self.document.compact().await
    }
}
