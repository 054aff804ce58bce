//! [`Awaited`]: documents peers asked for while this replica did not have them.
//!
//! A peer told `doc-unavailable` does not ask again: automerge-repo keeps the answer until
//! it reconnects. So when such a document arrives later (a device uploads it to the relay
//! a moment after a browser asked), the peers that asked are sent it then, as the official
//! JS server does. The record is bounded per connection, so that requests for random ids
//! cannot fill a relay's memory.

use std::collections::HashMap;

use crate::{DocumentId, sync::ConnectionId};

/// How many documents one connection may wait for; it asks again for more after a reconnect.
pub(crate) const MAX_AWAITED_PER_CONNECTION: usize = 1024;

/// Who waits for which document that was unavailable here.
#[derive(Default)]
pub(crate) struct Awaited {
    by_document: HashMap<DocumentId, Vec<ConnectionId>>,
    per_connection: HashMap<ConnectionId, usize>,
}

impl Awaited {
    /// Records that `connections` asked for `document` in vain. A connection waiting for
    /// [`MAX_AWAITED_PER_CONNECTION`] documents already is not recorded again.
    pub(crate) fn asked_in_vain(&mut self, document: DocumentId, connections: &[ConnectionId]) {
        for connection in connections {
            let waiting = self.by_document.entry(document).or_default();
            if waiting.contains(connection) {
                continue;
            }
            let count = self.per_connection.entry(*connection).or_default();
            if *count >= MAX_AWAITED_PER_CONNECTION {
                tracing::debug!(%document, %connection, "too many documents awaited; not sending this one when it arrives");
                continue;
            }
            *count += 1;
            waiting.push(*connection);
        }
        if self.by_document.get(&document).is_some_and(Vec::is_empty) {
            self.by_document.remove(&document);
        }
    }

    /// The connections waiting for `document`, which is here now: they are no longer
    /// recorded.
    pub(crate) fn arrived(&mut self, document: DocumentId) -> Vec<ConnectionId> {
        let waiting = self.by_document.remove(&document).unwrap_or_default();
        for connection in &waiting {
            if let Some(count) = self.per_connection.get_mut(connection) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_connection.remove(connection);
                }
            }
        }
        waiting
    }

    /// The connection ended: it waits for nothing any more.
    pub(crate) fn connection_ended(&mut self, connection: ConnectionId) {
        if self.per_connection.remove(&connection).is_some() {
            self.by_document.retain(|_, waiting| {
                waiting.retain(|c| *c != connection);
                !waiting.is_empty()
            });
        }
    }

    /// Forgets everything (the replica is shutting down).
    pub(crate) fn clear(&mut self) {
        self.by_document.clear();
        self.per_connection.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8) -> DocumentId {
        DocumentId::from_random_bytes([n; 16])
    }

    #[test]
    fn waiting_connections_are_handed_over_once_when_the_document_arrives() {
        let mut awaited = Awaited::default();
        let (a, b) = (ConnectionId(1), ConnectionId(2));
        awaited.asked_in_vain(doc(1), &[a]);
        awaited.asked_in_vain(doc(1), &[a, b]);
        assert_eq!(awaited.arrived(doc(1)), vec![a, b]);
        assert!(awaited.arrived(doc(1)).is_empty());
        assert!(awaited.per_connection.is_empty());
    }

    #[test]
    fn an_ended_connection_waits_for_nothing() {
        let mut awaited = Awaited::default();
        let (a, b) = (ConnectionId(1), ConnectionId(2));
        awaited.asked_in_vain(doc(1), &[a, b]);
        awaited.asked_in_vain(doc(2), &[a]);
        awaited.connection_ended(a);
        assert_eq!(awaited.arrived(doc(1)), vec![b]);
        assert!(awaited.arrived(doc(2)).is_empty());
        assert!(awaited.by_document.is_empty());
    }

    #[test]
    fn one_connection_cannot_make_it_grow_without_bound() {
        let mut awaited = Awaited::default();
        let a = ConnectionId(1);
        for n in 0..=MAX_AWAITED_PER_CONNECTION {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
            awaited.asked_in_vain(DocumentId::from_random_bytes(bytes), &[a]);
        }
        assert_eq!(awaited.by_document.len(), MAX_AWAITED_PER_CONNECTION);
        assert_eq!(awaited.per_connection[&a], MAX_AWAITED_PER_CONNECTION);
        // Room again once one arrives.
        let first = DocumentId::from_random_bytes([0; 16]);
        assert_eq!(awaited.arrived(first), vec![a]);
        awaited.asked_in_vain(doc(200), &[a]);
        assert_eq!(awaited.arrived(doc(200)), vec![a]);
    }
}
