//! [`Value`] and [`Edit`]: weft's `access` types, as the host languages see them.

use weft::access::{self, Path};

use crate::WeftError;

/// What a path in a document holds. `Map` and `List` are read by their paths (or with
/// `Document.to_json`); `Text` carries its content. Written, `Map`, `List` and `Text` make
/// new objects; `Text` is collaborative text (edit it with `splice_text` or `update_text`),
/// whereas `Str` is replaced as a whole.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Value {
    /// `null`.
    Null,
    /// A boolean.
    Bool {
        /// The value.
        value: bool,
    },
    /// A signed 64-bit integer.
    Int {
        /// The value.
        value: i64,
    },
    /// An unsigned 64-bit integer.
    Uint {
        /// The value.
        value: u64,
    },
    /// A 64-bit float.
    F64 {
        /// The value.
        value: f64,
    },
    /// A string, replaced as a whole.
    Str {
        /// The value.
        value: String,
    },
    /// Bytes.
    Bytes {
        /// The value.
        value: Vec<u8>,
    },
    /// A counter: increments on different devices add up.
    Counter {
        /// The current total.
        value: i64,
    },
    /// A time in milliseconds since the Unix epoch.
    Timestamp {
        /// Milliseconds since 1970-01-01 UTC.
        millis: i64,
    },
    /// A value of a type this version does not know, kept as it came.
    Unknown {
        /// automerge's type code.
        type_code: u8,
        /// The encoded value.
        bytes: Vec<u8>,
    },
    /// Collaborative text.
    Text {
        /// Its content.
        value: String,
    },
    /// A map.
    Map,
    /// A list.
    List,
}

impl From<access::Value> for Value {
    fn from(value: access::Value) -> Self {
        use access::Value as V;
        match value {
            V::Null => Self::Null,
            V::Bool(value) => Self::Bool { value },
            V::Int(value) => Self::Int { value },
            V::Uint(value) => Self::Uint { value },
            V::F64(value) => Self::F64 { value },
            V::Str(value) => Self::Str { value },
            V::Bytes(value) => Self::Bytes { value },
            V::Counter(value) => Self::Counter { value },
            V::Timestamp(millis) => Self::Timestamp { millis },
            V::Unknown { type_code, bytes } => Self::Unknown { type_code, bytes },
            V::Text(value) => Self::Text { value },
            V::List => Self::List,
            // `Map`, and whatever later versions add, read as a map to look into.
            _ => Self::Map,
        }
    }
}

impl From<Value> for access::Value {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool { value } => Self::Bool(value),
            Value::Int { value } => Self::Int(value),
            Value::Uint { value } => Self::Uint(value),
            Value::F64 { value } => Self::F64(value),
            Value::Str { value } => Self::Str(value),
            Value::Bytes { value } => Self::Bytes(value),
            Value::Counter { value } => Self::Counter(value),
            Value::Timestamp { millis } => Self::Timestamp(millis),
            Value::Unknown { type_code, bytes } => Self::Unknown { type_code, bytes },
            Value::Text { value } => Self::Text(value),
            Value::Map => Self::Map,
            Value::List => Self::List,
        }
    }
}

/// One write to a document; `Document.apply` applies a list of them as one change (all or
/// nothing). Paths are JSON Pointers: `/todos/0/title`; in a list, `-` is its end.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Edit {
    /// Sets a map's key, or replaces a list's item.
    Put {
        /// The key or item.
        path: String,
        /// The new value.
        value: Value,
    },
    /// Inserts into a list before the index the path ends with (`-`: at the end).
    Insert {
        /// The list and index, such as `/todos/0` or `/todos/-`.
        path: String,
        /// The new item.
        value: Value,
    },
    /// Removes a map's key, a list's item or one unit of text.
    Delete {
        /// What to remove.
        path: String,
    },
    /// Adds `by` (may be negative) to a counter.
    Increment {
        /// The counter.
        path: String,
        /// How much to add.
        by: i64,
    },
    /// Deletes `delete` units of text from `index` on and inserts `insert` there.
    SpliceText {
        /// The text.
        path: String,
        /// Where, in the repo's text unit.
        index: u64,
        /// How many units to delete.
        delete: u64,
        /// What to insert.
        insert: String,
    },
    /// Makes the text equal `text` with the smallest splices, keeping concurrent edits
    /// elsewhere in it: for a text field whose new content is known.
    UpdateText {
        /// The text.
        path: String,
        /// Its new content.
        text: String,
    },
}

/// A path as the host wrote it.
pub(crate) fn path(text: &str) -> Result<Path, WeftError> {
    Ok(Path::parse(text)?)
}

/// A count from the host that must fit this platform's `usize`.
fn count(path: &str, what: &str, n: u64) -> Result<usize, WeftError> {
    usize::try_from(n)
        .map_err(|_| WeftError::InvalidPath(format!("path {path:?}: {what} {n} is too large")))
}

impl TryFrom<Edit> for access::Edit {
    type Error = WeftError;

    fn try_from(edit: Edit) -> Result<Self, WeftError> {
        Ok(match edit {
            Edit::Put { path: at, value } => Self::Put {
                path: path(&at)?,
                value: value.into(),
            },
            Edit::Insert { path: at, value } => Self::Insert {
                path: path(&at)?,
                value: value.into(),
            },
            Edit::Delete { path: at } => Self::Delete { path: path(&at)? },
            Edit::Increment { path: at, by } => Self::Increment {
                path: path(&at)?,
                by,
            },
            Edit::SpliceText {
                path: at,
                index,
                delete,
                insert,
            } => Self::SpliceText {
                index: count(&at, "index", index)?,
                delete: count(&at, "delete count", delete)?,
                path: path(&at)?,
                insert,
            },
            Edit::UpdateText { path: at, text } => Self::UpdateText {
                path: path(&at)?,
                text,
            },
        })
    }
}
