//! # weft for Kotlin, Swift and Python
//!
//! uniffi bindings, thin over [`weft`]: each type here wraps one of the engine's and
//! converts its arguments; the engine does the work. The same API is generated for every
//! language:
//!
//! - [`Repo`]: open one at a path (SQLite) or in memory; create, find, list, import and
//!   delete documents; [`connect`](Repo::connect) to a relay or a peer, and
//!   [`listen`](Repo::listen) for peers on the local network.
//! - [`Document`]: read values by path (a JSON Pointer such as `/todos/0/title`), write them
//!   with edits that resolve once they are committed to SQLite, edit text, read the whole
//!   document as JSON, and [`subscribe`](Document::subscribe) to its changes; its history:
//!   changes with author, time and message, past states, [`Patch`]es between two points,
//!   blame, undo and redo, restore.
//! - [`Connection`]: a connection the repo keeps up (reconnecting with backoff); its state,
//!   a listener for it, and `wait_connected`.
//! - [`WeftError`]: the one error type, with a message that says what went wrong.
//! - [`set_log_listener`]: weft's log records, for the app's own log.
//!
//! Async methods run on a tokio runtime this library owns (two worker threads, started on
//! first use), whatever the host's event loop: they are `suspend` functions in Kotlin,
//! `async` in Swift and coroutines in Python. Listeners are called on a blocking thread of
//! that runtime, one event at a time and in order, never on the host's main thread.
//!
//! Text positions count in the repo's [`TextUnit`]: Unicode code points by default (Python
//! `str`, Swift `unicodeScalars`); choose `Utf16CodeUnit` for Kotlin and Java strings and
//! Swift's `utf16` view.

// Arguments cross the FFI as owned values; taking them by reference would not save a copy.
#![allow(clippy::needless_pass_by_value)]

mod connection;
mod diff;
mod document;
mod error;
mod history;
mod listen;
mod logging;
mod repo;
mod runtime;
mod subscription;
mod values;

pub use connection::{Connection, ConnectionListener, ConnectionState};
pub use diff::{Patch, TextMark};
pub use document::{Document, DocumentEvent, DocumentListener};
pub use error::WeftError;
pub use history::{BlameSpan, ChangeRecord, HistoryPage};
pub use listen::PeerServer;
pub use logging::{LogLevel, LogListener, clear_log_listener, set_log_listener};
pub use repo::{DocumentInfo, Repo, RepoOptions, TextUnit};
pub use subscription::Subscription;
pub use values::{Edit, Value};

uniffi::setup_scaffolding!("weft");

/// weft's version and how the library was built (`"0.1.0 (release)"`), for an app's logs
/// and bug reports.
#[uniffi::export]
pub fn version() -> String {
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!("{} ({build})", env!("CARGO_PKG_VERSION"))
}
