//! # weft
//!
//! An offline-first, multi-leader CRDT sync engine. Every device is a local leader: the app
//! writes [automerge] documents on the device, persisted in SQLite, with or without a
//! network. Nothing waits for a server.
//!
//! ```no_run
//! use weft::{Repo, automerge::{ROOT, ReadDoc, transaction::Transactable}};
//!
//! # async fn demo() -> weft::Result<()> {
//! let repo = Repo::open("notes.db").await?;
//! let doc = repo.create().await?;
//! let saved = doc
//!     .change(|tx| {
//!         tx.put(ROOT, "title", "groceries")?;
//!         Ok(())
//!     })
//!     .await?; // resolves once the change is committed to SQLite
//! println!("{} is at {:?}", doc.url(), saved.heads);
//! let title = doc.with_doc(|d| d.get(ROOT, "title").ok().flatten().map(|(v, _)| v.to_string()));
//! # Ok(()) }
//! ```
//!
//! The parts, one module each: [`id`] (document ids and `automerge:` URLs, compatible with
//! automerge-repo), [`store`] (the [`Storage`](store::Storage) trait, SQLite and in-memory
//! backends), the repo API ([`Repo`], [`DocHandle`], [`DocEvent`]), [`access`] (reading and
//! writing by path, without closures), [`sync`] (the sans-IO protocol engine), [`wire`]
//! (automerge-repo's messages), [`net`] (WebSockets) and [`observe`] (measurements).

#![warn(missing_docs)]

pub mod access;
mod error;
pub mod history;
pub mod id;
pub mod net;
pub mod observe;
mod repo;
pub mod store;
pub mod sync;
pub mod wire;

/// The README's Rust code compiles (checked as a doctest).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub use automerge;
pub use error::{Error, Result};
pub use history::{BlameSpan, ChangeInfo, ChangeOptions, HistoryPage};
pub use id::{AutomergeUrl, DocumentId, PeerId, StorageId};
pub use repo::{
    Archived, ChangeOrigin, Committed, CompactionPolicy, DocChange, DocEvent, DocHandle,
    DocSubscription, HistoricView, HistorySize, MOVED_TO, Repo, RepoConfig, Role, Transport,
};
