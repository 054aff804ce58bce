//! [`Value`]: what a path holds, and reading it.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue};

use super::{Path, path::parse_index, resolve};
use crate::{Error, Result};

/// What a path in a document holds. Maps and lists are read by their paths; text is read
/// with its content. Written with [`Edit::Put`](super::Edit::Put) or
/// [`Edit::Insert`](super::Edit::Insert), `Map` and `List` make empty ones and `Text` makes
/// text with this content (collaborative: edit it with
/// [`Edit::SpliceText`](super::Edit::SpliceText) or [`Edit::UpdateText`](super::Edit::UpdateText)),
/// whereas `Str` is a string replaced as a whole.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A 64-bit float.
    F64(f64),
    /// A string, replaced as a whole when written.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A counter: concurrent increments add up (see [`Edit::Increment`](super::Edit::Increment)).
    Counter(i64),
    /// A time, in milliseconds since the Unix epoch.
    Timestamp(i64),
    /// A scalar of a type this version of automerge does not know, kept as it came.
    Unknown {
        /// automerge's type code.
        type_code: u8,
        /// The encoded value.
        bytes: Vec<u8>,
    },
    /// Collaborative text, with its current content.
    Text(String),
    /// A map (its keys are read by path).
    Map,
    /// A list (its items are read by path).
    List,
}

impl Value {
    /// The value as automerge stores it, for a scalar; the object type for an object.
    pub(crate) fn to_automerge(&self) -> std::result::Result<ScalarValue, ObjType> {
        Ok(match self {
            Self::Null => ScalarValue::Null,
            Self::Bool(value) => ScalarValue::Boolean(*value),
            Self::Int(value) => ScalarValue::Int(*value),
            Self::Uint(value) => ScalarValue::Uint(*value),
            Self::F64(value) => ScalarValue::F64(*value),
            Self::Str(value) => ScalarValue::Str(value.as_str().into()),
            Self::Bytes(value) => ScalarValue::Bytes(value.clone()),
            Self::Counter(value) => ScalarValue::counter(*value),
            Self::Timestamp(value) => ScalarValue::Timestamp(*value),
            Self::Unknown { type_code, bytes } => ScalarValue::Unknown {
                type_code: *type_code,
                bytes: bytes.clone(),
            },
            Self::Text(_) => return Err(ObjType::Text),
            Self::Map => return Err(ObjType::Map),
            Self::List => return Err(ObjType::List),
        })
    }

    fn from_automerge(doc: &impl ReadDoc, value: &automerge::Value<'_>, id: &ObjId) -> Self {
        match value {
            automerge::Value::Object(ObjType::Map | ObjType::Table) => Self::Map,
            automerge::Value::Object(ObjType::List) => Self::List,
            // The id was just read from this document, so it names a text object.
            automerge::Value::Object(ObjType::Text) => Self::Text(doc.text(id).unwrap_or_default()),
            automerge::Value::Scalar(scalar) => Self::from_scalar(scalar),
        }
    }

    pub(crate) fn from_scalar(scalar: &ScalarValue) -> Self {
        match scalar {
            ScalarValue::Null => Self::Null,
            ScalarValue::Boolean(value) => Self::Bool(*value),
            ScalarValue::Int(value) => Self::Int(*value),
            ScalarValue::Uint(value) => Self::Uint(*value),
            ScalarValue::F64(value) => Self::F64(*value),
            ScalarValue::Str(value) => Self::Str(value.to_string()),
            ScalarValue::Bytes(value) => Self::Bytes(value.clone()),
            ScalarValue::Counter(counter) => Self::Counter(i64::from(counter)),
            ScalarValue::Timestamp(value) => Self::Timestamp(*value),
            ScalarValue::Unknown { type_code, bytes } => Self::Unknown {
                type_code: *type_code,
                bytes: bytes.clone(),
            },
        }
    }
}

/// What `path` holds: `None` if its last segment names nothing (a missing key, an index
/// past the end); an error if the path goes through something that is not there or is not
/// a map or list.
pub(crate) fn get(doc: &impl ReadDoc, path: &Path) -> Result<Option<Value>> {
    let resolved = resolve(doc, path)?;
    let prop = match resolved.prop(doc) {
        Ok(Some(prop)) => prop,
        Ok(None) => return Ok(Some(Value::Map)),
        // Only an index past the end is "nothing there"; a malformed index stays an error.
        Err(_) if index_past_end(doc, &resolved.parent, resolved.parent_type, path) => {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    let found = doc
        .get(&resolved.parent, prop)
        .map_err(|error| path.error(error.to_string()))?;
    Ok(found.map(|(value, id)| Value::from_automerge(doc, &value, &id)))
}

fn index_past_end(doc: &impl ReadDoc, parent: &ObjId, parent_type: ObjType, path: &Path) -> bool {
    matches!(parent_type, ObjType::List | ObjType::Text)
        && path
            .segments()
            .last()
            .and_then(|last| parse_index(path, last).ok())
            .is_some_and(|index| index >= doc.length(parent))
}

/// The object `path` names, and its type.
pub(crate) fn object(doc: &impl ReadDoc, path: &Path) -> Result<(ObjId, ObjType)> {
    let resolved = resolve(doc, path)?;
    let Some(prop) = resolved.prop(doc)? else {
        return Ok((resolved.parent, resolved.parent_type));
    };
    match doc
        .get(&resolved.parent, prop)
        .map_err(|error| path.error(error.to_string()))?
    {
        Some((automerge::Value::Object(object_type), id)) => Ok((id, object_type)),
        Some(_) => Err(path.error("this is a value, not a map, list or text")),
        None => Err(path.error("nothing is there")),
    }
}

/// The keys of the map at `path`, in order.
pub(crate) fn keys(doc: &impl ReadDoc, path: &Path) -> Result<Vec<String>> {
    match object(doc, path)? {
        (id, ObjType::Map | ObjType::Table) => Ok(doc.keys(&id).collect()),
        _ => Err(path.error("this is not a map")),
    }
}

/// How many keys the map, items the list or units the text at `path` has (text in the
/// repo's text encoding).
pub(crate) fn length(doc: &impl ReadDoc, path: &Path) -> Result<usize> {
    let (id, _) = object(doc, path)?;
    Ok(doc.length(&id))
}

/// A document as it was (a hydrated value) as JSON, in the form of [`json`].
pub(crate) fn hydrated_json(value: &automerge::hydrate::Value) -> Result<String> {
    fn convert(value: &automerge::hydrate::Value) -> Result<serde_json::Value> {
        use automerge::hydrate::Value as Hydrated;
        Ok(match value {
            Hydrated::Scalar(scalar) => serde_json::to_value(scalar)
                .map_err(|error| Error::Internal(format!("a value as JSON: {error}")))?,
            Hydrated::Map(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(key, entry)| Ok((key.clone(), convert(&entry.value)?)))
                    .collect::<Result<_>>()?,
            ),
            Hydrated::List(list) => serde_json::Value::Array(
                list.iter()
                    .map(|item| convert(&item.value))
                    .collect::<Result<_>>()?,
            ),
            Hydrated::Text(text) => serde_json::Value::String(text.to_string()),
        })
    }
    Ok(convert(value)?.to_string())
}

/// The whole document as JSON (text as strings, counters as numbers, bytes as arrays).
pub(crate) fn json(doc: &impl ReadDoc) -> Result<String> {
    serde_json::to_string(&automerge::AutoSerde::from(doc))
        .map_err(|error| Error::Internal(format!("the document as JSON: {error}")))
}
