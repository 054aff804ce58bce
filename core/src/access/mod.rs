//! Reading and writing a document by path, with plain values: the document API for code
//! that cannot pass Rust closures into an automerge transaction (the Kotlin, Swift and
//! Python bindings), and a shorthand for Rust apps.
//!
//! A [`Path`] is a JSON Pointer (RFC 6901) into the document: `/todos/0/title`. A
//! [`Value`] is what a path holds: a scalar, a counter, a timestamp, text (with its
//! content) or an empty map or list (read their content by path). An [`Edit`] is one
//! write; [`DocHandle::edit`](crate::DocHandle::edit) applies a list of them as one change,
//! all or nothing.
//!
//! Text positions count in the unit of the repo's
//! [`RepoConfig::text_encoding`](crate::RepoConfig::text_encoding): Unicode code points by
//! default (Python's `str`, Rust's `chars`, Swift's `unicodeScalars`); UTF-16 code units
//! for Kotlin, Java and JavaScript strings.

mod edit;
mod patch;
mod path;
mod value;

pub use edit::Edit;
pub use patch::{Patch, TextMark};
pub use path::Path;
pub use value::Value;

pub(crate) use edit::apply;
pub(crate) use path::resolve;
pub(crate) use value::{get, hydrated_json, json, keys, length, object};
