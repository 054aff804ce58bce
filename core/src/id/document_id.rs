//! [`DocumentId`]: the 16-byte UUID v4 that names a document, written as bs58check text.

use std::{fmt, str::FromStr};

use super::bs58check::{self, Bs58CheckError};

/// The id of a document, compatible with automerge-repo.
///
/// A document id is 16 random bytes with the UUID v4 version and variant bits set. Its text
/// form is bs58check (base58 with a checksum), e.g. `4NMNnkMhL8jXrdJ9jamS58PAVdXu`; that is
/// what appears in `automerge:` URLs and on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

/// Why a document id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is empty.
    #[error("document id is empty")]
    Empty,
    /// A character outside the base58 alphabet (which has no `0`, `O`, `I` or `l`).
    #[error("document id {0:?} is not base58 text")]
    NotBase58(String),
    /// The checksum does not match: the id was mistyped or cut short.
    #[error("document id {0:?} has a bad checksum (mistyped or truncated?)")]
    BadChecksum(String),
    /// The id has the wrong length: it decodes to other than 16 bytes (`len` bytes), or its
    /// text is far too long to be an id (`len` characters, `text` cut short).
    #[error("document id {text:?} has the wrong length ({len}); a document id is 16 bytes")]
    WrongLength {
        /// The text that was parsed.
        text: String,
        /// The number of bytes it decoded to, or of characters when too long to decode.
        len: usize,
    },
}

impl DocumentId {
    /// A new random id (UUID v4), as automerge-repo makes them.
    ///
    /// # Panics
    /// Only if the operating system has no source of randomness, which no supported platform
    /// lacks; an id that is not random would break every guarantee built on it.
    #[allow(clippy::expect_used)]
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        Self::from_random_bytes(bytes)
    }

    /// Makes a v4 id from 16 random bytes, setting the UUID version and variant bits.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(*uuid::Builder::from_random_bytes(bytes).as_uuid().as_bytes())
    }

    /// The id made of exactly these 16 bytes (for example read back from storage).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses bs58check text, or a hyphenated UUID (the legacy form automerge-repo still
    /// accepts as a bare id, though never inside a URL).
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if let Some(legacy) = parse_legacy_uuid(text) {
            return Ok(legacy);
        }
        Self::parse_bs58check(text)
    }

    /// Parses bs58check text only, as inside an `automerge:` URL.
    pub(crate) fn parse_bs58check(text: &str) -> Result<Self, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        // 20 bytes encode to at most 28 characters; refuse long input before the (quadratic)
        // base58 decoding, since ids arrive from the network.
        if text.len() > MAX_ID_TEXT {
            return Err(IdError::WrongLength {
                text: text.chars().take(MAX_ID_TEXT).collect(),
                len: text.len(),
            });
        }
        let bytes = bs58check::decode(text).map_err(|error| match error {
            Bs58CheckError::NotBase58 => IdError::NotBase58(text.to_owned()),
            Bs58CheckError::TooShort | Bs58CheckError::BadChecksum => {
                IdError::BadChecksum(text.to_owned())
            }
        })?;
        let array: [u8; 16] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| IdError::WrongLength {
                text: text.to_owned(),
                len: bytes.len(),
            })?;
        Ok(Self(array))
    }
}

/// The longest bs58check text worth decoding as an id (a 16-byte id is 22 to 28 characters).
const MAX_ID_TEXT: usize = 40;

/// A hyphenated UUID of version 1 to 5 with the RFC 4122 variant, or the nil UUID: what
/// automerge-repo's `interpretAsDocumentId` accepts (`uuid.validate`).
fn parse_legacy_uuid(text: &str) -> Option<DocumentId> {
    if text.len() != 36 || text.as_bytes().get(8) != Some(&b'-') {
        return None;
    }
    let uuid = uuid::Uuid::try_parse(text).ok()?;
    let valid = uuid.is_nil()
        || ((1..=5).contains(&uuid.get_version_num())
            && uuid.get_variant() == uuid::Variant::RFC4122);
    valid.then(|| DocumentId(*uuid.as_bytes()))
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58check::encode(&self.0))
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_uuid_v4_and_round_trip_through_text() {
        let id = DocumentId::random();
        let uuid = uuid::Uuid::from_bytes(*id.as_bytes());
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(DocumentId::parse(&id.to_string()), Ok(id));
        assert_ne!(DocumentId::random(), id);
    }

    #[test]
    fn refuses_wrong_length_and_bad_checksum() {
        let eight = bs58check::encode(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(matches!(
            DocumentId::parse(&eight),
            Err(IdError::WrongLength { len: 8, .. })
        ));
        let id = DocumentId::random().to_string();
        let truncated = &id[..id.len() - 1];
        assert!(matches!(
            DocumentId::parse(truncated),
            Err(IdError::BadChecksum(_)) | Err(IdError::WrongLength { .. })
        ));
        assert_eq!(DocumentId::parse(""), Err(IdError::Empty));
    }

    #[test]
    fn accepts_a_legacy_hyphenated_uuid() {
        let id = DocumentId::parse("6ba7b810-9dad-41d1-80b4-00c04fd430c8").expect("legacy uuid");
        assert_eq!(id.as_bytes()[0], 0x6b);
    }
}
