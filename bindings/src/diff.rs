//! What changed between two states of a document, as patches by path with plain values
//! (weft's [`access::Patch`]).

use weft::access;

use crate::{Document, WeftError, history::parse_heads, runtime::run, values::Value};

/// One difference between two states of a document; applied in order, a diff's patches
/// turn the first state into the second, formatting included. Paths are JSON Pointers
/// like `Edit`'s (`Insert` and `Delete` end theirs with the index their range starts at);
/// text positions count in the repo's `TextUnit`.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Patch {
    /// A map's key or a list's item (`/title`, `/todos/0`) now holds `value`. A text, map
    /// or list arrives empty, followed by the patches that fill it.
    Put {
        /// The key or item.
        path: String,
        /// What it holds now.
        value: Value,
        /// Whether concurrent changes left other values there too (reads see this one).
        conflict: bool,
    },
    /// Items inserted into a list, the first at the index the path ends with (`/todos/3`).
    Insert {
        /// The list and the first new item's index.
        path: String,
        /// The new items, in order.
        values: Vec<Value>,
    },
    /// Removed: a map's key (`count` 1), or `count` items of a list or units of a text from
    /// the index the path ends with.
    Delete {
        /// The key, or the list or text and the index of the first removed item.
        path: String,
        /// How many items or text units.
        count: u64,
    },
    /// Text inserted at `index` of the text at `path`.
    SpliceText {
        /// The text.
        path: String,
        /// Where the new text starts.
        index: u64,
        /// What was inserted.
        text: String,
    },
    /// The counter at `path` changed by `by`.
    Increment {
        /// The counter.
        path: String,
        /// How much was added (negative: taken away).
        by: i64,
    },
    /// The value at `path` is now in conflict (concurrent writes; reads see one of them).
    Conflict {
        /// The key or item.
        path: String,
    },
    /// Formatting set or removed on ranges of the text at `path`.
    Mark {
        /// The text.
        path: String,
        /// The ranges; a mark whose value is `Null` was removed.
        marks: Vec<TextMark>,
    },
}

/// A formatting mark over a range of a text.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TextMark {
    /// The mark's name, such as `bold`.
    pub name: String,
    /// Its value (`Null` when the mark was removed).
    pub value: Value,
    /// The first unit of the range.
    pub start: u64,
    /// The unit after the range.
    pub end: u64,
}

impl From<access::Patch> for Patch {
    fn from(patch: access::Patch) -> Self {
        use access::Patch as P;
        match patch {
            P::Put {
                path,
                value,
                conflict,
            } => Self::Put {
                path: path.to_string(),
                value: value.into(),
                conflict,
            },
            P::Insert { path, values } => Self::Insert {
                path: path.to_string(),
                values: values.into_iter().map(Value::from).collect(),
            },
            P::Delete { path, count } => Self::Delete {
                path: path.to_string(),
                count: count as u64,
            },
            P::SpliceText { path, index, text } => Self::SpliceText {
                path: path.to_string(),
                index: index as u64,
                text,
            },
            P::Increment { path, by } => Self::Increment {
                path: path.to_string(),
                by,
            },
            P::Conflict { path } => Self::Conflict {
                path: path.to_string(),
            },
            P::Mark { path, marks } => Self::Mark {
                path: path.to_string(),
                marks: marks
                    .into_iter()
                    .map(|mark| TextMark {
                        name: mark.name,
                        value: mark.value.into(),
                        start: mark.start as u64,
                        end: mark.end as u64,
                    })
                    .collect(),
            },
        }
    }
}

#[uniffi::export]
impl Document {
    /// What changed from `from` to `to` (heads, hex; either may be the older, and an empty
    /// `from` is the empty document), as patches by path. Fails with `InvalidPath` for a
    /// head that is not a change hash or that the document does not have.
    pub async fn diff(&self, from: Vec<String>, to: Vec<String>) -> Result<Vec<Patch>, WeftError> {
        let (from, to) = (parse_heads(&from)?, parse_heads(&to)?);
        let handle = self.handle.clone();
        run(async move {
            let patches = handle.diff_by_path(from, to).await?;
            Ok(patches.into_iter().map(Patch::from).collect())
        })
        .await
    }
}
