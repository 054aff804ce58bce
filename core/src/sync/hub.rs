//! The hub: connections, the handshake, decoding and routing. No document state.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet, VecDeque},
    sync::Arc,
};

use automerge::ChangeHash;

use super::access::Access;
use super::types::{ConnectionId, Effect, Millis, Notification, PeerFault, PeerInfo, SharedPeer};
use crate::{
    DocumentId, PeerId, StorageId,
    wire::{self, Limits, Message, PROTOCOL_V1, PeerMetadata, RemoteHeads},
};

/// How much of a peer's `error` text is kept (logged and reported).
const MAX_ERROR_TEXT: usize = 512;

/// How many storage ids one connection may subscribe to.
const MAX_SUBSCRIPTIONS: usize = 1024;

/// How many ephemeral messages are remembered to drop duplicates (as automerge-repo).
const EPHEMERAL_MEMORY: usize = 1000;

/// A document message from an established peer, for the document's synchroniser.
#[derive(Debug)]
pub(crate) enum DocMessage {
    /// `sync`, or `request` (the peer has nothing and wants `doc-unavailable` if we have
    /// nothing either).
    Sync { data: Vec<u8>, request: bool },
    /// The peer does not have the document.
    Unavailable,
    /// An ephemeral payload, new to this replica.
    Ephemeral {
        origin: PeerId,
        session: String,
        count: u64,
        data: Vec<u8>,
    },
    /// A relay's report of other storages' heads.
    RemoteHeads(Vec<(StorageId, RemoteHeads)>),
}

/// What a received message means for the documents.
pub(crate) enum Routed {
    Nothing,
    PeerReady(SharedPeer),
    PeerGone(SharedPeer),
    Document {
        peer: SharedPeer,
        document: DocumentId,
        message: DocMessage,
    },
}

enum Connection {
    /// We accepted it at `since` and wait for the peer's `join`.
    AwaitingJoin { since: Millis, access: Access },
    /// We dialled at `since`, sent `join`, and wait for `peer`.
    AwaitingPeer { since: Millis, access: Access },
    Established {
        peer: SharedPeer,
        /// Storage ids whose heads the peer wants to hear about.
        subscriptions: BTreeSet<StorageId>,
    },
}

pub(crate) struct Hub {
    me: PeerId,
    metadata: PeerMetadata,
    limits: Limits,
    connections: BTreeMap<ConnectionId, Connection>,
    ephemeral_seen: HashSet<(PeerId, String, u64)>,
    ephemeral_order: VecDeque<(PeerId, String, u64)>,
    /// The newest timestamp gossiped per (document, storage).
    gossip_seen: BTreeMap<(DocumentId, StorageId), u64>,
}

impl Hub {
    pub(crate) fn new(me: PeerId, metadata: PeerMetadata, limits: Limits) -> Self {
        Self {
            me,
            metadata,
            limits,
            connections: BTreeMap::new(),
            ephemeral_seen: HashSet::new(),
            ephemeral_order: VecDeque::new(),
            gossip_seen: BTreeMap::new(),
        }
    }

    pub(crate) fn me(&self) -> &PeerId {
        &self.me
    }

    /// The established peers.
    pub(crate) fn peers(&self) -> impl Iterator<Item = &SharedPeer> {
        self.connections.values().filter_map(|c| match c {
            Connection::Established { peer, .. } => Some(peer),
            _ => None,
        })
    }

    pub(crate) fn connected(
        &mut self,
        connection: ConnectionId,
        dialed: bool,
        access: Access,
        now: Millis,
        out: &mut Vec<Effect>,
    ) {
        if dialed {
            send(
                out,
                connection,
                &Message::Join {
                    sender: self.me.clone(),
                    metadata: Some(self.metadata.clone()),
                    supported_versions: Some(vec![PROTOCOL_V1.to_owned()]),
                },
            );
            self.connections
                .insert(connection, Connection::AwaitingPeer { since: now, access });
        } else {
            self.connections
                .insert(connection, Connection::AwaitingJoin { since: now, access });
        }
    }

    /// The peer of an established connection.
    pub(crate) fn peer(&self, connection: ConnectionId) -> Option<&SharedPeer> {
        match self.connections.get(&connection) {
            Some(Connection::Established { peer, .. }) => Some(peer),
            _ => None,
        }
    }

    /// Whether some connection has not finished its handshake: a document nobody else has
    /// may still be on its way.
    pub(crate) fn handshaking(&self) -> bool {
        self.connections
            .values()
            .any(|c| !matches!(c, Connection::Established { .. }))
    }

    /// Ends connections whose handshake has not finished within `timeout_ms`.
    pub(crate) fn expire_handshakes(
        &mut self,
        now: Millis,
        timeout_ms: u64,
        out: &mut Vec<Effect>,
    ) {
        let stale: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter_map(|(connection, state)| match state {
                Connection::AwaitingJoin { since, .. } | Connection::AwaitingPeer { since, .. }
                    if since.plus(timeout_ms) <= now =>
                {
                    Some(*connection)
                }
                _ => None,
            })
            .collect();
        for connection in stale {
            let _ = self.fail(
                connection,
                PeerFault("no handshake in time".to_owned()),
                out,
            );
        }
    }

    /// The connection is gone; returns its peer if the handshake had finished.
    pub(crate) fn disconnected(
        &mut self,
        connection: ConnectionId,
        out: &mut Vec<Effect>,
    ) -> Routed {
        match self.connections.remove(&connection) {
            Some(Connection::Established { peer, .. }) => {
                out.push(Effect::Notify(Notification::PeerDisconnected {
                    connection,
                    peer_id: peer.peer_id.clone(),
                }));
                Routed::PeerGone(peer)
            }
            _ => Routed::Nothing,
        }
    }

    /// Ends a connection for breaking the protocol: an `error` message, then close. Other
    /// connections are untouched.
    pub(crate) fn fail(
        &mut self,
        connection: ConnectionId,
        fault: PeerFault,
        out: &mut Vec<Effect>,
    ) -> Routed {
        let target = match self.connections.get(&connection) {
            Some(Connection::Established { peer, .. }) => Some(peer.peer_id.clone()),
            Some(_) => None,
            None => return Routed::Nothing, // already gone
        };
        tracing::debug!(%connection, error = %fault.0, "peer broke the protocol");
        send(
            out,
            connection,
            &Message::Error {
                sender: Some(self.me.clone()),
                target,
                message: fault.0.clone(),
            },
        );
        out.push(Effect::Close {
            connection,
            reason: fault.0.clone(),
        });
        out.push(Effect::Notify(Notification::PeerFailed {
            connection,
            error: fault.0,
        }));
        match self.connections.remove(&connection) {
            Some(Connection::Established { peer, .. }) => Routed::PeerGone(peer),
            _ => Routed::Nothing,
        }
    }

    /// Decodes and handles one message from `connection`; also says what type of message it
    /// was (`"invalid"` if it could not be decoded, `"unknown"` for a type this peer does not
    /// know), for metrics.
    pub(crate) fn receive(
        &mut self,
        connection: ConnectionId,
        bytes: &[u8],
        out: &mut Vec<Effect>,
    ) -> (Routed, &'static str) {
        if !self.connections.contains_key(&connection) {
            return (Routed::Nothing, "late"); // closed already: late messages are dropped
        }
        let (routed, kind) = match wire::decode_with(bytes, &self.limits) {
            Ok(Some(message)) => {
                let kind = message.type_name();
                (self.route(connection, message, out), kind)
            }
            Ok(None) => (Ok(Routed::Nothing), "unknown"), // an unknown type: ignored
            Err(error) => (Err(error.into()), "invalid"),
        };
        match routed {
            Ok(routed) => (routed, kind),
            Err(fault) => (self.fail(connection, fault, out), kind),
        }
    }

    fn route(
        &mut self,
        connection: ConnectionId,
        message: Message,
        out: &mut Vec<Effect>,
    ) -> Result<Routed, PeerFault> {
        let Some(state) = self.connections.get_mut(&connection) else {
            return Ok(Routed::Nothing);
        };
        let established = match state {
            Connection::Established { peer, .. } => Some(peer.clone()),
            _ => None,
        };
        match (message, established) {
            (
                Message::Join {
                    sender,
                    metadata,
                    supported_versions,
                },
                None,
            ) if matches!(state, Connection::AwaitingJoin { .. }) => {
                // No list means version 1, as the JS server reads it.
                let speaks_v1 = supported_versions
                    .as_ref()
                    .is_none_or(|versions| versions.iter().any(|v| v == PROTOCOL_V1));
                if !speaks_v1 {
                    return Err(PeerFault(format!(
                        "unsupported protocol version: offered {:?}, this peer speaks {PROTOCOL_V1:?}",
                        supported_versions.unwrap_or_default()
                    )));
                }
                send(
                    out,
                    connection,
                    &Message::Peer {
                        sender: self.me.clone(),
                        target: sender.clone(),
                        metadata: Some(self.metadata.clone()),
                        selected_version: PROTOCOL_V1.to_owned(),
                    },
                );
                Ok(self.establish(connection, sender, metadata, out))
            }
            (
                Message::Peer {
                    sender,
                    metadata,
                    selected_version,
                    ..
                },
                None,
            ) if matches!(state, Connection::AwaitingPeer { .. }) => {
                if selected_version != PROTOCOL_V1 {
                    return Err(PeerFault(format!(
                        "unsupported protocol version {selected_version:?} selected; this peer speaks {PROTOCOL_V1:?}"
                    )));
                }
                Ok(self.establish(connection, sender, metadata, out))
            }
            (Message::Join { .. } | Message::Peer { .. }, _) => Err(PeerFault(
                "unexpected handshake message: the connection is already set up".to_owned(),
            )),
            (Message::Error { mut message, .. }, _) => {
                // Bounded: the text is the peer's.
                if message.len() > MAX_ERROR_TEXT {
                    let mut end = MAX_ERROR_TEXT;
                    while !message.is_char_boundary(end) {
                        end -= 1;
                    }
                    message.truncate(end);
                }
                tracing::debug!(%connection, %message, "peer reported an error");
                out.push(Effect::Notify(Notification::PeerError {
                    connection,
                    message,
                }));
                // Reported, not fatal: a peer that refuses or gives up on us closes the
                // connection itself (a handshake left unfinished times out), and a relay
                // refusing some changes (read-only access) keeps serving the rest, as the JS
                // client takes it.
                Ok(Routed::Nothing)
            }
            (Message::Leave { .. }, _) => {
                out.push(Effect::Close {
                    connection,
                    reason: "peer left".to_owned(),
                });
                Ok(self.disconnected(connection, out))
            }
            (message, None) => Err(PeerFault(format!(
                "{} message before the handshake (join) finished",
                message.type_name()
            ))),
            (message, Some(peer)) => Ok(self.route_established(connection, peer, message, out)),
        }
    }

    fn establish(
        &mut self,
        connection: ConnectionId,
        peer_id: PeerId,
        metadata: Option<PeerMetadata>,
        out: &mut Vec<Effect>,
    ) -> Routed {
        let access = match self.connections.get(&connection) {
            Some(
                Connection::AwaitingJoin { access, .. } | Connection::AwaitingPeer { access, .. },
            ) => access.clone(),
            _ => return Routed::Nothing, // callers check the state first
        };
        let peer = Arc::new(PeerInfo {
            connection,
            peer_id,
            metadata: metadata.unwrap_or_default(),
            access,
        });
        self.connections.insert(
            connection,
            Connection::Established {
                peer: peer.clone(),
                subscriptions: BTreeSet::new(),
            },
        );
        out.push(Effect::Notify(Notification::PeerConnected((*peer).clone())));
        Routed::PeerReady(peer)
    }

    fn route_established(
        &mut self,
        connection: ConnectionId,
        peer: SharedPeer,
        message: Message,
        out: &mut Vec<Effect>,
    ) -> Routed {
        // A document the peer may not read is unknown to it: asked for, it is unavailable
        // (the same answer as for a document nobody has), and it is never loaded for it.
        if let Some(document) = message.document()
            && !peer.access.can_read(document)
        {
            if matches!(message, Message::Sync { .. } | Message::Request { .. }) {
                self.tell_unavailable(&peer, document, out);
            }
            return Routed::Nothing;
        }
        let (document, message) = match message {
            Message::Sync { document, data, .. } => (
                document,
                DocMessage::Sync {
                    data,
                    request: false,
                },
            ),
            Message::Request { document, data, .. } => (
                document,
                DocMessage::Sync {
                    data,
                    request: true,
                },
            ),
            Message::DocUnavailable { document, .. } => (document, DocMessage::Unavailable),
            Message::Ephemeral {
                sender,
                document,
                session,
                count,
                data,
                ..
            } => {
                if !self.first_sight(&sender, &session, count) {
                    return Routed::Nothing;
                }
                (
                    document,
                    DocMessage::Ephemeral {
                        origin: sender,
                        session,
                        count,
                        data,
                    },
                )
            }
            Message::RemoteHeadsChanged {
                document,
                new_heads,
                ..
            } => (document, DocMessage::RemoteHeads(new_heads)),
            Message::RemoteSubscriptionChange { add, remove, .. } => {
                if let Some(Connection::Established { subscriptions, .. }) =
                    self.connections.get_mut(&connection)
                {
                    for storage in &remove {
                        subscriptions.remove(storage);
                    }
                    // Bounded: a peer cannot grow our memory without limit.
                    let room = MAX_SUBSCRIPTIONS.saturating_sub(subscriptions.len());
                    subscriptions.extend(add.into_iter().take(room));
                }
                return Routed::Nothing;
            }
            // Handled before.
            Message::Join { .. }
            | Message::Peer { .. }
            | Message::Error { .. }
            | Message::Leave { .. } => {
                return Routed::Nothing;
            }
        };
        Routed::Document {
            peer,
            document,
            message,
        }
    }

    /// Tells a peer that this replica cannot give it `document`.
    pub(crate) fn tell_unavailable(
        &self,
        peer: &PeerInfo,
        document: DocumentId,
        out: &mut Vec<Effect>,
    ) {
        send(
            out,
            peer.connection,
            &Message::DocUnavailable {
                sender: self.me.clone(),
                target: peer.peer_id.clone(),
                document,
            },
        );
    }

    /// Whether an ephemeral message is new (not ours, not seen); remembers it.
    pub(crate) fn first_sight(&mut self, origin: &PeerId, session: &str, count: u64) -> bool {
        if *origin == self.me {
            return false;
        }
        let key = (origin.clone(), session.to_owned(), count);
        if !self.ephemeral_seen.insert(key.clone()) {
            return false;
        }
        self.ephemeral_order.push_back(key);
        if self.ephemeral_order.len() > EPHEMERAL_MEMORY
            && let Some(old) = self.ephemeral_order.pop_front()
        {
            self.ephemeral_seen.remove(&old);
        }
        true
    }

    /// Tells the document's peers that subscribed to `storage` about its heads, unless they
    /// heard of newer ones already. Only peers that sync the document hear of it: a
    /// subscription does not reveal which documents a relay holds.
    pub(crate) fn gossip(
        &mut self,
        document: DocumentId,
        storage: &StorageId,
        heads: &[ChangeHash],
        timestamp: u64,
        document_peers: &[ConnectionId],
        out: &mut Vec<Effect>,
    ) {
        let subscribers: Vec<(ConnectionId, PeerId)> = document_peers
            .iter()
            .filter_map(|connection| match self.connections.get(connection) {
                Some(Connection::Established {
                    peer,
                    subscriptions,
                }) if subscriptions.contains(storage) => Some((*connection, peer.peer_id.clone())),
                _ => None,
            })
            .collect();
        if subscribers.is_empty() {
            return;
        }
        let key = (document, storage.clone());
        if self
            .gossip_seen
            .get(&key)
            .is_some_and(|seen| *seen >= timestamp)
        {
            return;
        }
        self.gossip_seen.insert(key, timestamp);
        for (connection, target) in subscribers {
            send(
                out,
                connection,
                &Message::RemoteHeadsChanged {
                    sender: self.me.clone(),
                    target,
                    document,
                    new_heads: vec![(
                        storage.clone(),
                        RemoteHeads {
                            heads: heads.to_vec(),
                            timestamp,
                        },
                    )],
                },
            );
        }
    }

    /// Forgets gossip bookkeeping older than `cutoff`, so memory stays bounded.
    pub(crate) fn expire_gossip(&mut self, cutoff: Millis) {
        self.gossip_seen.retain(|_, seen| *seen >= cutoff.0);
    }
}

/// Queues `message` for `connection`.
pub(crate) fn send(out: &mut Vec<Effect>, connection: ConnectionId, message: &Message) {
    out.push(Effect::Send {
        connection,
        kind: message.type_name(),
        bytes: wire::encode(message),
    });
}
