//! [`HistoricView`]: a read-only view of a document at earlier heads.

use std::sync::Arc;

use automerge::{Automerge, ChangeHash, ReadDoc, hydrate};

use super::document::Document;
use crate::{Error, Result};

/// A document as it was at some heads. Reads go to the live document's history (automerge's
/// `*_at` reads), so making a view copies nothing; [`fork`](Self::fork) makes an owned copy.
#[derive(Debug, Clone)]
pub struct HistoricView {
    document: Arc<Document>,
    heads: Vec<ChangeHash>,
}

impl HistoricView {
    pub(crate) fn new(document: Arc<Document>, heads: &[ChangeHash]) -> Result<Self> {
        let missing: Vec<ChangeHash> = {
            let state = document.read();
            heads
                .iter()
                .filter(|head| state.doc.get_change_meta_by_hash(head).is_none())
                .copied()
                .collect()
        };
        if !missing.is_empty() {
            return Err(Error::UnknownHeads {
                document: document.id,
                missing,
            });
        }
        Ok(Self {
            document,
            heads: heads.to_vec(),
        })
    }

    /// The heads this view shows.
    pub fn heads(&self) -> &[ChangeHash] {
        &self.heads
    }

    /// Reads the document with automerge's `*_at` methods at [`heads`](Self::heads), e.g.
    /// `view.read(|doc, heads| doc.text_at(&text, heads))`. Holds the document's read lock.
    pub fn read<R>(&self, read: impl FnOnce(&Automerge, &[ChangeHash]) -> R) -> R {
        read(&self.document.read().doc, &self.heads)
    }

    /// The whole document at these heads as a plain value tree.
    pub fn hydrate(&self) -> hydrate::Value {
        self.read(|doc, heads| doc.hydrate(Some(heads)))
    }

    /// The text of `obj` at these heads.
    pub fn text(&self, obj: &automerge::ObjId) -> Result<String> {
        Ok(self.read(|doc, heads| doc.text_at(obj, heads))?)
    }

    /// An owned, independent copy of the document at these heads.
    pub fn fork(&self) -> Result<Automerge> {
        Ok(self.read(|doc, heads| doc.fork_at(heads))?)
    }
}
