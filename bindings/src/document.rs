//! [`Document`]: one document, read by path and written with edits.

use std::sync::Arc;

use weft::{ChangeOrigin, DocEvent, DocHandle, access};

use crate::{
    Subscription, WeftError,
    runtime::run,
    values::{Edit, Value},
};

/// A document of a [`Repo`](crate::Repo). Reads are immediate; writes resolve once they are
/// committed to the repo's storage, and reach connected peers from there.
#[derive(Debug, uniffi::Object)]
pub struct Document {
    pub(crate) handle: DocHandle,
}

/// Something that happened to a document, for a [`DocumentListener`].
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum DocumentEvent {
    /// A change was applied: made here (`remote_peer` is null) or received from the peer
    /// named. Read the document again for its new values.
    Changed {
        /// The peer it came from (the next hop: a relay forwards others' changes); null for
        /// a change made through this repo.
        remote_peer: Option<String>,
        /// The document's heads after it (change hashes, hex).
        heads: Vec<String>,
    },
    /// The listener fell behind and `missed` events were dropped: read the document again.
    Lagged {
        /// How many.
        missed: u64,
    },
    /// The document was deleted; no more events follow.
    Deleted,
    /// A peer sent an ephemeral message about the document (presence, a cursor): not part
    /// of the document, never stored.
    Ephemeral {
        /// The peer that sent it.
        from_peer: String,
        /// The payload (automerge-repo apps send CBOR).
        data: Vec<u8>,
    },
}

/// Told about a document's events; implemented in the host language.
#[uniffi::export(foreign)]
pub trait DocumentListener: Send + Sync {
    /// Called for each event, in order, on a background thread (not the host's main or UI
    /// thread). An error it raises is logged; the next event is still delivered.
    fn on_event(&self, event: DocumentEvent) -> Result<(), WeftError>;
}

impl Document {
    pub(crate) fn new(handle: DocHandle) -> Arc<Self> {
        Arc::new(Self { handle })
    }

    /// Edits from the host, checked.
    pub(crate) fn convert(&self, edits: Vec<Edit>) -> Result<Vec<access::Edit>, WeftError> {
        edits.into_iter().map(access::Edit::try_from).collect()
    }
}

#[uniffi::export]
impl Document {
    /// The document's id (base58 text, as automerge-repo writes it).
    pub fn id(&self) -> String {
        self.handle.id().to_string()
    }

    /// The document's `automerge:` URL, which automerge-repo peers and `Repo.find` take.
    pub fn url(&self) -> String {
        self.handle.url().to_string()
    }

    /// The document's heads: the hashes (hex) of its latest changes.
    pub fn heads(&self) -> Vec<String> {
        self.handle
            .heads()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// What `path` holds (read on the calling thread: it waits while a change is being
    /// applied to this document); null if its last segment names nothing (a missing key, an index
    /// past the end). Raises `InvalidPath` if the path is malformed or goes through
    /// something that is not there or not a map or list.
    pub fn get(&self, path: String) -> Result<Option<Value>, WeftError> {
        let path = crate::values::path(&path)?;
        Ok(self.handle.get(&path)?.map(Value::from))
    }

    /// The keys of the map at `path`, in order (`""` is the document's root).
    pub fn keys(&self, path: String) -> Result<Vec<String>, WeftError> {
        Ok(self.handle.keys(&crate::values::path(&path)?)?)
    }

    /// How many keys the map, items the list, or units the text at `path` has (text in the
    /// repo's text unit).
    pub fn length(&self, path: String) -> Result<u64, WeftError> {
        Ok(self.handle.length(&crate::values::path(&path)?)? as u64)
    }

    /// The whole document as JSON text.
    pub fn to_json(&self) -> Result<String, WeftError> {
        Ok(self.handle.json()?)
    }

    /// Applies `edits` in order as one change, all or nothing; resolves once it is
    /// committed to storage. Changes are applied in the order the calls start running (in
    /// Python, when awaited): await one before starting the next to be sure of the order,
    /// or put them in one `apply`.
    pub async fn apply(&self, edits: Vec<Edit>) -> Result<(), WeftError> {
        let edits = self.convert(edits)?;
        // Queued on the document now, in the order the host's calls run; awaited on the
        // runtime, so a caller that stops waiting does not cut the write short.
        let committed = self.handle.edit(edits);
        run(async move { Ok(committed.await.map(drop)?) }).await
    }

    /// Sets a map's key, or replaces a list's item.
    pub async fn put(&self, path: String, value: Value) -> Result<(), WeftError> {
        self.apply(vec![Edit::Put { path, value }]).await
    }

    /// Inserts into a list before the index `path` ends with (`-`: at the end).
    pub async fn insert(&self, path: String, value: Value) -> Result<(), WeftError> {
        self.apply(vec![Edit::Insert { path, value }]).await
    }

    /// Removes a map's key, a list's item or one unit of text.
    pub async fn delete(&self, path: String) -> Result<(), WeftError> {
        self.apply(vec![Edit::Delete { path }]).await
    }

    /// Adds `by` to the counter at `path`.
    pub async fn increment(&self, path: String, by: i64) -> Result<(), WeftError> {
        self.apply(vec![Edit::Increment { path, by }]).await
    }

    /// Deletes `delete` units of the text at `path` from `index` on and inserts `insert`.
    pub async fn splice_text(
        &self,
        path: String,
        index: u64,
        delete: u64,
        insert: String,
    ) -> Result<(), WeftError> {
        self.apply(vec![Edit::SpliceText {
            path,
            index,
            delete,
            insert,
        }])
        .await
    }

    /// Makes the text at `path` equal `text` with the smallest splices.
    pub async fn update_text(&self, path: String, text: String) -> Result<(), WeftError> {
        self.apply(vec![Edit::UpdateText { path, text }]).await
    }

    /// The document as automerge bytes, which any automerge implementation loads.
    pub async fn export(&self) -> Result<Vec<u8>, WeftError> {
        let handle = self.handle.clone();
        run(async move { Ok(handle.export().await?) }).await
    }

    /// Sends an ephemeral message about the document to connected peers (presence, a
    /// cursor). It is never stored; with no peer connected it goes nowhere.
    pub fn broadcast(&self, data: Vec<u8>) {
        self.handle.broadcast(data);
    }

    /// Calls `listener` for each of the document's events until the subscription is cancelled
    /// or freed. The subscription keeps the document loaded.
    pub fn subscribe(
        &self,
        listener: Arc<dyn DocumentListener>,
    ) -> Result<Arc<Subscription>, WeftError> {
        let events = self.handle.subscribe();
        // The events end when the document is unloaded: hold it while subscribed.
        let keep_loaded = self.handle.clone();
        let subscription = Subscription::start(events, move |event| {
            let _ = &keep_loaded;
            listener.on_event(DocumentEvent::from(event))
        })?;
        Ok(Arc::new(subscription))
    }
}

impl From<DocEvent> for DocumentEvent {
    fn from(event: DocEvent) -> Self {
        match event {
            DocEvent::Changed(change) => Self::Changed {
                remote_peer: match change.origin {
                    ChangeOrigin::Remote { peer } => Some(peer.to_string()),
                    _ => None,
                },
                heads: change.heads.iter().map(ToString::to_string).collect(),
            },
            DocEvent::Lagged { missed } => Self::Lagged { missed },
            DocEvent::Ephemeral { from, data } => Self::Ephemeral {
                from_peer: from.to_string(),
                data,
            },
            DocEvent::Deleted => Self::Deleted,
            // An event a later version adds: reading the document again is always right.
            _ => Self::Lagged { missed: 0 },
        }
    }
}
