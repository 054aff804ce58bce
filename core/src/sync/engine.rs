//! [`Engine`]: the hub and the document synchronisers over documents kept in memory.

use std::{collections::BTreeMap, sync::Arc};

use automerge::{ActorId, Automerge, TextEncoding};

use super::{
    doc_sync::{Context, DocSync, Gossip},
    hub::{DocMessage, Hub, Routed},
    policy::{AnnounceAll, SharePolicy},
    types::{
        ConnectionId, Effect, Input, Millis, Notification, PeerFault, SharedPeer, StorageResult,
        StorageTask,
    },
};
use crate::{
    DocumentId, PeerId, StorageId,
    repo::load_untrusted,
    wire::{Limits, PeerMetadata},
};

/// How a replica takes part in the protocol.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncConfig {
    /// The id this replica announces.
    pub peer_id: PeerId,
    /// This replica's storage id; `None` for a replica that keeps nothing (peers then keep
    /// no sync state for it).
    pub storage_id: Option<StorageId>,
    /// Which documents to offer and serve. Default: [`AnnounceAll`], a device's policy.
    pub share_policy: Arc<dyn SharePolicy>,
    /// Limits on received messages.
    pub limits: Limits,
    /// This run's ephemeral session id. It must differ between runs (peers drop ephemeral
    /// messages whose session and count they have seen), so it is random by default.
    pub session_id: String,
    /// How long to wait for a peer asked for a document before counting it as not having
    /// it (10 s).
    pub request_timeout_ms: u64,
    /// How often, at most, a peer's sync state is saved while syncing (1 s); it is also
    /// saved when the peer disconnects.
    pub sync_state_save_interval_ms: u64,
    /// How long a connection may take to send its `join` (or answer ours) before it is
    /// closed (10 s).
    pub handshake_timeout_ms: u64,
    /// Seeds the actor ids the engine gives the documents it creates or loads. Random by
    /// default; fixed in tests, so that a run replays exactly.
    pub seed: u64,
    /// Record who delivered each change that arrives from a peer whose credentials name a
    /// user (see [`Access::for_user`](crate::sync::Access::for_user)), with the change
    /// (`StorageTask::Append`'s `arrivals`). Off by default; a relay that checks tokens
    /// turns it on.
    pub record_arrivals: bool,
}

impl SyncConfig {
    /// A configuration with the defaults, for a replica that announces `peer_id` and,
    /// if it keeps its documents, `storage_id`.
    pub fn new(peer_id: PeerId, storage_id: Option<StorageId>) -> Self {
        Self {
            peer_id,
            storage_id,
            share_policy: Arc::new(AnnounceAll),
            limits: Limits::DEFAULT,
            session_id: PeerId::random().to_string(),
            request_timeout_ms: 10_000,
            sync_state_save_interval_ms: 1_000,
            handshake_timeout_ms: 10_000,
            seed: random_seed(),
            record_arrivals: false,
        }
    }

    /// Recording who delivered each change (see [`record_arrivals`](Self::record_arrivals)).
    pub fn with_arrivals_recorded(mut self) -> Self {
        self.record_arrivals = true;
        self
    }

    /// With another share policy.
    pub fn with_share_policy(mut self, policy: Arc<dyn SharePolicy>) -> Self {
        self.share_policy = policy;
        self
    }

    /// With a given session id and seed, so that a run replays exactly (for tests).
    pub fn deterministic(mut self, session_id: impl Into<String>, seed: u64) -> Self {
        self.session_id = session_id.into();
        self.seed = seed;
        self
    }
}

#[allow(clippy::expect_used)]
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    u64::from_le_bytes(bytes)
}

enum Slot {
    /// Being loaded from storage: messages and app requests wait.
    Loading {
        waiting: Vec<(SharedPeer, DocMessage)>,
        app_wants: bool,
    },
    Ready(Box<Loaded>),
}

struct Loaded {
    doc: Automerge,
    sync: DocSync,
}

/// A whole replica's protocol engine over documents it keeps in memory: sans-IO, single
/// threaded, deterministic for a given sequence of inputs.
///
/// Drive it like this:
/// - Call [`handle`](Self::handle) for every [`Input`], with the current time (which never
///   goes backwards). Carry out the returned [`Effect`]s in order.
/// - Storage tasks are answered by calling `handle` again with [`Input::Storage`]; tasks of
///   one document must be answered in the order they were given. Until then, the document
///   sends nothing new to peers (nothing leaves the replica before it is stored).
/// - Call `handle(now, Input::Tick)` once `now` reaches [`next_deadline`](Self::next_deadline)
///   (check again after every `handle`).
/// - After [`Effect::Close`], close the connection and report [`Input::Disconnected`].
///
/// Documents stay loaded once loaded. Nothing inside blocks or spawns; automerge work runs
/// on the caller's thread.
pub struct Engine {
    config: SyncConfig,
    hub: Hub,
    docs: BTreeMap<DocumentId, Slot>,
    now: Millis,
    /// splitmix64 state for actor ids.
    actor_state: u64,
    /// Ephemeral messages broadcast in this session.
    ephemeral_count: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("peer_id", &self.config.peer_id)
            .field("documents", &self.docs.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A replica with no documents loaded and no connections.
    pub fn new(config: SyncConfig) -> Self {
        let metadata = PeerMetadata {
            is_ephemeral: config.storage_id.is_none(),
            storage_id: config.storage_id.clone(),
        };
        Self {
            hub: Hub::new(config.peer_id.clone(), metadata, config.limits),
            actor_state: config.seed,
            ephemeral_count: 0,
            config,
            docs: BTreeMap::new(),
            now: Millis(0),
        }
    }

    /// A fresh actor id for a document this engine writes to, from the seeded generator.
    fn next_actor(&mut self) -> ActorId {
        let mut bytes = [0u8; 16];
        for half in bytes.chunks_mut(8) {
            self.actor_state = self.actor_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.actor_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            half.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        ActorId::from(bytes)
    }

    /// This replica's peer id.
    pub fn peer_id(&self) -> &PeerId {
        self.hub.me()
    }

    /// A loaded document, if it is ready.
    pub fn document(&self, id: DocumentId) -> Option<&Automerge> {
        match self.docs.get(&id) {
            Some(Slot::Ready(loaded)) => Some(&loaded.doc),
            _ => None,
        }
    }

    /// The ids of the documents loaded (or being loaded).
    pub fn documents(&self) -> impl Iterator<Item = DocumentId> + '_ {
        self.docs.keys().copied()
    }

    /// When to call `handle(now, Input::Tick)` next, if ever.
    pub fn next_deadline(&self) -> Option<Millis> {
        let cx = context(&self.config, self.now);
        self.docs
            .values()
            .filter_map(|slot| match slot {
                Slot::Ready(loaded) => loaded.sync.next_deadline(&cx),
                Slot::Loading { .. } => None,
            })
            .min()
    }

    /// Handles one input at time `now`; returns what the driver must do, in order.
    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Effect> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        match input {
            Input::Connected {
                connection,
                dialed,
                access,
            } => self
                .hub
                .connected(connection, dialed, access, self.now, &mut out),
            Input::Received { connection, bytes } => {
                let (routed, _) = self.hub.receive(connection, &bytes, &mut out);
                self.route(routed, &mut out);
            }
            Input::Disconnected { connection } => {
                let routed = self.hub.disconnected(connection, &mut out);
                self.route(routed, &mut out);
            }
            Input::Create { document } => self.create(document, &mut out),
            Input::Open { document } => self.open(document, &mut out),
            Input::Change { document, change } => {
                if let Some(Slot::Ready(loaded)) = self.docs.get_mut(&document)
                    && let Err(error) = loaded.sync.change(&mut loaded.doc, change, &mut out)
                {
                    tracing::warn!(%document, %error, "local change failed");
                }
            }
            Input::Broadcast { document, data } => {
                let cx = context(&self.config, self.now);
                if let Some(Slot::Ready(loaded)) = self.docs.get(&document) {
                    self.ephemeral_count += 1;
                    loaded
                        .sync
                        .broadcast(&cx, self.ephemeral_count, &data, &mut out);
                }
            }
            Input::Storage(result) => self.storage_result(result, &mut out),
            Input::Tick => {
                let cx = context(&self.config, self.now);
                for slot in self.docs.values_mut() {
                    if let Slot::Ready(loaded) = slot {
                        loaded.sync.tick(&cx, &loaded.doc, &mut out);
                    }
                }
                self.hub
                    .expire_handshakes(self.now, self.config.handshake_timeout_ms, &mut out);
                // Gossip older than a day is of no use for ordering.
                self.hub
                    .expire_gossip(Millis(self.now.0.saturating_sub(86_400_000)));
            }
        }
        out
    }

    fn create(&mut self, document: DocumentId, out: &mut Vec<Effect>) {
        if self.docs.contains_key(&document) {
            tracing::warn!(%document, "create: the document is already loaded");
            return;
        }
        let doc = Automerge::new().with_actor(self.next_actor());
        let mut sync = DocSync::new(document, true);
        let cx = context(&self.config, self.now);
        sync.created(&cx, &doc, out);
        for peer in self.hub.peers() {
            sync.add_peer(&cx, &doc, peer.clone(), out);
        }
        out.push(Effect::Notify(Notification::DocumentReady { document }));
        self.docs
            .insert(document, Slot::Ready(Box::new(Loaded { doc, sync })));
    }

    fn open(&mut self, document: DocumentId, out: &mut Vec<Effect>) {
        let cx = context(&self.config, self.now);
        match self.docs.get_mut(&document) {
            Some(Slot::Ready(loaded)) => loaded.sync.open(&cx, &loaded.doc, out),
            Some(Slot::Loading { app_wants, .. }) => *app_wants = true,
            None => self.load(document, true, Vec::new(), out),
        }
    }

    fn load(
        &mut self,
        document: DocumentId,
        app_wants: bool,
        waiting: Vec<(SharedPeer, DocMessage)>,
        out: &mut Vec<Effect>,
    ) {
        self.docs
            .insert(document, Slot::Loading { waiting, app_wants });
        out.push(Effect::Storage(StorageTask::Load { document }));
    }

    /// Acts on what the hub made of a connection event.
    fn route(&mut self, routed: Routed, out: &mut Vec<Effect>) {
        let cx = context(&self.config, self.now);
        match routed {
            Routed::Nothing => {}
            Routed::PeerReady(peer) => {
                for slot in self.docs.values_mut() {
                    if let Slot::Ready(loaded) = slot {
                        loaded.sync.add_peer(&cx, &loaded.doc, peer.clone(), out);
                    }
                }
            }
            Routed::PeerGone(peer) => self.peer_gone(peer.connection, out),
            Routed::Document {
                peer,
                document,
                message,
            } => match self.docs.get_mut(&document) {
                Some(Slot::Ready(loaded)) => {
                    let connection = peer.connection;
                    let result =
                        loaded
                            .sync
                            .receive(&cx, &mut loaded.doc, connection, message, out);
                    self.after_receive(document, connection, result, out);
                }
                Some(Slot::Loading { waiting, .. }) => waiting.push((peer, message)),
                // Only sync traffic loads a document; ephemera and gossip about one we do
                // not hold are dropped.
                None if matches!(message, DocMessage::Sync { .. }) => {
                    self.load(document, false, vec![(peer, message)], out);
                }
                None => {}
            },
        }
    }

    fn after_receive(
        &mut self,
        document: DocumentId,
        connection: ConnectionId,
        result: Result<Gossip, PeerFault>,
        out: &mut Vec<Effect>,
    ) {
        match result {
            Ok(gossip) => self.gossip(document, gossip, out),
            Err(fault) => {
                let routed = self.hub.fail(connection, fault, out);
                self.route(routed, out);
            }
        }
    }

    fn gossip(&mut self, document: DocumentId, gossip: Gossip, out: &mut Vec<Effect>) {
        if gossip.is_empty() {
            return;
        }
        let Some(Slot::Ready(loaded)) = self.docs.get(&document) else {
            return;
        };
        let peers = loaded.sync.engaged_peers();
        for (storage, heads, timestamp) in gossip {
            self.hub
                .gossip(document, &storage, &heads, timestamp, &peers, out);
        }
    }

    fn peer_gone(&mut self, connection: ConnectionId, out: &mut Vec<Effect>) {
        let cx = context(&self.config, self.now);
        for slot in self.docs.values_mut() {
            match slot {
                Slot::Ready(loaded) => loaded.sync.remove_peer(&cx, &loaded.doc, connection, out),
                Slot::Loading { waiting, .. } => {
                    waiting.retain(|(peer, _)| peer.connection != connection)
                }
            }
        }
    }

    fn storage_result(&mut self, result: StorageResult, out: &mut Vec<Effect>) {
        let cx = context(&self.config, self.now);
        match result {
            StorageResult::Loaded { document, bytes } => self.loaded(document, bytes, out),
            StorageResult::Appended { document, ok } => {
                if let Some(Slot::Ready(loaded)) = self.docs.get_mut(&document) {
                    loaded.sync.persisted(&cx, &loaded.doc, ok, out);
                }
            }
            StorageResult::SyncStateLoaded {
                document,
                peer,
                state,
            } => {
                let Some(Slot::Ready(loaded)) = self.docs.get_mut(&document) else {
                    return;
                };
                let (faults, gossip) = loaded.sync.sync_state_loaded(
                    &cx,
                    &mut loaded.doc,
                    &peer,
                    state.as_deref(),
                    out,
                );
                self.gossip(document, gossip, out);
                for (connection, fault) in faults {
                    self.after_receive(document, connection, Err(fault), out);
                }
            }
        }
    }

    fn loaded(&mut self, document: DocumentId, bytes: Option<Vec<u8>>, out: &mut Vec<Effect>) {
        let Some(Slot::Loading { waiting, app_wants }) = self.docs.remove(&document) else {
            return;
        };
        let actor = self.next_actor();
        let cx = context(&self.config, self.now);
        let (doc, exists) =
            match bytes.map(|bytes| load_untrusted(&bytes, TextEncoding::UnicodeCodePoint)) {
                None => (Automerge::new(), false),
                Some(Ok(doc)) => (doc, true),
                Some(Err(reason)) => {
                    // Nothing is written over a damaged document: it stays unloaded and peers
                    // that asked are told it is unavailable.
                    tracing::error!(%document, %reason, "stored document cannot be loaded");
                    for (peer, _) in waiting {
                        self.hub.tell_unavailable(&peer, document, out);
                    }
                    if app_wants {
                        out.push(Effect::Notify(Notification::DocumentUnavailable {
                            document,
                        }));
                    }
                    return;
                }
            };
        let mut loaded = Box::new(Loaded {
            doc: doc.with_actor(actor),
            sync: DocSync::new(document, exists),
        });
        for peer in self.hub.peers() {
            loaded.sync.add_peer(&cx, &loaded.doc, peer.clone(), out);
        }
        let mut results = Vec::new();
        for (peer, message) in waiting {
            let result = loaded
                .sync
                .receive(&cx, &mut loaded.doc, peer.connection, message, out);
            results.push((peer.connection, result));
        }
        if app_wants {
            loaded.sync.open(&cx, &loaded.doc, out);
        }
        self.docs.insert(document, Slot::Ready(loaded));
        for (connection, result) in results {
            self.after_receive(document, connection, result, out);
        }
    }
}

fn context(config: &SyncConfig, now: Millis) -> Context<'_> {
    config.context(now)
}

impl SyncConfig {
    /// What a document synchroniser needs to know, at `now`.
    pub(crate) fn context(&self, now: Millis) -> Context<'_> {
        let config = self;
        Context {
            me: &config.peer_id,
            policy: config.share_policy.as_ref(),
            session: &config.session_id,
            now,
            request_timeout_ms: config.request_timeout_ms,
            save_interval_ms: config.sync_state_save_interval_ms,
            record_arrivals: config.record_arrivals,
        }
    }
}
