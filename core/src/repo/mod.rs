//! The async API apps use: [`Repo`], [`DocHandle`], subscriptions and historic views.

mod archive;
mod awaited;
mod config;
mod doc_event;
mod doc_handle;
mod doc_history;
mod document;
mod executor;
mod historic_view;
#[allow(clippy::module_inception)]
mod repo;
mod sync_driver;
mod timed_storage;

pub use archive::{Archived, HistorySize, MOVED_TO};
pub use config::{CompactionPolicy, RepoConfig};
pub use doc_event::{ChangeOrigin, DocChange, DocEvent, DocSubscription};
pub use doc_handle::{Committed, DocHandle};
pub(crate) use document::load_untrusted;
pub use historic_view::HistoricView;
pub use repo::Repo;
pub(crate) use sync_driver::Backlog;
pub use sync_driver::{Role, Transport};
