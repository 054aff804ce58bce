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

pub use blame::BlameSpan;
pub use listing::{ChangeInfo, HistoryPage};

/// What a local change records besides its operations (see
/// [`DocHandle::change_with`](crate::DocHandle::change_with)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeOptions {
    /// A message describing the change, shown in its history ("renamed the list").
    pub message: Option<String>,
    /// When it was made, in seconds since the Unix epoch; `None` (the default) stamps it
    /// with this machine's clock. Set it to import changes with their original times.
    pub time: Option<i64>,
}

impl ChangeOptions {
    /// Options with a message.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            time: None,
        }
    }

    /// These options, stamped with `time` instead of the clock.
    pub fn at(mut self, time: i64) -> Self {
        self.time = Some(time);
        self
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
