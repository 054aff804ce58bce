//! [`HistoricView`]: a read-only view of a document at earlier heads.

use std::sync::Arc;

use automerge::{Automerge, ChangeHash, ReadDoc, hydrate};

use super::{doc_handle::DocHandle, document::Document};
use crate::{Error, Result, history::as_of::missing_heads};

/// A document as it was at some heads. Reads go to the live document's history (automerge's
/// `*_at` reads), so making a view copies nothing; [`fork`](Self::fork) makes an owned copy.
#[derive(Debug, Clone)]
pub struct HistoricView {
    document: Arc<Document>,
    /// Counts as the app's handle: a view keeps its document held and synced.
    _handle: DocHandle,
    heads: Vec<ChangeHash>,
}

impl HistoricView {
    pub(crate) fn new(document: Arc<Document>, heads: &[ChangeHash]) -> Result<Self> {
        let missing = missing_heads(&document.read().doc, heads);
        if !missing.is_empty() {
            return Err(Error::UnknownHeads {
                document: document.id,
                missing,
            });
        }
        Ok(Self {
            _handle: DocHandle::new(document.clone()),
            document,
            heads: heads.to_vec(),
        })
    }

    /// The heads this view shows.
    pub fn heads(&self) -> &[ChangeHash] {
        &self.heads
    }

    /// Reads the document with automerge's `*_at` methods at [`heads`](Self::heads), e.g.
    /// `view.read(|doc, heads| doc.text_at(&text, heads))`. Takes the document's read lock on
    /// the calling thread, like [`DocHandle::with_doc`](crate::DocHandle::with_doc).
    pub fn read<R>(&self, read: impl FnOnce(&Automerge, &[ChangeHash]) -> R) -> R {
        read(&self.document.read().doc, &self.heads)
    }

    /// Runs `read` on the document's thread (off the async runtime) at these heads.
    async fn read_off_runtime<R, F>(&self, read: F) -> Result<R>
    where
        F: FnOnce(&Automerge, &[ChangeHash]) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (document, heads) = (self.document.clone(), self.heads.clone());
        self.document
            .repo
            .executor
            .run(self.document.id, move || read(&document.read().doc, &heads))
            .await
    }

    /// The whole document at these heads as a plain value tree.
    pub async fn hydrate(&self) -> Result<hydrate::Value> {
        self.read_off_runtime(|doc, heads| doc.hydrate(Some(heads)))
            .await
    }

    /// The whole document at these heads as JSON, in the form of
    /// [`DocHandle::json`](crate::DocHandle::json).
    pub async fn json(&self) -> Result<String> {
        let value = self.hydrate().await?;
        crate::access::hydrated_json(&value)
    }

    /// The text of `obj` at these heads.
    pub async fn text(&self, obj: &automerge::ObjId) -> Result<String> {
        let obj = obj.clone();
        Ok(self
            .read_off_runtime(move |doc, heads| doc.text_at(&obj, heads))
            .await??)
    }

    /// An owned, independent copy of the document at these heads.
    pub async fn fork(&self) -> Result<Automerge> {
        Ok(self
            .read_off_runtime(|doc, heads| doc.fork_at(heads))
            .await??)
    }
}
