//! This replica's undo and redo stacks for one document.
//!
//! Each local change made through a handle is one step on the undo stack (apps that want a
//! word or a gesture to be one step make it one change). Undo takes the newest step back as
//! a new change (see [`undo`](super::undo)) and puts that change on the redo stack; redo
//! takes it back in turn. A new change of the app's empties the redo stack. The stacks live
//! in memory with the loaded document, as editors' undo does: they are empty again when the
//! document is loaded again or the app restarts. Only this replica's own changes are on
//! them, so nobody undoes someone else's work.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use automerge::{ActorId, ChangeHash, transaction::Transaction};

use super::undo::{CannotUndo, Restored, invert};

/// How many steps each stack keeps; the oldest go first.
const MAX_STEPS: usize = 1000;

/// Which way a change moves along the stacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum StepKind {
    /// A change of the app's: a new undo step, and the redo stack is emptied.
    #[default]
    Edit,
    /// A change of the app's that is not to be undone (see `ChangeOptions::undoable`).
    NotUndoable,
    /// The change that undoes the newest undo step: a new redo step.
    Undo,
    /// The change that redoes the newest redo step: a new undo step.
    Redo,
}

/// The undo and redo stacks of one document.
#[derive(Debug, Default)]
pub(crate) struct UndoStacks {
    undo: Vec<ChangeHash>,
    redo: Vec<ChangeHash>,
    restored: Restored,
    /// What the undo or redo being committed restores (see [`Restored::record`]).
    restoring: Vec<(automerge::ObjId, usize)>,
    /// The stacks' depths, readable without their lock (which an undo holds while it
    /// inverts a change).
    depths: Arc<UndoDepths>,
}

/// How many steps each stack holds.
#[derive(Debug, Default)]
pub(crate) struct UndoDepths {
    undo: AtomicUsize,
    redo: AtomicUsize,
}

impl UndoDepths {
    /// Whether there is a step to undo.
    pub(crate) fn can_undo(&self) -> bool {
        self.undo.load(Ordering::Acquire) > 0
    }

    /// Whether there is a step to redo.
    pub(crate) fn can_redo(&self) -> bool {
        self.redo.load(Ordering::Acquire) > 0
    }
}

impl UndoStacks {
    /// The depths, to read without the stacks' lock.
    pub(crate) fn depths(&self) -> Arc<UndoDepths> {
        self.depths.clone()
    }

    fn publish(&self) {
        self.depths.undo.store(self.undo.len(), Ordering::Release);
        self.depths.redo.store(self.redo.len(), Ordering::Release);
    }

    /// Takes back the newest step of the stack `kind` (`Undo` or `Redo`) in `tx`. False if
    /// that stack is empty. If it cannot be taken back, the step stays where it was.
    pub(crate) fn take_back(
        &mut self,
        tx: &mut Transaction<'_>,
        kind: StepKind,
    ) -> Result<bool, CannotUndo> {
        let stack = match kind {
            StepKind::Undo => &mut self.undo,
            StepKind::Redo => &mut self.redo,
            StepKind::Edit | StepKind::NotUndoable => return Ok(false),
        };
        let Some(step) = stack.pop() else {
            return Ok(false);
        };
        let result = match invert(tx, &[step], &self.restored) {
            Ok(restoring) => {
                self.restoring = restoring;
                Ok(true)
            }
            Err(error) => {
                stack.push(step);
                Err(error)
            }
        };
        self.publish();
        result
    }

    /// A local change of `kind` was committed as `change` (its first operation `start_op`,
    /// by `actor`), or (`None`) made no operation.
    pub(crate) fn committed(
        &mut self,
        kind: StepKind,
        change: Option<(ChangeHash, u64, &ActorId)>,
    ) {
        let restoring = std::mem::take(&mut self.restoring);
        let Some((hash, start_op, actor)) = change else {
            return;
        };
        match kind {
            StepKind::Edit => {
                push(&mut self.undo, hash);
                self.redo.clear();
            }
            StepKind::NotUndoable => {}
            StepKind::Undo => push(&mut self.redo, hash),
            StepKind::Redo => push(&mut self.undo, hash),
        }
        self.publish();
        self.restored.record(restoring, start_op, actor);
    }
}

fn push(stack: &mut Vec<ChangeHash>, step: ChangeHash) {
    if stack.len() == MAX_STEPS {
        stack.remove(0);
    }
    stack.push(step);
}
