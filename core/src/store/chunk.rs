//! [`Chunk`]: a piece of a stored document, keyed by the SHA-256 of its bytes.

use std::{fmt, sync::Arc};

use sha2::{Digest, Sha256};

/// The SHA-256 of a chunk's bytes: its key in storage.
///
/// Keying chunks by content makes every write idempotent and means two writers can never
/// clobber each other's chunk (the same scheme automerge-repo uses for its storage keys).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkHash(pub [u8; 32]);

impl ChunkHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Reads a hash stored as 32 raw bytes; `None` if the length is wrong.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkHash({self})")
    }
}

/// What a chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkKind {
    /// A whole document as `Automerge::save` writes it (compressed, columnar).
    Snapshot,
    /// One or more changes appended since a snapshot.
    Incremental,
}

impl ChunkKind {
    pub(crate) const fn code(self) -> i64 {
        match self {
            Self::Snapshot => 0,
            Self::Incremental => 1,
        }
    }

    pub(crate) const fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Snapshot),
            1 => Some(Self::Incremental),
            _ => None,
        }
    }
}

/// Bytes of a stored document with their kind and content hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk {
    kind: ChunkKind,
    hash: ChunkHash,
    bytes: Arc<[u8]>,
}

impl Chunk {
    /// A chunk of `bytes`, hashing them.
    pub fn new(kind: ChunkKind, bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        Self {
            kind,
            hash: ChunkHash::of(&bytes),
            bytes,
        }
    }

    /// A chunk read back from storage with the hash it was stored under. Nothing is checked
    /// here: [`Chunk::verify`] tells whether the bytes still match.
    pub fn from_stored(kind: ChunkKind, hash: ChunkHash, bytes: impl Into<Arc<[u8]>>) -> Self {
        Self {
            kind,
            hash,
            bytes: bytes.into(),
        }
    }

    /// Whether the bytes still hash to the key they were stored under.
    pub fn verify(&self) -> bool {
        ChunkHash::of(&self.bytes) == self.hash
    }

    /// What the chunk holds.
    pub fn kind(&self) -> ChunkKind {
        self.kind
    }

    /// The content hash the chunk is stored under.
    pub fn hash(&self) -> ChunkHash {
        self.hash
    }

    /// The chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the chunk has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("kind", &self.kind)
            .field("hash", &self.hash)
            .field("len", &self.bytes.len())
            .finish()
    }
}
