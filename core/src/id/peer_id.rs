//! [`PeerId`]: the name a replica gives itself on a connection.

use std::fmt;

/// The id a peer announces in its `join` or `peer` message (automerge-repo's `senderId`).
///
/// Peer ids are chosen by the peer and are **not authenticated**: anyone can claim any id.
/// They name a connection's other end in logs, events and messages, nothing more. The
/// persistent identity used for sync state is the peer's [`StorageId`](crate::StorageId).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(String);

impl PeerId {
    /// The longest peer id accepted from the wire, in bytes. Real ids are short
    /// (`peer-` and a few random characters in JS, `storage-server-<host>` for its server).
    pub const MAX_LEN: usize = 256;

    /// A new random peer id, `weft-` and 16 hex digits.
    ///
    /// # Panics
    /// Only if the operating system has no source of randomness.
    #[allow(clippy::expect_used)]
    pub fn random() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        Self(format!("weft-{:016x}", u64::from_le_bytes(bytes)))
    }

    /// A peer id of the app's choosing.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

impl From<&str> for PeerId {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}
