//! [`StorageId`]: the stable id of a replica's storage, as automerge-repo advertises it.

use std::fmt;

/// The id of a replica's storage: a UUID v4 in hyphenated text, created once per database
/// and advertised to peers so that they can persist sync state for us (automerge-repo's
/// `peerMetadata.storageId`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageId(String);

impl StorageId {
    /// The longest storage id accepted from the wire, in bytes (a UUID is 36).
    pub const MAX_LEN: usize = 256;

    /// A new random storage id.
    ///
    /// # Panics
    /// Only if the operating system has no source of randomness.
    #[allow(clippy::expect_used)]
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        Self(
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .hyphenated()
                .to_string(),
        )
    }

    /// Wraps a storage id received from a peer or read from storage. Peers are free to choose
    /// any string, so no format is imposed.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StorageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageId({})", self.0)
    }
}
