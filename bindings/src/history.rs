//! A document's history through the bindings: its changes with author, time and message,
//! the document at earlier heads or at a time, who wrote which part of a text, undo and
//! redo of this device's changes, and restoring an earlier state. Change hashes are hex.

use std::{str::FromStr, sync::Arc};

use weft::{ChangeOptions, access, automerge::ChangeHash};

use crate::{Document, Repo, WeftError, runtime::run, values::Edit};

/// One change of a document's history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChangeRecord {
    /// Its hash (hex): its identity everywhere.
    pub hash: String,
    /// The author the writing device claimed (`RepoOptions.author`); null if none.
    pub author: Option<String>,
    /// When it was made, in seconds since the Unix epoch (0 if not stamped).
    pub time: i64,
    /// The message it was made with, if any.
    pub message: Option<String>,
    /// How many operations it holds.
    pub operations: u64,
    /// The changes it builds on (hex).
    pub deps: Vec<String>,
}

/// A page of a document's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryPage {
    /// The changes, newest first.
    pub changes: Vec<ChangeRecord>,
    /// Pass as `from` for the next page; null at the beginning of the history. These are
    /// also the heads of the document as it was before this page's oldest change.
    pub next: Option<Vec<String>>,
}

/// A run of a text written by one author (or, without authors, one actor).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BlameSpan {
    /// Where it starts, in the repo's text unit.
    pub start: u64,
    /// Where it ends (exclusive).
    pub end: u64,
    /// The author's user id, if the changes name one.
    pub author: Option<String>,
    /// The changes that wrote it (hex).
    pub changes: Vec<String>,
    /// When the newest of them was made (seconds since the Unix epoch).
    pub time: i64,
}

pub(crate) fn parse_heads(heads: &[String]) -> Result<Vec<ChangeHash>, WeftError> {
    heads
        .iter()
        .map(|head| {
            ChangeHash::from_str(head)
                .map_err(|_| WeftError::InvalidPath(format!("{head:?} is not a change hash")))
        })
        .collect()
}

fn hex(heads: &[ChangeHash]) -> Vec<String> {
    heads.iter().map(ToString::to_string).collect()
}

#[uniffi::export]
impl Document {
    /// Up to `limit` changes, newest first, from `from` (heads; null: now). A page costs
    /// about the same however long the history is.
    pub async fn history(
        &self,
        from: Option<Vec<String>>,
        limit: u32,
    ) -> Result<HistoryPage, WeftError> {
        let from = from.as_deref().map(parse_heads).transpose()?;
        let handle = self.handle.clone();
        run(async move {
            let page = handle.history(from, limit as usize).await?;
            Ok(HistoryPage {
                changes: page
                    .changes
                    .into_iter()
                    .map(|change| ChangeRecord {
                        hash: change.hash.to_string(),
                        author: change.author,
                        time: change.time,
                        message: change.message,
                        operations: change.ops,
                        deps: hex(&change.deps),
                    })
                    .collect(),
                next: page.next.as_deref().map(hex),
            })
        })
        .await
    }

    /// The heads of the document as it was at `time` (seconds since the Unix epoch); empty
    /// if it is younger.
    pub async fn heads_at_time(&self, time: i64) -> Result<Vec<String>, WeftError> {
        let handle = self.handle.clone();
        run(async move { Ok(hex(&handle.heads_at_time(time).await?)) }).await
    }

    /// The whole document as it was at `heads`, as JSON (like `to_json`).
    pub async fn to_json_at(&self, heads: Vec<String>) -> Result<String, WeftError> {
        let heads = parse_heads(&heads)?;
        let handle = self.handle.clone();
        // On the runtime: making a view takes the document's read lock.
        run(async move { Ok(handle.view_at(&heads)?.json().await?) }).await
    }

    /// Who wrote which part of the text at `path`, in order, covering it.
    pub async fn blame(&self, path: String) -> Result<Vec<BlameSpan>, WeftError> {
        let path = access::Path::parse(&path)?;
        let handle = self.handle.clone();
        run(async move {
            Ok(handle
                .blame(path)
                .await?
                .into_iter()
                .map(|span| BlameSpan {
                    start: span.start as u64,
                    end: span.end as u64,
                    author: span.author,
                    changes: hex(&span.changes),
                    time: span.time,
                })
                .collect())
        })
        .await
    }

    /// Applies `edits` as one change with `message` in the history (see `apply`).
    pub async fn apply_with_message(
        &self,
        edits: Vec<Edit>,
        message: String,
    ) -> Result<(), WeftError> {
        let edits = self.convert(edits)?;
        let committed = self
            .handle
            .edit_with(edits, ChangeOptions::message(message));
        run(async move { Ok(committed.await.map(drop)?) }).await
    }

    /// Takes back this device's newest change that is not undone yet, as a new change; what
    /// others wrote since stays. False if there was nothing to undo. (A step whose every
    /// effect others have overwritten since is used up with no new change, and counts as
    /// done.)
    pub async fn undo(&self) -> Result<bool, WeftError> {
        let handle = self.handle.clone();
        run(async move { Ok(handle.undo().await?.is_some()) }).await
    }

    /// Takes back the newest undo. False if there was nothing to redo.
    pub async fn redo(&self) -> Result<bool, WeftError> {
        let handle = self.handle.clone();
        run(async move { Ok(handle.redo().await?.is_some()) }).await
    }

    /// Whether `undo` has a change to take back.
    pub fn can_undo(&self) -> bool {
        self.handle.can_undo()
    }

    /// Whether `redo` has an undo to take back.
    pub fn can_redo(&self) -> bool {
        self.handle.can_redo()
    }

    /// Makes the document equal its state at `heads`, as one new change (history is kept,
    /// and the restore can be undone).
    pub async fn restore(&self, heads: Vec<String>) -> Result<(), WeftError> {
        let heads = parse_heads(&heads)?;
        let handle = self.handle.clone();
        run(async move { Ok(handle.restore(heads).await.map(drop)?) }).await
    }

    /// The document that continues this one if it was archived (its `automerge:` URL).
    pub fn moved_to(&self) -> Option<String> {
        self.handle.moved_to().map(|url| url.to_string())
    }
}

#[uniffi::export]
impl Repo {
    /// Writes the document whole to the file `archive_path` and continues it in a new
    /// document holding its current state as one change (returned); the old one names the
    /// new one (`moved_to`), so peers follow. Bounds history growth without breaking sync.
    pub async fn archive(
        &self,
        id_or_url: String,
        archive_path: String,
    ) -> Result<Arc<Document>, WeftError> {
        let id = weft::AutomergeUrl::parse_document_id(&id_or_url)?;
        let repo = self.inner.clone();
        run(async move {
            let archived = repo.archive(id, archive_path).await?;
            Ok(Document::new(archived.continued))
        })
        .await
    }
}
