//! [`DocSync`]: the protocol for one document — a sync state per peer, who asked, who has
//! it, and the rule that nothing leaves this replica before it is durable.

use std::{
    collections::{BTreeMap, VecDeque},
    panic::{AssertUnwindSafe, catch_unwind},
};

use automerge::{
    Automerge, ChangeHash,
    sync::{self, SyncDoc},
};

use super::{
    hub::{DocMessage, send},
    policy::SharePolicy,
    types::{
        Arrivals, ConnectionId, Effect, LocalChange, Millis, Notification, PeerFault, PeerInfo,
        SharedPeer, StorageTask,
    },
};
use crate::{DocumentId, PeerId, StorageId, wire::Message};

/// How a peer comes back to a document that was let go and loaded again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejoin {
    /// First time, or nothing known.
    New,
    /// It synced the document before it was let go while idle: it is offered the
    /// document whatever the share policy says (it is still interested).
    Resumed,
    /// It asked for the document, which was not here, and was told so: it is sent the
    /// document when it arrives (automerge-repo asks only once per connection).
    Awaiting,
}

/// What a document's synchroniser needs to know of the replica and of now.
pub(crate) struct Context<'a> {
    pub(crate) me: &'a PeerId,
    pub(crate) policy: &'a dyn SharePolicy,
    pub(crate) session: &'a str,
    pub(crate) now: Millis,
    pub(crate) request_timeout_ms: u64,
    pub(crate) save_interval_ms: u64,
    pub(crate) record_arrivals: bool,
}

/// Heads a peer with storage reported, for heads gossip: (storage, heads, timestamp).
pub(crate) type Gossip = Vec<(StorageId, Vec<ChangeHash>, u64)>;

/// How many messages of a peer may wait for its sync state to load.
const MAX_WAITING: usize = 256;

/// How far in the future a gossiped timestamp may be (a later one is taken as now plus
/// this), so that a peer cannot silence later gossip with a huge timestamp.
const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// How long a failed write waits before it is retried.
const WRITE_RETRY_MS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Nothing heard from the peer about this document.
    Quiet,
    /// Our document is empty; we sent a `request` at `since` and wait for an answer.
    Asked { since: Millis },
    /// The peer sent `sync` or `request`.
    Syncing,
    /// The peer said `doc-unavailable` (or did not answer our request in time).
    Unavailable,
}

struct DocPeer {
    info: SharedPeer,
    sync: sync::State,
    /// The peer has a persistent storage whose saved sync state we have not asked for yet:
    /// it is loaded when we first sync with the peer (not for every document a relay holds).
    state_pending: bool,
    /// The saved sync state is being loaded; the peer's messages wait for it.
    loading_state: bool,
    waiting: Vec<DocMessage>,
    announce: bool,
    access: bool,
    /// It may write the document: its changes are applied, and it may be a source of it.
    writes: bool,
    status: Status,
    /// The peer asked with `request` and has nothing.
    wants: bool,
    /// We answered its request with `doc-unavailable`.
    told_unavailable: bool,
    /// We told it (by an `error`) that its changes to this document are refused.
    told_read_only: bool,
    /// Offered again because it synced the document before it was let go while idle (not
    /// because the share policy says so).
    resumed: bool,
    /// Shared heads when the sync state was last saved, and since when they differ.
    saved_shared_heads: Vec<ChangeHash>,
    dirty_since: Option<Millis>,
}

impl DocPeer {
    /// Whether the peer may still give us a document we lack: one we will ask, are
    /// waiting on, or that is sending it.
    fn may_provide(&self) -> bool {
        // A peer that may not write can never give us the document (its changes are not
        // applied): it must not hold up `doc-unavailable` or keep an absent document.
        self.access
            && self.writes
            && !self.wants
            && match self.status {
                Status::Quiet => self.announce || self.loading_state,
                Status::Asked { .. } => true,
                Status::Syncing => self.sync.their_heads.as_ref().is_none_or(|h| !h.is_empty()),
                Status::Unavailable => false,
            }
    }

    /// Whether we sync with this peer at all (send it messages, forward it ephemera).
    fn engaged(&self) -> bool {
        self.access
            && !self.loading_state
            && (self.announce || self.wants || self.status == Status::Syncing)
    }
}

/// The sync protocol of one document. Every method takes the document itself: the caller
/// owns it and decides on which thread it is touched.
pub(crate) struct DocSync {
    id: DocumentId,
    peers: BTreeMap<ConnectionId, DocPeer>,
    /// The document exists here (stored, created, or received), even if it has no changes.
    exists: bool,
    /// Writes submitted whose outcome is not known.
    writes_in_flight: usize,
    /// The arrival records each of those writes carries, oldest first.
    arrivals_in_flight: VecDeque<Vec<Arrivals>>,
    /// Arrival records whose write failed: written with the next one.
    arrivals_unwritten: Vec<Arrivals>,
    /// Some write of the document is in storage (or it was loaded from there).
    stored_once: bool,
    /// A write failed: what it held is only in memory until a retry at this time succeeds.
    retry_at: Option<Millis>,
    /// The app opened the document and waits for it.
    app_wants: bool,
    app_told_unavailable: bool,
}

impl DocSync {
    pub(crate) fn new(id: DocumentId, exists: bool) -> Self {
        Self {
            id,
            peers: BTreeMap::new(),
            exists,
            writes_in_flight: 0,
            arrivals_in_flight: VecDeque::new(),
            arrivals_unwritten: Vec::new(),
            stored_once: exists,
            retry_at: None,
            app_wants: false,
            app_told_unavailable: false,
        }
    }

    fn has_data(&self, doc: &Automerge) -> bool {
        self.exists || !doc.get_heads().is_empty()
    }

    /// The connections syncing this document.
    pub(crate) fn engaged_peers(&self) -> Vec<ConnectionId> {
        self.peers
            .iter()
            .filter(|(_, peer)| peer.engaged())
            .map(|(connection, _)| *connection)
            .collect()
    }

    /// The document was just created here: store it.
    pub(crate) fn created(&mut self, cx: &Context<'_>, doc: &Automerge, out: &mut Vec<Effect>) {
        self.exists = true;
        self.stored_once = false;
        self.persist(doc.save(), doc.get_heads(), None, out);
        self.flush(cx, doc, out);
    }

    /// The app opened the document: tell it when it is ready, or ask peers for it.
    pub(crate) fn open(&mut self, cx: &Context<'_>, doc: &Automerge, out: &mut Vec<Effect>) {
        if self.has_data(doc) {
            out.push(Effect::Notify(Notification::DocumentReady {
                document: self.id,
            }));
            return;
        }
        self.app_wants = true;
        self.app_told_unavailable = false;
        // Ask again those who did not have it before.
        for peer in self.peers.values_mut() {
            if peer.status == Status::Unavailable {
                peer.status = Status::Quiet;
                peer.sync = fresh_state(&peer.info, self.id);
            }
        }
        self.flush(cx, doc, out);
        self.check_unavailable(cx, out);
    }

    /// A peer finished its handshake (or the document was loaded while it was connected).
    pub(crate) fn add_peer(
        &mut self,
        cx: &Context<'_>,
        doc: &Automerge,
        peer: SharedPeer,
        out: &mut Vec<Effect>,
    ) {
        self.add_peer_as(cx, doc, peer, Rejoin::New, out);
    }

    /// Adds a peer that may have been here before (see [`Rejoin`]).
    pub(crate) fn add_peer_as(
        &mut self,
        cx: &Context<'_>,
        doc: &Automerge,
        peer: SharedPeer,
        rejoin: Rejoin,
        out: &mut Vec<Effect>,
    ) {
        let resume = rejoin == Rejoin::Resumed;
        // It asked before and was told the document is unavailable: it still wants it.
        let awaiting = rejoin == Rejoin::Awaiting;
        if self.peers.contains_key(&peer.connection) {
            return; // added already: keep what we know of it
        }
        let access = peer.access.can_read(self.id) && cx.policy.access(&peer, self.id);
        let writes = access && peer.access.can_write(self.id);
        let by_policy = cx.policy.announce(&peer, self.id);
        let announce = access && (resume || by_policy);
        let storage = peer.persistent_storage().cloned();
        let connection = peer.connection;
        // Only a peer we offer the document to needs its state now; others ask first.
        let load_now = storage.is_some() && announce;
        self.peers.insert(
            connection,
            DocPeer {
                sync: fresh_state(&peer, self.id),
                info: peer,
                state_pending: storage.is_some() && !announce,
                loading_state: load_now,
                waiting: Vec::new(),
                announce,
                access,
                writes,
                status: Status::Quiet,
                wants: awaiting && access,
                told_unavailable: awaiting && access,
                told_read_only: false,
                resumed: resume && !by_policy,
                saved_shared_heads: Vec::new(),
                dirty_since: None,
            },
        );
        match storage {
            Some(peer) if load_now => out.push(Effect::Storage(StorageTask::LoadSyncState {
                document: self.id,
                peer,
            })),
            _ => self.flush(cx, doc, out),
        }
    }

    /// Forgets peers whose connections are not in `connected` (they left while nobody
    /// held this document), as if each had disconnected.
    pub(crate) fn retain_peers(
        &mut self,
        cx: &Context<'_>,
        doc: &Automerge,
        connected: &[ConnectionId],
        out: &mut Vec<Effect>,
    ) {
        let gone: Vec<ConnectionId> = self
            .peers
            .keys()
            .filter(|connection| !connected.contains(connection))
            .copied()
            .collect();
        for connection in gone {
            self.remove_peer(cx, doc, connection, out);
        }
    }

    /// A peer's connection is gone: save what we share with it, and stop waiting for it.
    pub(crate) fn remove_peer(
        &mut self,
        cx: &Context<'_>,
        doc: &Automerge,
        connection: ConnectionId,
        out: &mut Vec<Effect>,
    ) {
        if let Some(mut peer) = self.peers.remove(&connection)
            && self.durable()
        {
            self.save_state(cx, &mut peer, true, out);
        }
        if !self.has_data(doc) {
            self.check_unavailable(cx, out);
        }
    }

    /// The sync state saved with `storage` arrived: peers with that storage start syncing,
    /// and their waiting messages are handled. Returns the peers whose messages broke the
    /// protocol, and heads to gossip.
    pub(crate) fn sync_state_loaded(
        &mut self,
        cx: &Context<'_>,
        doc: &mut Automerge,
        storage: &StorageId,
        state: Option<&[u8]>,
        out: &mut Vec<Effect>,
    ) -> (Vec<(ConnectionId, PeerFault)>, Gossip) {
        let mut ready = Vec::new();
        for (connection, peer) in &mut self.peers {
            if peer.loading_state && peer.info.persistent_storage() == Some(storage) {
                // A state that does not decode (written by another version) costs a full
                // sync, nothing more.
                peer.sync = state
                    .and_then(|bytes| sync::State::decode(bytes).ok())
                    .unwrap_or_default();
                // What it may write is decided by this connection, not by a saved state.
                peer.sync
                    .set_read_only(!peer.info.access.can_write(self.id));
                peer.saved_shared_heads = peer.sync.shared_heads.clone();
                peer.loading_state = false;
                ready.push((*connection, std::mem::take(&mut peer.waiting)));
            }
        }
        let (mut faults, mut gossip) = (Vec::new(), Vec::new());
        for (connection, waiting) in ready {
            for message in waiting {
                match self.receive(cx, doc, connection, message, out) {
                    Ok(heads) => gossip.extend(heads),
                    Err(fault) => {
                        faults.push((connection, fault));
                        break;
                    }
                }
            }
        }
        self.flush(cx, doc, out);
        (faults, gossip)
    }

    /// Handles a message from a peer. An `Err` means the peer broke the protocol: end its
    /// connection (and call [`remove_peer`](Self::remove_peer)).
    pub(crate) fn receive(
        &mut self,
        cx: &Context<'_>,
        doc: &mut Automerge,
        connection: ConnectionId,
        message: DocMessage,
        out: &mut Vec<Effect>,
    ) -> Result<Gossip, PeerFault> {
        let Some(peer) = self.peers.get_mut(&connection) else {
            return Ok(Vec::new());
        };
        if peer.state_pending
            && let Some(storage) = peer.info.persistent_storage()
        {
            peer.state_pending = false;
            peer.loading_state = true;
            out.push(Effect::Storage(StorageTask::LoadSyncState {
                document: self.id,
                peer: storage.clone(),
            }));
        }
        if peer.loading_state {
            if peer.waiting.len() >= MAX_WAITING {
                return Err(PeerFault(format!(
                    "more than {MAX_WAITING} messages for {} before its sync state loaded",
                    self.id
                )));
            }
            peer.waiting.push(message);
            return Ok(Vec::new());
        }
        match message {
            DocMessage::Sync { data, request } => {
                self.receive_sync(cx, doc, connection, &data, request, out)
            }
            DocMessage::Unavailable => {
                peer.status = Status::Unavailable;
                if !self.has_data(doc) {
                    self.check_unavailable(cx, out);
                }
                Ok(Vec::new())
            }
            DocMessage::Ephemeral {
                origin,
                session,
                count,
                data,
            } => {
                if !peer.access {
                    return Ok(Vec::new());
                }
                out.push(Effect::Notify(Notification::Ephemeral {
                    document: self.id,
                    from: origin.clone(),
                    data: data.clone(),
                }));
                for (other, peer) in &self.peers {
                    if *other != connection && peer.engaged() && peer.info.peer_id != origin {
                        send(
                            out,
                            *other,
                            &Message::Ephemeral {
                                sender: origin.clone(),
                                target: peer.info.peer_id.clone(),
                                document: self.id,
                                session: session.clone(),
                                count,
                                data: data.clone(),
                            },
                        );
                    }
                }
                Ok(Vec::new())
            }
            DocMessage::RemoteHeads(new_heads) => {
                // Only from peers that may write: a reader could otherwise claim any
                // storage's heads (a relay's too) and mislead subscribers.
                if !peer.access || !peer.writes {
                    return Ok(Vec::new());
                }
                let mut gossip = Vec::new();
                for (storage, remote) in new_heads {
                    out.push(Effect::Notify(Notification::RemoteHeads {
                        document: self.id,
                        storage: storage.clone(),
                        heads: remote.heads.clone(),
                        timestamp: remote.timestamp.min(cx.now.plus(MAX_CLOCK_SKEW_MS).0),
                    }));
                    let timestamp = remote.timestamp.min(cx.now.plus(MAX_CLOCK_SKEW_MS).0);
                    gossip.push((storage, remote.heads, timestamp));
                }
                Ok(gossip)
            }
        }
    }

    fn receive_sync(
        &mut self,
        cx: &Context<'_>,
        doc: &mut Automerge,
        connection: ConnectionId,
        data: &[u8],
        request: bool,
        out: &mut Vec<Effect>,
    ) -> Result<Gossip, PeerFault> {
        let id = self.id;
        let Some(peer) = self.peers.get_mut(&connection) else {
            return Ok(Vec::new());
        };
        if !peer.access {
            send(
                out,
                connection,
                &Message::DocUnavailable {
                    sender: cx.me.clone(),
                    target: peer.info.peer_id.clone(),
                    document: id,
                },
            );
            return Ok(Vec::new());
        }
        let message = sync::Message::decode(data).map_err(|error| {
            PeerFault(format!("invalid automerge sync message for {id}: {error}"))
        })?;
        if !message.changes.is_empty() && !peer.info.access.can_write(id) {
            // Automerge leaves the changes out (the state is read-only, see `fresh_state`);
            // the peer hears why, once.
            tracing::debug!(document = %id, peer = %peer.info.peer_id, "changes from a read-only peer refused");
            if !peer.told_read_only {
                peer.told_read_only = true;
                send(
                    out,
                    connection,
                    &Message::Error {
                        sender: Some(cx.me.clone()),
                        target: Some(peer.info.peer_id.clone()),
                        message: format!(
                            "changes to {id} refused: this connection may read the document but not write it"
                        ),
                    },
                );
            }
        }
        let their_heads = message.heads.clone();
        peer.status = Status::Syncing;
        peer.wants = request && their_heads.is_empty();
        if request {
            peer.told_unavailable = false;
        }
        let before = doc.get_heads();
        let had_data = self.exists || !before.is_empty();
        // Who delivered what this message brings, for a repo that records it.
        let arrived_from = peer
            .info
            .access
            .user()
            .filter(|_| cx.record_arrivals)
            .map(str::to_owned);
        let arrivals = |doc: &Automerge| {
            arrived_from.clone().map(|user| Arrivals {
                user,
                changes: doc
                    .get_changes_meta(&before)
                    .iter()
                    .map(|m| m.hash)
                    .collect(),
                at: cx.now,
            })
        };
        // Automerge checks what it applies; a panic on hostile input must not take the
        // replica down. The document is left as automerge left it.
        let received = catch_unwind(AssertUnwindSafe(|| {
            doc.receive_sync_message(&mut peer.sync, message)
        }));
        let refused = match received {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("sync message for {id} refused: {error}")),
            Err(_) => Some(format!("sync message for {id} crashed automerge")),
        };
        if let Some(reason) = refused {
            // Changes automerge applied before it gave up are in the document: store them
            // like any other, so memory and storage do not drift apart.
            if doc.get_heads() != before {
                let arrivals = arrivals(doc);
                self.store_changes(doc, &before, arrivals, out);
            }
            return Err(PeerFault(reason));
        }
        let gossip = match peer.info.persistent_storage() {
            Some(storage) => vec![(storage.clone(), their_heads, cx.now.0)],
            None => Vec::new(),
        };
        let from = peer.info.peer_id.clone();
        let after = doc.get_heads();
        if after != before {
            let arrivals = arrivals(doc);
            self.store_changes(doc, &before, arrivals, out);
            out.push(Effect::Notify(Notification::RemoteChange {
                document: id,
                from,
                heads: after,
            }));
            if !had_data {
                out.push(Effect::Notify(Notification::DocumentReady { document: id }));
            }
        }
        self.flush(cx, doc, out);
        if !self.has_data(doc) {
            self.check_unavailable(cx, out);
        }
        Ok(gossip)
    }

    /// Applies a local change and stores it; peers hear of it once it is stored.
    pub(crate) fn change(
        &mut self,
        doc: &mut Automerge,
        change: LocalChange,
        out: &mut Vec<Effect>,
    ) -> Result<(), automerge::AutomergeError> {
        let before = doc.get_heads();
        let options = crate::ChangeOptions::default();
        doc.transact_with(|_| options.commit_options(), change.0)
            .map_err(|failure| failure.error)?;
        let after = doc.get_heads();
        if after != before {
            self.store_new_changes(doc, &before, out);
        }
        Ok(())
    }

    /// A change made outside the synchroniser (by the repo, which stores it itself) is being
    /// written: until [`persisted`](Self::persisted) reports it, nothing is sent and no sync
    /// state saved, as for the synchroniser's own writes.
    pub(crate) fn write_started(&mut self) {
        self.exists = true;
        self.writes_in_flight += 1;
        self.arrivals_in_flight.push_back(Vec::new());
    }

    /// Whether no peer syncs the document and nothing of it is pending (writes, sync
    /// states to save, peers asked or waiting): it can be unloaded and loaded again later
    /// without anything lost.
    pub(crate) fn unused(&self) -> bool {
        self.quiet() && self.peers.values().all(|peer| !peer.engaged())
    }

    /// Whether nothing is pending and every peer syncing the document said it has exactly
    /// what this replica has (nothing left to send either way; whoever sent the last
    /// message may still wait for an answer that never comes): a document loaded only to
    /// bring peers up to date is done.
    pub(crate) fn settled(&self, doc: &Automerge) -> bool {
        let mut ours = doc.get_heads();
        ours.sort();
        let same = |heads: &[ChangeHash]| {
            let mut heads = heads.to_vec();
            heads.sort();
            heads == ours
        };
        // What they said last, or what both had when the sync state saved for them was
        // written (a peer that has everything says nothing to a reloaded document). Peers
        // offered it again only because they synced it before (a relay's clients) do not
        // count: in sync, they may say nothing at all, and they are remembered for the next
        // load when it is let go.
        self.quiet()
            && self
                .peers
                .values()
                .filter(|peer| peer.engaged() && !peer.resumed)
                .all(|peer| {
                    peer.sync.their_heads.as_deref().is_some_and(same)
                        || same(&peer.sync.shared_heads)
                })
    }

    /// Whether nothing of the document is pending (writes, sync states to save, peers
    /// asked or waiting), though peers may sync it: it can be let go while idle, and
    /// loaded again (its peers resumed) when a message comes, without anything lost.
    pub(crate) fn quiet(&self) -> bool {
        self.durable()
            && self.peers.values().all(|peer| {
                !peer.loading_state
                    && peer.waiting.is_empty()
                    && peer.dirty_since.is_none()
                    && !matches!(peer.status, Status::Asked { .. })
            })
    }

    /// Whether the document is not here, it was answered as unavailable, and nothing is
    /// being asked or answered about it any more: its driver may let it go.
    pub(crate) fn forgettable(&self, doc: &Automerge) -> bool {
        let answered = self.app_told_unavailable || self.peers.values().any(|p| p.told_unavailable);
        answered
            && !self.has_data(doc)
            && self.writes_in_flight == 0
            && (!self.app_wants || self.app_told_unavailable)
            && self.peers.values().all(|peer| {
                !peer.may_provide()
                    && (!peer.wants || peer.told_unavailable)
                    && !peer.loading_state
                    && peer.waiting.is_empty()
            })
    }

    /// The peers that asked for the document and were told it is unavailable.
    pub(crate) fn asked_in_vain(&self) -> Vec<ConnectionId> {
        self.peers
            .iter()
            .filter(|(_, peer)| peer.wants && peer.told_unavailable)
            .map(|(connection, _)| *connection)
            .collect()
    }

    /// Sends an ephemeral payload to the document's peers.
    /// `count` numbers the message within this replica's session: one counter for all
    /// documents, since JS peers drop a count they have seen from the session.
    pub(crate) fn broadcast(
        &self,
        cx: &Context<'_>,
        count: u64,
        data: &[u8],
        out: &mut Vec<Effect>,
    ) {
        for (connection, peer) in &self.peers {
            if peer.engaged() {
                send(
                    out,
                    *connection,
                    &Message::Ephemeral {
                        sender: cx.me.clone(),
                        target: peer.info.peer_id.clone(),
                        document: self.id,
                        session: cx.session.to_owned(),
                        count,
                        data: data.to_vec(),
                    },
                );
            }
        }
    }

    /// Stores the changes made since `before`. The first write of a document stores it
    /// whole: a store must begin with a document chunk, so that changes stored later whose
    /// dependencies were lost in a crash wait in automerge's queue instead of making the
    /// document unloadable.
    fn store_new_changes(&mut self, doc: &Automerge, before: &[ChangeHash], out: &mut Vec<Effect>) {
        self.store_changes(doc, before, None, out);
    }

    /// Stores the changes made since `before`, with who delivered them if recorded.
    fn store_changes(
        &mut self,
        doc: &Automerge,
        before: &[ChangeHash],
        arrivals: Option<Arrivals>,
        out: &mut Vec<Effect>,
    ) {
        // Whole also while a write has failed: each later write then stands on its own.
        let bytes = if self.stored_once && self.retry_at.is_none() {
            doc.save_after(before)
        } else {
            doc.save()
        };
        self.exists = true;
        self.persist(bytes, doc.get_heads(), arrivals, out);
    }

    fn persist(
        &mut self,
        bytes: Vec<u8>,
        heads: Vec<ChangeHash>,
        arrivals: Option<Arrivals>,
        out: &mut Vec<Effect>,
    ) {
        self.writes_in_flight += 1;
        // Records whose write failed go with this one (recording twice changes nothing).
        let mut arrivals_now = std::mem::take(&mut self.arrivals_unwritten);
        arrivals_now.extend(arrivals);
        self.arrivals_in_flight.push_back(arrivals_now.clone());
        out.push(Effect::Storage(StorageTask::Append {
            document: self.id,
            bytes,
            heads,
            arrivals: arrivals_now,
        }));
    }

    /// Everything applied to the document is stored.
    fn durable(&self) -> bool {
        self.writes_in_flight == 0 && self.retry_at.is_none()
    }

    /// A write finished. Once every write is stored, peers hear what they lack.
    pub(crate) fn persisted(
        &mut self,
        cx: &Context<'_>,
        doc: &Automerge,
        ok: bool,
        out: &mut Vec<Effect>,
    ) {
        self.writes_in_flight = self.writes_in_flight.saturating_sub(1);
        // Outcomes come in the order writes were submitted.
        let arrivals = self.arrivals_in_flight.pop_front().unwrap_or_default();
        if !ok {
            self.arrivals_unwritten.extend(arrivals);
            tracing::warn!(document = %self.id, "storing changes failed; retrying");
            self.retry_at = Some(cx.now.plus(WRITE_RETRY_MS));
        } else {
            self.stored_once = true;
        }
        if ok && self.durable() {
            out.push(Effect::Notify(Notification::Stored {
                document: self.id,
                heads: doc.get_heads(),
            }));
        }
        self.flush(cx, doc, out);
    }

    /// Timeouts, retries and throttled saves that are due.
    pub(crate) fn tick(&mut self, cx: &Context<'_>, doc: &Automerge, out: &mut Vec<Effect>) {
        if let Some(at) = self.retry_at
            && at <= cx.now
            && self.writes_in_flight == 0
        {
            // The whole document covers whatever the failed write held.
            self.retry_at = None;
            self.persist(doc.save(), doc.get_heads(), None, out);
        }
        let mut timed_out = false;
        for peer in self.peers.values_mut() {
            if let Status::Asked { since } = peer.status
                && since.plus(cx.request_timeout_ms) <= cx.now
            {
                peer.status = Status::Unavailable;
                timed_out = true;
            }
        }
        self.flush(cx, doc, out);
        if timed_out && !self.has_data(doc) {
            self.check_unavailable(cx, out);
        }
    }

    /// When [`tick`](Self::tick) has something to do.
    pub(crate) fn next_deadline(&self, cx: &Context<'_>) -> Option<Millis> {
        let asked = self.peers.values().filter_map(|peer| match peer.status {
            Status::Asked { since } => Some(since.plus(cx.request_timeout_ms)),
            _ => None,
        });
        let saves = self.peers.values().filter_map(|peer| {
            peer.dirty_since
                .map(|since| since.plus(cx.save_interval_ms))
        });
        asked.chain(saves).chain(self.retry_at).min()
    }

    /// Sends every peer what it lacks, if everything is durable; saves sync states whose
    /// interval has passed.
    fn flush(&mut self, cx: &Context<'_>, doc: &Automerge, out: &mut Vec<Effect>) {
        if !self.durable() {
            return;
        }
        let has_data = self.has_data(doc);
        let empty = doc.get_heads().is_empty();
        let id = self.id;
        let mut peers = std::mem::take(&mut self.peers);
        for (connection, peer) in &mut peers {
            self.save_state(cx, peer, false, out);
            if !peer.engaged()
                // Nothing to offer one who has nothing: it hears `doc-unavailable` instead.
                || (!has_data && (peer.wants || peer.status == Status::Unavailable))
            {
                continue;
            }
            if let Some(mut message) = doc.generate_sync_message(&mut peer.sync) {
                if bloom_is_useless(&peer.sync) {
                    message.have.clear();
                }
                let request = empty
                    && peer.sync.shared_heads.is_empty()
                    && matches!(peer.status, Status::Quiet | Status::Asked { .. });
                if request {
                    peer.status = Status::Asked { since: cx.now };
                }
                let (sender, target, data) =
                    (cx.me.clone(), peer.info.peer_id.clone(), message.encode());
                send(
                    out,
                    *connection,
                    &if request {
                        Message::Request {
                            sender,
                            target,
                            document: id,
                            data,
                        }
                    } else {
                        Message::Sync {
                            sender,
                            target,
                            document: id,
                            data,
                        }
                    },
                );
            }
        }
        self.peers = peers;
    }

    /// Saves the sync state with a persistent peer if its shared heads moved and the save
    /// interval has passed (or `now`). Call only when everything is durable: a saved state
    /// must never claim changes that a crash could lose.
    fn save_state(&self, cx: &Context<'_>, peer: &mut DocPeer, now: bool, out: &mut Vec<Effect>) {
        let Some(storage) = peer.info.persistent_storage() else {
            return;
        };
        if peer.loading_state || peer.sync.shared_heads == peer.saved_shared_heads {
            peer.dirty_since = None;
            return;
        }
        let since = *peer.dirty_since.get_or_insert(cx.now);
        if now || since.plus(cx.save_interval_ms) <= cx.now {
            out.push(Effect::Storage(StorageTask::SaveSyncState {
                document: self.id,
                peer: storage.clone(),
                state: peer.sync.encode(),
            }));
            peer.saved_shared_heads = peer.sync.shared_heads.clone();
            peer.dirty_since = None;
        }
    }

    /// For a document we do not have: once no peer can still provide it, tell those who
    /// asked (peers and the app) that it is unavailable.
    fn check_unavailable(&mut self, cx: &Context<'_>, out: &mut Vec<Effect>) {
        if self.peers.values().any(DocPeer::may_provide) {
            return;
        }
        for (connection, peer) in &mut self.peers {
            if peer.wants && !peer.told_unavailable {
                peer.told_unavailable = true;
                send(
                    out,
                    *connection,
                    &Message::DocUnavailable {
                        sender: cx.me.clone(),
                        target: peer.info.peer_id.clone(),
                        document: self.id,
                    },
                );
            }
        }
        if self.app_wants && !self.app_told_unavailable {
            self.app_told_unavailable = true;
            out.push(Effect::Notify(Notification::DocumentUnavailable {
                document: self.id,
            }));
        }
    }
}

/// A new sync state with `peer`: read-only (automerge applies none of its changes and asks
/// for none) if it may not write `document`.
fn fresh_state(peer: &PeerInfo, document: DocumentId) -> sync::State {
    if peer.access.can_write(document) {
        sync::State::new()
    } else {
        sync::State::new_read_only()
    }
}

/// Whether the bloom filter of our changes that automerge puts in a sync message is of no
/// use to the peer, which then costs as much as a compressed document:
/// - the peer said it has nothing (it cannot send us anything), or
/// - we have never heard from it and share no history (the opening message of a first
///   contact). If it does have changes, its answer carries its own filter and heads, and we
///   ask for what we lack by hash in the next round: one more round trip instead of
///   a filter of every change we hold.
///
/// Without a filter automerge sends only what is asked for by hash, so nothing is lost.
fn bloom_is_useless(state: &sync::State) -> bool {
    match &state.their_heads {
        Some(heads) => heads.is_empty(),
        None => state.shared_heads.is_empty(),
    }
}
