//! Bounding a document's history: [`Repo::archive`] archives a document and continues it
//! in a new one (the why and what peers see are on that method).

use std::path::{Path, PathBuf};

use automerge::{
    AutomergeError, ObjType, ROOT, ReadDoc, error::UpdateObjectError, transaction::Transactable,
};

use super::{doc_handle::DocHandle, repo::Repo};
use crate::{AutomergeUrl, ChangeOptions, DocumentId, Error, Result};

/// The key of the root map that names the document's successor.
pub const MOVED_TO: &str = "weft:moved_to";

/// A document's history, measured (see [`DocHandle::history_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySize {
    /// How many changes it holds.
    pub changes: usize,
    /// How many operations they hold.
    pub operations: u64,
}

/// What [`Repo::archive`] did.
#[derive(Debug)]
pub struct Archived {
    /// The new document, holding the current state as its only change.
    pub continued: DocHandle,
    /// The file holding the old document whole.
    pub archive: PathBuf,
    /// How long the old history was.
    pub archived: HistorySize,
}

impl DocHandle {
    /// How long the document's history is. Reads every change's metadata (no change is
    /// rebuilt); the bytes it takes in storage are in [`Repo::list`]'s metadata.
    pub async fn history_size(&self) -> Result<HistorySize> {
        self.read(|doc| {
            let metas = doc.get_changes_meta(&[]);
            HistorySize {
                changes: metas.len(),
                operations: metas
                    .iter()
                    .map(|m| (m.max_op + 1).saturating_sub(m.start_op))
                    .sum(),
            }
        })
        .await
    }

    /// The document that continues this one, if it was archived (see [`Repo::archive`]).
    pub fn moved_to(&self) -> Option<AutomergeUrl> {
        self.with_doc(|doc| {
            let (value, _) = doc.get(ROOT, MOVED_TO).ok()??;
            value.into_string().ok()?.parse().ok()
        })
    }
}

impl Repo {
    /// Bounds a document's history: archives document `id` whole to the file `archive`
    /// and continues it in a new document that holds its current state as one change
    /// (returned); the old document gets a last change naming the new one
    /// ([`MOVED_TO`], read with [`DocHandle::moved_to`]).
    ///
    /// automerge cannot drop history from a document safely (changes name what they build
    /// on by hash; a document rebuilt from its state has new object ids, which duplicate
    /// and conflict when merged with old copies), so nothing is rewritten under an existing
    /// id and sync with peers holding the old history never breaks. A peer offline since
    /// before the move syncs the old document as before: its offline edits merge into the
    /// old document, not the new one, and it learns the new URL from the marker; carrying
    /// such late edits over is the app's decision. Delete the old document once every peer
    /// has moved (a peer that still has it and syncs it with a relay that deleted it
    /// stores it there again).
    ///
    /// Fails with [`Error::Archive`] if the file exists or cannot be written (nothing else
    /// is done then), and with [`Error::DocumentMoved`] if the document was archived
    /// already.
    pub async fn archive(&self, id: DocumentId, archive: impl AsRef<Path>) -> Result<Archived> {
        let _one_at_a_time = self.shared.archiving.lock().await;
        let old = self.find(id).await?;
        if let Some(to) = old.moved_to() {
            return Err(Error::DocumentMoved { document: id, to });
        }
        let archived = old.history_size().await?;
        // The archive and the new document hold the same state: one read of both. Changes
        // that arrive after it stay in the old document (with the marker).
        let (bytes, state) = old.read(|doc| (doc.save(), doc.hydrate(None))).await?;
        let archive = archive.as_ref().to_owned();
        write_new_file(&archive, &bytes).await?;
        let continued = self
            .create_with(move |tx| {
                tx.update_object(&ROOT, &state)
                    .map_err(|error| match error {
                        UpdateObjectError::Automerge(error) => error,
                        // The root is a map on both sides.
                        UpdateObjectError::ChangeType => AutomergeError::InvalidOp(ObjType::Map),
                    })
            })
            .await?;
        let to = continued.url().to_string();
        old.change_with(
            ChangeOptions::message(format!("moved to {to}")).not_undoable(),
            move |tx| tx.put(ROOT, MOVED_TO, to),
        )
        .await?;
        Ok(Archived {
            continued,
            archive,
            archived,
        })
    }
}

/// Writes `bytes` to a new file and makes it durable.
async fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let (path, bytes) = (path.to_owned(), bytes.to_vec());
    let path_shown = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })
    .await
    .map_err(|error| Error::Internal(error.to_string()))?
    .map_err(|error| Error::Archive {
        path: path_shown,
        reason: error.to_string(),
    })
}
