//! [`Edit`]: one write by path, and applying it in a transaction.

use automerge::{ObjType, Prop, ReadDoc, ScalarValue, transaction::Transactable};

use super::{Path, Value, resolve, value::object};
use crate::{Error, Result};

/// One write to a document by path. [`DocHandle::edit`](crate::DocHandle::edit) applies a
/// list of them as one change: if one fails, none is kept.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Edit {
    /// Sets a map's key, or replaces a list's item (the index must exist).
    Put {
        /// The key or item.
        path: Path,
        /// The new value; `Map`, `List` and `Text` make new objects.
        value: Value,
    },
    /// Inserts into a list before the index the path ends with (`-`: at the end).
    Insert {
        /// The list and the index, such as `/todos/0` or `/todos/-`.
        path: Path,
        /// The new item.
        value: Value,
    },
    /// Removes a map's key, a list's item or one unit of text.
    Delete {
        /// What to remove.
        path: Path,
    },
    /// Adds `by` (which may be negative) to the counter at the path. Concurrent increments
    /// on other devices add up.
    Increment {
        /// A counter.
        path: Path,
        /// How much to add.
        by: i64,
    },
    /// Deletes `delete` units of the text at the path from `index` on, then inserts
    /// `insert` there (positions in the repo's text encoding).
    SpliceText {
        /// A text.
        path: Path,
        /// Where the splice starts.
        index: usize,
        /// How many units to delete.
        delete: usize,
        /// What to insert.
        insert: String,
    },
    /// Makes the text at the path equal `text`, as the smallest splices from its current
    /// content (so that concurrent edits elsewhere in it survive): for a text field whose
    /// new content is known but not the positions of the edit.
    UpdateText {
        /// A text.
        path: Path,
        /// Its new content.
        text: String,
    },
}

/// Applies `edit` inside a transaction.
pub(crate) fn apply(tx: &mut impl Transactable, edit: &Edit) -> Result<()> {
    match edit {
        Edit::Put { path, value } => {
            let resolved = resolve(tx, path)?;
            let prop = resolved
                .prop(tx)?
                .ok_or_else(|| path.error("the root cannot be replaced; put its keys"))?;
            write(
                tx,
                path,
                resolved.parent_type,
                Slot::Replace(&resolved.parent, prop),
                value,
            )
        }
        Edit::Insert { path, value } => {
            let resolved = resolve(tx, path)?;
            let index = resolved.insert_index(tx)?;
            write(
                tx,
                path,
                resolved.parent_type,
                Slot::Insert(&resolved.parent, index),
                value,
            )
        }
        Edit::Delete { path } => {
            let resolved = resolve(tx, path)?;
            let prop = resolved
                .prop(tx)?
                .ok_or_else(|| path.error("the root cannot be deleted"))?;
            if let Prop::Map(key) = &prop
                && tx
                    .get(&resolved.parent, key.as_str())
                    .map_err(automerge_error(path))?
                    .is_none()
            {
                return Err(path.error("no such key"));
            }
            tx.delete(&resolved.parent, prop)
                .map_err(automerge_error(path))
        }
        Edit::Increment { path, by } => {
            let resolved = resolve(tx, path)?;
            let prop = resolved
                .prop(tx)?
                .ok_or_else(|| path.error("the root is not a counter"))?;
            let current = match tx
                .get(&resolved.parent, prop.clone())
                .map_err(automerge_error(path))?
            {
                Some((automerge::Value::Scalar(scalar), _)) => match scalar.as_ref() {
                    ScalarValue::Counter(counter) => i64::from(counter),
                    _ => return Err(path.error("this is not a counter")),
                },
                Some(_) => return Err(path.error("this is not a counter")),
                None => return Err(path.error("nothing is there; put a counter first")),
            };
            if current.checked_add(*by).is_none() {
                return Err(path.error(format!(
                    "adding {by} would overflow the counter ({current})"
                )));
            }
            tx.increment(&resolved.parent, prop, *by)
                .map_err(automerge_error(path))
        }
        Edit::SpliceText {
            path,
            index,
            delete,
            insert,
        } => {
            let id = text_at(tx, path)?;
            let length = tx.length(&id);
            if index.saturating_add(*delete) > length {
                return Err(path.error(format!(
                    "splice of {delete} at {index} goes past the end (length {length})"
                )));
            }
            // Within the length, so the count fits.
            let delete = isize::try_from(*delete).unwrap_or(isize::MAX);
            tx.splice_text(&id, *index, delete, insert)
                .map_err(automerge_error(path))
        }
        Edit::UpdateText { path, text } => {
            let id = text_at(tx, path)?;
            tx.update_text(&id, text).map_err(automerge_error(path))
        }
    }
}

/// Where [`write`] puts a value.
enum Slot<'a> {
    /// A map's key or a list's existing item.
    Replace(&'a automerge::ObjId, Prop),
    /// A new item of a list, before this index.
    Insert(&'a automerge::ObjId, usize),
}

/// Writes `value` (a scalar, or a new object) into `slot` of an object of `parent_type`.
fn write(
    tx: &mut impl Transactable,
    path: &Path,
    parent_type: ObjType,
    slot: Slot<'_>,
    value: &Value,
) -> Result<()> {
    if parent_type == ObjType::Text {
        return Err(path.error("text is changed with splice_text or update_text"));
    }
    // Its type code is automerge's to check; a wrong one would corrupt the document.
    if matches!(value, Value::Unknown { .. }) {
        return Err(path.error("a value of an unknown type can be read, not written"));
    }
    match (slot, value.to_automerge()) {
        (Slot::Replace(parent, prop), Ok(scalar)) => tx.put(parent, prop, scalar),
        (Slot::Insert(parent, index), Ok(scalar)) => tx.insert(parent, index, scalar),
        (Slot::Replace(parent, prop), Err(object_type)) => tx
            .put_object(parent, prop, object_type)
            .and_then(|id| fill_text(tx, &id, value)),
        (Slot::Insert(parent, index), Err(object_type)) => tx
            .insert_object(parent, index, object_type)
            .and_then(|id| fill_text(tx, &id, value)),
    }
    .map_err(automerge_error(path))
}

fn text_at(tx: &impl ReadDoc, path: &Path) -> Result<automerge::ObjId> {
    match object(tx, path)? {
        (id, ObjType::Text) => Ok(id),
        _ => Err(path.error("this is not text")),
    }
}

/// Writes a new text object's initial content.
fn fill_text(
    tx: &mut impl Transactable,
    id: &automerge::ObjId,
    value: &Value,
) -> std::result::Result<(), automerge::AutomergeError> {
    match value {
        Value::Text(content) if !content.is_empty() => tx.splice_text(id, 0, 0, content),
        _ => Ok(()),
    }
}

/// Turns automerge's refusal into an error about `path`.
fn automerge_error(path: &Path) -> impl Fn(automerge::AutomergeError) -> Error + '_ {
    |error| path.error(error.to_string())
}
