//! The history methods of [`DocHandle`]: the change log, the document at a time, diffs and
//! blame (see [`history`](crate::history)). Each runs on the document's thread.

use automerge::{
    ChangeHash, ObjType, Patch, ROOT, ReadDoc, error::UpdateObjectError, transaction::Transactable,
};

use crate::{ChangeOptions, Committed, DocumentId, MOVED_TO, history::undo_stack::StepKind};

use super::{doc_handle::DocHandle, historic_view::HistoricView};
use crate::{
    BlameSpan, Error, HistoryPage, Result,
    access::{self, Path, object},
    history::{as_of, blame, listing},
};

impl DocHandle {
    /// Up to `limit` changes of the document's history, newest first, starting from `from`
    /// (heads; `None`: the document as it is now). Pass the page's
    /// [`next`](HistoryPage::next) as `from` for the page after. A page costs about the
    /// same however long the history is. Fails with [`Error::UnknownHeads`] if `from`
    /// names a change the document does not have.
    ///
    /// "Newest" follows the changes' causal order: a change is always listed before the
    /// changes it builds on; concurrent changes come in the order automerge numbered their
    /// operations, which follows their times only as far as the devices' clocks agree.
    pub async fn history(
        &self,
        from: Option<Vec<ChangeHash>>,
        limit: usize,
    ) -> Result<HistoryPage> {
        let id = self.id();
        self.read(move |doc| {
            let from = from.unwrap_or_else(|| doc.get_heads());
            listing::list(doc, &from, limit).map_err(|missing| Error::UnknownHeads {
                document: id,
                missing,
            })
        })
        .await?
    }

    /// The heads of the document as it was at `time` (seconds since the Unix epoch): every
    /// change stamped at or before it, with what those build on. Empty if the document is
    /// younger. Reads the metadata of the whole history (no change is rebuilt).
    pub async fn heads_at_time(&self, time: i64) -> Result<Vec<ChangeHash>> {
        self.read(move |doc| as_of::heads_at_time(doc, time)).await
    }

    /// A read-only view of the document as it was at `time` (see
    /// [`heads_at_time`](Self::heads_at_time) and [`view_at`](Self::view_at)).
    pub async fn view_at_time(&self, time: i64) -> Result<HistoricView> {
        let heads = self.heads_at_time(time).await?;
        self.view_at(&heads)
    }

    /// What changed from `from` to `to` (heads; either may be older, and `from` empty is
    /// the empty document), as automerge patches with paths from the root. Fails with
    /// [`Error::UnknownHeads`] if either names a change the document does not have.
    pub async fn diff(&self, from: Vec<ChangeHash>, to: Vec<ChangeHash>) -> Result<Vec<Patch>> {
        let id = self.id();
        self.read(move |doc| diff_checked(doc, id, &from, &to))
            .await?
    }

    /// [`diff`](Self::diff) by path, with plain values ([`access::Patch`]): for printing,
    /// storing or sending on, and for the bindings.
    pub async fn diff_by_path(
        &self,
        from: Vec<ChangeHash>,
        to: Vec<ChangeHash>,
    ) -> Result<Vec<access::Patch>> {
        let id = self.id();
        self.read(move |doc| {
            let patches = diff_checked(doc, id, &from, &to)?;
            Ok(access::Patch::from_automerge(&patches))
        })
        .await?
    }

    /// Takes back this replica's newest change to the document that is not undone yet, as a
    /// new change (message "undo") that syncs like any other; `None` if there is nothing to
    /// undo. A step whose every effect others have overwritten since is used up with no
    /// new change (`change: None`). It takes back only what still holds: values and text others put or wrote since,
    /// concurrently or later, stay (see [`history`](crate::history) for the rules). Each
    /// change made through [`change`](Self::change) or [`edit`](Self::edit) (unless
    /// [`not_undoable`](ChangeOptions::not_undoable)) is one step; the steps live in memory
    /// while the document is loaded. Fails with [`Error::CannotUndo`] (the step stays) for
    /// a change that formats text.
    pub async fn undo(&self) -> Result<Option<Committed<()>>> {
        self.take_back(StepKind::Undo).await
    }

    /// Takes back the newest undo (message "redo"); `None` if there is nothing to redo. A
    /// new change of the app's empties the redo stack.
    pub async fn redo(&self) -> Result<Option<Committed<()>>> {
        self.take_back(StepKind::Redo).await
    }

    /// Whether [`undo`](Self::undo) has a step to take back.
    pub fn can_undo(&self) -> bool {
        self.document.undo_depths.can_undo()
    }

    /// Whether [`redo`](Self::redo) has a step to take back.
    pub fn can_redo(&self) -> bool {
        self.document.undo_depths.can_redo()
    }

    /// Makes the document's current state equal its state at `heads` (from
    /// [`history`](Self::history) or [`heads_at_time`](Self::heads_at_time)), as one new
    /// change (message "restore") that syncs like any other and can be undone. History is
    /// kept: nothing is removed, and peers' concurrent edits merge with it as usual. Text
    /// is restored as the smallest set of splices; list items by position. Fails with
    /// [`Error::UnknownHeads`] if a head is not in the document.
    pub async fn restore(&self, heads: Vec<ChangeHash>) -> Result<Committed<()>> {
        let id = self.id();
        let missing = self
            .read({
                let heads = heads.clone();
                move |doc| as_of::missing_heads(doc, &heads)
            })
            .await?;
        if !missing.is_empty() {
            return Err(Error::UnknownHeads {
                document: id,
                missing,
            });
        }
        self.change_or(
            move |tx| {
                // Where an archived document continues is kept: it is not part of a state.
                let moved_to = tx.get(ROOT, MOVED_TO)?.map(|(value, _)| value.into_owned());
                let earlier = tx.hydrate(ROOT, Some(&heads))?;
                tx.update_object(&ROOT, &earlier)
                    .map_err(|error| match error {
                        UpdateObjectError::Automerge(error) => Error::Automerge(error),
                        other => Error::Internal(other.to_string()),
                    })?;
                if let Some(automerge::Value::Scalar(to)) = moved_to
                    && tx.get(ROOT, MOVED_TO)?.is_none()
                {
                    tx.put(ROOT, MOVED_TO, to.into_owned())?;
                }
                Ok::<_, Error>(())
            },
            ChangeOptions::message("restore"),
        )
        .await
    }

    async fn take_back(&self, step: StepKind) -> Result<Option<Committed<()>>> {
        let document = self.document.clone();
        let id = self.id();
        let committed = self
            .change_or(
                move |tx| {
                    document
                        .undo_stacks()
                        .take_back(tx, step)
                        .map_err(|reason| Error::CannotUndo {
                            document: id,
                            reason: reason.0,
                        })
                },
                ChangeOptions::taking_back(step),
            )
            .await?;
        Ok(committed.value.then_some(Committed {
            value: (),
            heads: committed.heads,
            change: committed.change,
        }))
    }

    /// Who wrote which part of the text at `path`, as it is now: runs of characters by one
    /// author (or, for changes without one, one actor), in order, covering the text. Fails
    /// with [`Error::InvalidPath`] if `path` is not a text.
    pub async fn blame(&self, path: Path) -> Result<Vec<BlameSpan>> {
        self.read(move |doc| match object(doc, &path)? {
            (text, ObjType::Text) => Ok(blame::blame(doc, &text)),
            _ => Err(path.error("this is not a text")),
        })
        .await?
    }
}

/// automerge's diff, after checking that the document has both sets of heads (automerge
/// does not report heads it lacks as an error).
fn diff_checked(
    doc: &automerge::Automerge,
    id: DocumentId,
    from: &[ChangeHash],
    to: &[ChangeHash],
) -> Result<Vec<Patch>> {
    let mut missing = as_of::missing_heads(doc, from);
    missing.extend(as_of::missing_heads(doc, to));
    if !missing.is_empty() {
        return Err(Error::UnknownHeads {
            document: id,
            missing,
        });
    }
    Ok(doc.diff(from, to))
}
