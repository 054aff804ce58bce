//! [`Path`]: a JSON Pointer into a document, and finding what it points at.

use std::{fmt, str::FromStr};

use automerge::{ObjId, ObjType, Prop, ROOT, ReadDoc};

use crate::{Error, Result};

/// A place in a document, written as a JSON Pointer (RFC 6901): `""` is the document's root
/// map, `/title` its key `title`, `/todos/0/done` the key `done` of the first item of the
/// list `todos`. A segment is a map key or, inside a list or text, an index counted from 0;
/// `-` names the end of a list (for inserting). `~1` stands for `/` and `~0` for `~` in a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path {
    segments: Vec<String>,
}

impl Path {
    /// The document's root map.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses a JSON Pointer. Fails with [`Error::InvalidPath`] unless it is empty or starts
    /// with `/`, or if a `~` is not followed by `0` or `1`.
    pub fn parse(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Ok(Self::root());
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(Error::InvalidPath {
                path: text.to_owned(),
                reason: "a path is empty (the root) or starts with '/'".to_owned(),
            });
        };
        let segments = rest
            .split('/')
            .map(|segment| unescape(segment).ok_or_else(|| segment.to_owned()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|segment| Error::InvalidPath {
                path: text.to_owned(),
                reason: format!("'~' must be followed by 0 or 1 in {segment:?}"),
            })?;
        Ok(Self { segments })
    }

    /// The path one segment deeper.
    pub fn join(&self, segment: impl Into<String>) -> Self {
        let mut segments = self.segments.clone();
        segments.push(segment.into());
        Self { segments }
    }

    /// Its segments, unescaped.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// An [`Error::InvalidPath`] about this path.
    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::InvalidPath {
            path: self.to_string(),
            reason: reason.into(),
        }
    }
}

fn unescape(segment: &str) -> Option<String> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next()? {
                '0' => out.push('~'),
                '1' => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            write!(f, "/{}", segment.replace('~', "~0").replace('/', "~1"))?;
        }
        Ok(())
    }
}

impl FromStr for Path {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

/// Where a path leads: the object holding its last segment (or the root, for the root path).
pub(crate) struct Resolved<'p> {
    path: &'p Path,
    /// The object the last segment is in; the root for the root path.
    pub(crate) parent: ObjId,
    /// What kind of object `parent` is.
    pub(crate) parent_type: ObjType,
    /// The last segment; `None` for the root path.
    last: Option<&'p str>,
}

/// Follows `path` up to its last segment: every segment before it must name a map, list or
/// text (text only as the parent of the last).
pub(crate) fn resolve<'p>(doc: &impl ReadDoc, path: &'p Path) -> Result<Resolved<'p>> {
    let mut parent = ROOT;
    let mut parent_type = ObjType::Map;
    let Some((last, before)) = path.segments.split_last() else {
        return Ok(Resolved {
            path,
            parent,
            parent_type,
            last: None,
        });
    };
    for (depth, segment) in before.iter().enumerate() {
        let prop = existing_prop(doc, path, &parent, parent_type, segment)?;
        let child = doc
            .get(&parent, prop)
            .map_err(|error| path.error(error.to_string()))?;
        let (object, object_type) = match child {
            Some((automerge::Value::Object(object_type), id)) => (id, object_type),
            found => {
                let at = Path {
                    segments: path.segments[..=depth].to_vec(),
                };
                return Err(path.error(match found {
                    Some(_) => format!("{at} is a value, not a map or list"),
                    None => format!("{at} does not exist"),
                }));
            }
        };
        parent = object;
        parent_type = object_type;
    }
    Ok(Resolved {
        path,
        parent,
        parent_type,
        last: Some(last),
    })
}

impl Resolved<'_> {
    /// The property the last segment names in its parent, which must exist (a list index
    /// below the length); `None` for the root path. A map key need not exist.
    pub(crate) fn prop(&self, doc: &impl ReadDoc) -> Result<Option<Prop>> {
        self.last
            .map(|last| existing_prop(doc, self.path, &self.parent, self.parent_type, last))
            .transpose()
    }

    /// The index at which to insert into the parent list or text: an index up to its length,
    /// or `-` for its end.
    pub(crate) fn insert_index(&self, doc: &impl ReadDoc) -> Result<usize> {
        let Some(last) = self.last else {
            return Err(self.path.error("the root is a map; insert into a list"));
        };
        if self.parent_type == ObjType::Map || self.parent_type == ObjType::Table {
            return Err(self
                .path
                .error("insert goes into a list; put a key of a map"));
        }
        let length = doc.length(&self.parent);
        if last == "-" {
            return Ok(length);
        }
        let index = parse_index(self.path, last)?;
        if index > length {
            return Err(self
                .path
                .error(format!("index {index} is past the end (length {length})")));
        }
        Ok(index)
    }
}

/// The property `segment` names in `parent`; an index must be below the length.
fn existing_prop(
    doc: &impl ReadDoc,
    path: &Path,
    parent: &ObjId,
    parent_type: ObjType,
    segment: &str,
) -> Result<Prop> {
    match parent_type {
        ObjType::Map | ObjType::Table => Ok(Prop::Map(segment.to_owned())),
        ObjType::List | ObjType::Text => {
            let index = parse_index(path, segment)?;
            let length = doc.length(parent);
            if index >= length {
                return Err(path.error(format!("index {index} is out of range (length {length})")));
            }
            Ok(Prop::Seq(index))
        }
    }
}

pub(crate) fn parse_index(path: &Path, segment: &str) -> Result<usize> {
    // RFC 6901: no sign, no leading zeros.
    let canonical = segment == "0" || !segment.starts_with('0');
    match segment.parse::<usize>() {
        Ok(index) if canonical && segment.bytes().all(|b| b.is_ascii_digit()) => Ok(index),
        _ => Err(path.error(format!("{segment:?} is not a list index"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_json_pointers() {
        for text in ["", "/a", "/a/0/b", "/", "/a~1b/c~0d", "//x"] {
            let path = Path::parse(text).unwrap();
            assert_eq!(path.to_string(), text);
        }
        assert_eq!(Path::parse("/a~1b").unwrap().segments(), ["a/b"]);
        assert_eq!(Path::parse("/a~0b").unwrap().segments(), ["a~b"]);
        assert_eq!(Path::parse("/").unwrap().segments(), [""]);
    }

    #[test]
    fn refuses_what_is_not_a_json_pointer() {
        for text in ["a", "a/b", "/a~2", "/a~"] {
            let error = Path::parse(text).unwrap_err();
            assert!(
                matches!(error, Error::InvalidPath { .. }),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn list_indexes_are_plain_numbers() {
        let path = Path::root();
        assert_eq!(parse_index(&path, "0").unwrap(), 0);
        assert_eq!(parse_index(&path, "12").unwrap(), 12);
        for bad in ["01", "-1", "+1", "x", ""] {
            assert!(parse_index(&path, bad).is_err(), "{bad}");
        }
    }
}
