//! What the peer on one connection may read and write, as its credentials say (a relay
//! decides it when the connection is opened; a device trusts what it dials).
//!
//! The engine enforces it for every document, whatever the share policy:
//! - a document the peer may not read is answered `doc-unavailable`, exactly as an unknown
//!   one, and is never loaded for it; its ephemeral messages and heads gossip are dropped;
//! - changes from a peer that may read but not write are dropped before automerge sees
//!   them (never applied, stored or forwarded), and the peer is told so once per document
//!   by an `error` message; it keeps receiving changes.

use std::{collections::BTreeSet, fmt, sync::Arc};

use crate::DocumentId;

/// A set of documents: all of them, or the ones listed.
#[derive(Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every document, including ones created later.
    All,
    /// Only these (none if empty).
    Documents(Arc<BTreeSet<DocumentId>>),
}

impl Scope {
    /// No document at all.
    pub fn none() -> Self {
        Self::Documents(Arc::default())
    }

    /// Only `documents`.
    pub fn documents(documents: impl IntoIterator<Item = DocumentId>) -> Self {
        Self::Documents(Arc::new(documents.into_iter().collect()))
    }

    /// Whether `document` is in the set.
    pub fn contains(&self, document: DocumentId) -> bool {
        match self {
            Self::All => true,
            Self::Documents(documents) => documents.contains(&document),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Documents(documents) if documents.is_empty())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("All"),
            // The count, not the ids: access decisions are logged.
            Self::Documents(documents) => write!(f, "Documents({})", documents.len()),
        }
    }
}

/// What a connection's peer may read and write. Write access implies read access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    read: Scope,
    write: Scope,
    replica: bool,
    user: Option<String>,
}

impl Access {
    /// Read and write everything: a peer this replica trusts (what it dialled, or any peer
    /// of a repo that does not check credentials).
    pub fn full() -> Self {
        Self::new(Scope::All, Scope::All)
    }

    /// Read everything, write nothing.
    pub fn read_only() -> Self {
        Self::new(Scope::All, Scope::none())
    }

    /// Nothing at all: every document looks unknown to the peer.
    pub fn nothing() -> Self {
        Self::new(Scope::none(), Scope::none())
    }

    /// Reads `read` and writes `write` (which it may read as well).
    pub fn new(read: Scope, write: Scope) -> Self {
        Self {
            read,
            write,
            replica: false,
            user: None,
        }
    }

    /// The same access, for a connection whose credentials name `user` (a token's subject),
    /// checked by whoever granted it. A repo that records arrivals notes this user as who
    /// delivered each change the connection brings (see
    /// [`SyncConfig::with_arrivals_recorded`](crate::sync::SyncConfig::with_arrivals_recorded)).
    pub fn for_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The user the connection's credentials name, if they name one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The same access, for a peer that replicates this replica's documents (another
    /// relay): share policies may offer it every document it can read (see
    /// [`is_replica`](Self::is_replica)).
    pub fn replica(mut self) -> Self {
        self.replica = true;
        self
    }

    /// Whether the peer replicates this replica's documents.
    pub fn is_replica(&self) -> bool {
        self.replica
    }

    /// The same documents, for reading only (what a read-only follower grants).
    pub fn without_writes(self) -> Self {
        let read = match (self.read, self.write) {
            (Scope::All, _) | (_, Scope::All) => Scope::All,
            (Scope::Documents(read), Scope::Documents(write)) => {
                Scope::documents(read.iter().chain(write.iter()).copied())
            }
        };
        Self {
            read,
            write: Scope::none(),
            replica: self.replica,
            user: self.user,
        }
    }

    /// Whether the peer may receive `document` and its ephemeral messages.
    pub fn can_read(&self, document: DocumentId) -> bool {
        self.read.contains(document) || self.write.contains(document)
    }

    /// Whether changes of the peer to `document` are applied.
    pub fn can_write(&self, document: DocumentId) -> bool {
        self.write.contains(document)
    }

    /// What the peer may read (besides what it may write).
    pub fn read(&self) -> &Scope {
        &self.read
    }

    /// What the peer may write.
    pub fn write(&self) -> &Scope {
        &self.write
    }
}

impl Default for Access {
    fn default() -> Self {
        Self::full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_and_lists_are_exact() {
        let (a, b, c) = (
            DocumentId::random(),
            DocumentId::random(),
            DocumentId::random(),
        );
        let access = Access::new(Scope::documents([a]), Scope::documents([b]));
        assert!(access.can_read(a) && !access.can_write(a));
        assert!(access.can_read(b) && access.can_write(b));
        assert!(!access.can_read(c) && !access.can_write(c));
        assert!(Access::read_only().can_read(c) && !Access::read_only().can_write(c));
        assert!(!Access::nothing().can_read(c));
        assert!(Access::full().can_write(c));
        assert_eq!(format!("{:?}", Scope::documents([a, b])), "Documents(2)");
        let reader = access.without_writes();
        assert!(reader.can_read(a) && reader.can_read(b) && !reader.can_write(b));
        assert!(!reader.can_read(c));
        let everything = Access::full().replica().without_writes();
        assert!(everything.can_read(c) && !everything.can_write(c) && everything.is_replica());
    }
}
