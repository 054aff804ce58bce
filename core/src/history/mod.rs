//! A document's history as an event log: who changed what and when, the document as it
//! was at any change or time, the difference between two points, and who wrote which part
//! of a text.
//!
//! Every automerge change is kept with its author, time and message, so this is a view of
//! what the document already holds: nothing extra is stored. The methods are on
//! [`DocHandle`](crate::DocHandle) (`history`, `heads_at_time`, `view_at`, `diff`,
//! `blame`, `change_with`); this module holds their types and the work they do on the
//! document's thread.

pub(crate) mod as_of;
pub(crate) mod author;
pub(crate) mod blame;
pub(crate) mod listing;
pub(crate) mod undo;
pub(crate) mod undo_stack;

pub use blame::BlameSpan;
pub use listing::{ChangeInfo, HistoryPage};

/// What a local change records besides its operations (see
/// [`DocHandle::change_with`](crate::DocHandle::change_with)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeOptions {
    /// A message describing the change, shown in its history ("renamed the list").
    pub message: Option<String>,
    /// When it was made, in seconds since the Unix epoch; `None` (the default) stamps it
    /// with this machine's clock. Set it to import changes with their original times.
    pub time: Option<i64>,
    /// Whether [`DocHandle::undo`](crate::DocHandle::undo) may take it back (true by
    /// default). A change that is not undoable leaves the redo stack as it is.
    pub undoable: bool,
    /// Where the change goes on the undo stacks.
    pub(crate) step: undo_stack::StepKind,
}

impl Default for ChangeOptions {
    fn default() -> Self {
        Self {
            message: None,
            time: None,
            undoable: true,
            step: undo_stack::StepKind::Edit,
        }
    }
}

impl ChangeOptions {
    /// Options with a message.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// These options, stamped with `time` instead of the clock.
    pub fn at(mut self, time: i64) -> Self {
        self.time = Some(time);
        self
    }

    /// These options, for a change that undo leaves alone (a migration, a counter the app
    /// keeps).
    pub fn not_undoable(mut self) -> Self {
        self.undoable = false;
        self
    }

    /// Options for the change that takes back the newest step of the stack `step`.
    pub(crate) fn taking_back(step: undo_stack::StepKind) -> Self {
        let message = match step {
            undo_stack::StepKind::Redo => "redo",
            _ => "undo",
        };
        Self {
            step,
            ..Self::message(message)
        }
    }

    /// Where the change goes on the undo stacks.
    pub(crate) fn step_kind(&self) -> undo_stack::StepKind {
        match self.step {
            undo_stack::StepKind::Edit if !self.undoable => undo_stack::StepKind::NotUndoable,
            step => step,
        }
    }

    /// automerge's commit options for these: the time now unless one is given.
    pub(crate) fn commit_options(&self) -> automerge::transaction::CommitOptions {
        let mut options = automerge::transaction::CommitOptions::default()
            .with_time(self.time.unwrap_or_else(now_seconds));
        if let Some(message) = &self.message {
            options = options.with_message(message.clone());
        }
        options
    }
}

/// The time now, in seconds since the Unix epoch, as automerge-repo stamps changes.
pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// How many units of `encoding` `text` takes (the units text positions count in).
pub(crate) fn units(encoding: automerge::TextEncoding, text: &str) -> usize {
    use automerge::TextEncoding;
    match encoding {
        TextEncoding::Utf8CodeUnit => text.len(),
        TextEncoding::Utf16CodeUnit => text.encode_utf16().count(),
        // Grapheme clusters are refused by the repo (see `RepoConfig::text_encoding`).
        TextEncoding::UnicodeCodePoint | TextEncoding::GraphemeCluster => text.chars().count(),
    }
}
