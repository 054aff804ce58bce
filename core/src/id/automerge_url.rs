//! [`AutomergeUrl`]: `automerge:<document id>[#<head>|<head>...]`, and the sub-document form
//! `automerge:<document id>/<path>...[#<hex head>|...]` of automerge-repo's refs.
//!
//! What automerge-repo 2.5 writes, and so what we accept (fixtures in
//! `core/tests/fixtures/js-ids.json`, made by `tests/js/make-id-fixtures.mjs`):
//! - A document URL is `automerge:` + the bs58check id, optionally `#` + heads, each head a
//!   bs58check-encoded 32-byte change hash, separated by `|`. `automerge:<id>#` (no heads)
//!   is accepted and means "the empty version", as in JS.
//! - A ref URL adds `/`-separated path segments after the id: a map key (percent-encoded as
//!   `encodeURIComponent` does, with a leading `@`, `{`, `[` or `\` escaped by a `\`), or a
//!   list index written `@<n>`. Its heads are **hex** change hashes. Refs can also address
//!   values by a match pattern (`{...}`) or cursor range (`[...]`); weft refuses those with
//!   [`UrlError::UnsupportedPathSegment`].
//! - Unlike JS, which accepts an id of any length, weft requires exactly 16 bytes.

use std::{fmt, str::FromStr};

use automerge::ChangeHash;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::{
    bs58check,
    document_id::{DocumentId, IdError},
};

const SCHEME: &str = "automerge:";

/// What `encodeURIComponent` leaves alone: letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// One step of the path in a ref URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A key of a map.
    Key(String),
    /// An index into a list or text.
    Index(usize),
}

/// An `automerge:` URL: a document id, optionally a path into the document and optionally
/// the heads of a fixed version. See the module docs for the exact grammar.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AutomergeUrl {
    document_id: DocumentId,
    path: Vec<PathSegment>,
    heads: Option<Vec<ChangeHash>>,
}

/// Why an `automerge:` URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The text does not start with `automerge:`.
    #[error("{0:?} is not an automerge URL: it must start with \"automerge:\"")]
    MissingScheme(String),
    /// The document id part is invalid.
    #[error("invalid document id in automerge URL: {0}")]
    DocumentId(#[from] IdError),
    /// More than one `#`.
    #[error("automerge URL {0:?} has more than one '#' heads part")]
    MultipleHeadsParts(String),
    /// A path segment is empty (`automerge:<id>//x` or a trailing `/`).
    #[error("automerge URL {0:?} has an empty path segment")]
    EmptyPathSegment(String),
    /// A path segment weft cannot address: a match pattern, a cursor range, a bad index or
    /// bad percent-encoding.
    #[error("unsupported path segment {segment:?} in automerge URL: {reason}")]
    UnsupportedPathSegment {
        /// The segment as written.
        segment: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A head is not a 32-byte change hash in the expected encoding.
    #[error("automerge URL has an invalid head {head:?}: {reason}")]
    InvalidHead {
        /// The head as written in the URL.
        head: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl AutomergeUrl {
    /// The URL of the current version of a document.
    pub fn new(document_id: DocumentId) -> Self {
        Self {
            document_id,
            path: Vec::new(),
            heads: None,
        }
    }

    /// This URL pinned to a fixed version of the document. Heads are written sorted, so two
    /// URLs of the same version are equal as text.
    pub fn with_heads(mut self, heads: &[ChangeHash]) -> Self {
        let mut heads = heads.to_vec();
        heads.sort();
        self.heads = Some(heads);
        self
    }

    /// This URL pointing into the document at `path`. Ref URLs cannot spell an empty map key;
    /// a path with one does not parse back.
    pub fn with_path(mut self, path: impl IntoIterator<Item = PathSegment>) -> Self {
        self.path = path.into_iter().collect();
        self
    }

    /// Parses an `automerge:` URL (see the module docs for the grammar).
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| UrlError::MissingScheme(text.to_owned()))?;
        let mut parts = rest.split('#');
        let before_heads = parts.next().unwrap_or_default();
        let heads_part = parts.next();
        if parts.next().is_some() {
            return Err(UrlError::MultipleHeadsParts(text.to_owned()));
        }
        let mut segments = before_heads.split('/');
        let document_id = DocumentId::parse_bs58check(segments.next().unwrap_or_default())?;
        let path = segments
            .map(|segment| parse_segment(text, segment))
            .collect::<Result<Vec<_>, _>>()?;
        // Document URLs carry bs58check heads; ref URLs (with a path) carry hex heads.
        let heads = heads_part
            .map(|part| parse_heads(part, path.is_empty()))
            .transpose()?;
        Ok(Self {
            document_id,
            path,
            heads,
        })
    }

    /// The document named by `text`: an `automerge:` URL (its path and heads ignored) or a
    /// bare document id.
    /// Fails with [`Error::InvalidDocumentId`](crate::Error::InvalidDocumentId) saying why.
    pub fn parse_document_id(text: &str) -> crate::Result<DocumentId> {
        let parsed = if text.starts_with("automerge:") {
            Self::parse(text).map(|url| url.document_id())
        } else {
            DocumentId::parse(text).map_err(UrlError::from)
        };
        parsed.map_err(|error| match error {
            UrlError::DocumentId(error) => crate::Error::InvalidDocumentId(error.to_string()),
            error => crate::Error::InvalidDocumentId(error.to_string()),
        })
    }

    /// The document this URL names.
    pub fn document_id(&self) -> DocumentId {
        self.document_id
    }

    /// The path into the document, empty for the whole document.
    pub fn path(&self) -> &[PathSegment] {
        &self.path
    }

    /// The pinned version, if the URL names one.
    pub fn heads(&self) -> Option<&[ChangeHash]> {
        self.heads.as_deref()
    }
}

fn parse_segment(url: &str, segment: &str) -> Result<PathSegment, UrlError> {
    let unsupported = |reason| UrlError::UnsupportedPathSegment {
        segment: segment.to_owned(),
        reason,
    };
    if segment.is_empty() {
        return Err(UrlError::EmptyPathSegment(url.to_owned()));
    }
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| unsupported("percent-encoding is not UTF-8"))?;
    match decoded.as_bytes().first() {
        Some(b'@') => {
            let digits = &decoded[1..];
            // Only the canonical form `@<n>`, so that every URL has one spelling.
            let canonical = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            digits
                .parse()
                .ok()
                .filter(|_| canonical)
                .map(PathSegment::Index)
                .ok_or_else(|| unsupported("'@' must be followed by a list index"))
        }
        Some(b'{') => Err(unsupported("match patterns are not supported")),
        Some(b'[') => Err(unsupported("cursor ranges are not supported")),
        // A key that would read as an index, pattern or cursor is escaped with a '\'.
        _ => Ok(PathSegment::Key(
            decoded.strip_prefix('\\').unwrap_or(&decoded).to_owned(),
        )),
    }
}

/// The longest head text worth decoding (32 bytes are 64 hex or about 50 base58 characters).
const MAX_HEAD_TEXT: usize = 64;

/// Parses heads, sorted (as `with_heads` keeps them) so that equal versions compare equal.
fn parse_heads(part: &str, bs58: bool) -> Result<Vec<ChangeHash>, UrlError> {
    if part.is_empty() {
        return Ok(Vec::new());
    }
    let mut heads = part
        .split('|')
        .map(|head| {
            let invalid = |reason| UrlError::InvalidHead {
                head: head.chars().take(MAX_HEAD_TEXT).collect(),
                reason,
            };
            if head.len() > MAX_HEAD_TEXT {
                return Err(invalid("too long to be a change hash"));
            }
            let bytes = if bs58 {
                bs58check::decode(head).map_err(|_| invalid("not bs58check text"))?
            } else {
                decode_hex(head).ok_or_else(|| invalid("not hex"))?
            };
            ChangeHash::try_from(bytes.as_slice()).map_err(|_| invalid("not a 32-byte hash"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    heads.sort();
    Ok(heads)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok())
        .collect()
}

impl fmt::Display for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.document_id)?;
        for segment in &self.path {
            match segment {
                PathSegment::Index(index) => write!(f, "/@{index}")?,
                PathSegment::Key(key) => {
                    f.write_str("/")?;
                    if key.starts_with(['@', '{', '[', '\\']) {
                        f.write_str("%5C")?;
                    }
                    write!(f, "{}", utf8_percent_encode(key, URI_COMPONENT))?;
                }
            }
        }
        if let Some(heads) = &self.heads {
            f.write_str("#")?;
            for (index, head) in heads.iter().enumerate() {
                if index > 0 {
                    f.write_str("|")?;
                }
                if self.path.is_empty() {
                    f.write_str(&bs58check::encode(&head.0))?;
                } else {
                    write!(f, "{head}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AutomergeUrl({self})")
    }
}

impl FromStr for AutomergeUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl From<DocumentId> for AutomergeUrl {
    fn from(document_id: DocumentId) -> Self {
        Self::new(document_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_part() {
        let id = DocumentId::random();
        let heads = [ChangeHash([7; 32]), ChangeHash([3; 32])];
        let url = AutomergeUrl::new(id).with_heads(&heads);
        let parsed = AutomergeUrl::parse(&url.to_string()).expect("own URL parses");
        assert_eq!(parsed, url);
        assert_eq!(
            parsed.heads(),
            Some(&[ChangeHash([3; 32]), ChangeHash([7; 32])][..])
        );

        let path = [
            PathSegment::Key("todos".into()),
            PathSegment::Index(3),
            PathSegment::Key("@odd/key 100%".into()),
        ];
        let url = AutomergeUrl::new(id).with_path(path).with_heads(&heads);
        let text = url.to_string();
        assert!(
            text.contains("/todos/@3/%5C%40odd%2Fkey%20100%25#0303"),
            "{text}"
        );
        assert_eq!(AutomergeUrl::parse(&text), Ok(url));
    }

    #[test]
    fn rejects_each_malformed_part_with_its_own_error() {
        let id = DocumentId::random();
        assert!(matches!(
            AutomergeUrl::parse(&id.to_string()),
            Err(UrlError::MissingScheme(_))
        ));
        assert!(matches!(
            AutomergeUrl::parse(&format!("automerge:{id}#a#b")),
            Err(UrlError::MultipleHeadsParts(_))
        ));
        assert!(matches!(
            AutomergeUrl::parse(&format!("automerge:{id}/a//b")),
            Err(UrlError::EmptyPathSegment(_))
        ));
        assert!(matches!(
            AutomergeUrl::parse(&format!("automerge:{id}/todos/%7B%22id%22%3A1%7D")),
            Err(UrlError::UnsupportedPathSegment { .. })
        ));
        assert!(matches!(
            AutomergeUrl::parse(&format!("automerge:{id}/text/[1@ab-2@ab]")),
            Err(UrlError::UnsupportedPathSegment { .. })
        ));
        let short_head = bs58check::encode(&[1; 8]);
        assert!(matches!(
            AutomergeUrl::parse(&format!("automerge:{id}#{short_head}")),
            Err(UrlError::InvalidHead { .. })
        ));
        assert!(matches!(
            AutomergeUrl::parse("automerge:nope"),
            Err(UrlError::DocumentId(_))
        ));
    }

    #[test]
    fn an_empty_heads_part_is_the_empty_version_as_in_js() {
        let id = DocumentId::random();
        let url = AutomergeUrl::parse(&format!("automerge:{id}#")).expect("JS accepts this");
        assert_eq!(url.heads(), Some(&[][..]));
    }
}
