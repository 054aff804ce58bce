//! The repo's sync driver: one task per repo that owns the connections and the protocol's
//! hub, and hands document work to each document's thread (where its synchroniser lives
//! beside the automerge document).

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot, watch};

use super::{
    awaited::Awaited,
    doc_event::DocEvent,
    document::{Document, now_millis},
    repo::RepoShared,
};
use crate::{
    DocumentId, PeerId,
    observe::{Direction, Observer},
    sync::{
        Access, ConnectionId, Effect, Millis, Notification, SyncConfig,
        doc_sync::{Gossip, Rejoin},
        hub::{DocMessage, Hub, Routed, send},
        types::{PeerFault, PeerInfo, SharedPeer},
    },
    wire::{Message, PeerMetadata},
};

/// How long a `find` waits for connections in their handshake (or being dialed) before
/// asking the peers already there.
const HANDSHAKE_WAIT_MS: u64 = 2_000;

/// Loading a document for a peer taking longer than this is logged (at debug level).
const SLOW_LOAD: Duration = Duration::from_millis(50);

/// How many messages may wait for a document being loaded.
const MAX_LOADING_BACKLOG: usize = 1024;

/// How many documents are offered to peers at once from those let go while nobody could be
/// offered them.
const MAX_OFFERS: usize = 64;

/// How often documents' timers (request timeouts, throttled saves, retries) are checked.
const TICK: Duration = Duration::from_millis(500);

/// The longest a `find` may wait before its peers are asked: the handshake wait, checked
/// on the next tick.
pub(crate) const FIND_DEFERRAL: Duration =
    Duration::from_millis(HANDSHAKE_WAIT_MS + TICK.as_millis() as u64);

/// A message channel to one peer: binary frames out and in. Dropping it (or the other side
/// ending `incoming`) ends the connection.
///
/// [`Transport::pair`] joins two repos in one process; an app with its own transport (a
/// Bluetooth link, a browser bridge) moves frames between the channels of
/// [`Transport::from_channels`] and its link. Frames are whole automerge-repo messages.
#[derive(Debug)]
pub struct Transport {
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    /// What is queued for the link and not yet written (set by links that report it).
    backlog: Option<Arc<Backlog>>,
}

/// Bytes queued on a connection and not yet written to its link, with the most it may
/// hold: a peer that stops reading is disconnected once that is exceeded, instead of
/// growing the queue without bound. A peer that is still reading (something was written
/// within `stall`) may go up to four times over, since a first sync sends every document's
/// first message at once.
#[derive(Debug)]
pub(crate) struct Backlog {
    queued: AtomicUsize,
    limit: usize,
    stall: Duration,
    created: Instant,
    /// When something was last written, in milliseconds since `created`.
    last_written_ms: AtomicU64,
    overflowed: AtomicBool,
    /// Wakes the link's writer, which may be stuck writing to a peer that does not read.
    pub(crate) overflow: tokio::sync::Notify,
}

impl Backlog {
    pub(crate) fn new(limit: usize, stall: Duration) -> Self {
        Self {
            queued: AtomicUsize::new(0),
            limit,
            stall,
            created: Instant::now(),
            last_written_ms: AtomicU64::new(0),
            overflowed: AtomicBool::new(false),
            overflow: tokio::sync::Notify::new(),
        }
    }

    /// `bytes` more are queued; `false` if that is over the limit (one message is always
    /// let through, whatever its size).
    fn add(&self, bytes: usize) -> bool {
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        let after = before.saturating_add(bytes);
        if before == 0 || after <= self.limit {
            return true;
        }
        let since_write = self
            .elapsed_ms()
            .saturating_sub(self.last_written_ms.load(Ordering::Acquire));
        after <= self.limit.saturating_mul(4) && u128::from(since_write) < self.stall.as_millis()
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `bytes` were written to the link.
    pub(crate) fn written(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        self.last_written_ms
            .store(self.elapsed_ms(), Ordering::Release);
    }

    /// Whether the connection was closed for exceeding the limit.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// How many bytes wait.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl Transport {
    /// Two ends of an in-memory connection.
    pub fn pair() -> (Self, Self) {
        let (a_out, b_in) = mpsc::unbounded_channel();
        let (b_out, a_in) = mpsc::unbounded_channel();
        (
            Self {
                outgoing: a_out,
                incoming: a_in,
                backlog: None,
            },
            Self {
                outgoing: b_out,
                incoming: b_in,
                backlog: None,
            },
        )
    }

    /// A transport over the app's channels: the repo sends frames on `outgoing` and reads
    /// frames from `incoming`.
    pub fn from_channels(
        outgoing: mpsc::UnboundedSender<Vec<u8>>,
        incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    ) -> Self {
        Self {
            outgoing,
            incoming,
            backlog: None,
        }
    }

    /// With a bound on what may wait for the link (the network layer reports writes).
    pub(crate) fn with_backlog(mut self, backlog: Arc<Backlog>) -> Self {
        self.backlog = Some(backlog);
        self
    }
}

/// The driver's side of a connection's link.
struct Outgoing {
    sender: mpsc::UnboundedSender<Vec<u8>>,
    backlog: Option<Arc<Backlog>>,
}

/// Which end of a connection a repo is: the one that dials sends `join`, the one that
/// accepts answers `peer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This repo opened the connection (a device dialling its relay).
    Dial,
    /// The other side opened it (a relay, or a device listening on its LAN).
    Accept,
}

/// What document work reports back to the driver besides effects.
#[derive(Default)]
pub(crate) struct SyncOutcome {
    /// Peers whose messages broke the protocol.
    pub(crate) faults: Vec<(ConnectionId, PeerFault)>,
    /// Heads to gossip, and the document's syncing peers to gossip them to.
    pub(crate) gossip: Gossip,
    pub(crate) engaged: Vec<ConnectionId>,
    /// When the synchroniser next has timed work (filled in by `Document::sync_work`).
    pub(crate) deadline: Option<Millis>,
    /// The document is not here and nobody waits for it any more: the peers that asked for
    /// it in vain, to be sent it if it arrives (filled in likewise).
    pub(crate) forgettable: Option<Vec<ConnectionId>>,
    /// No peer syncs it, nothing of it is pending, and the app holds no handle: the
    /// driver lets it go (filled in likewise).
    pub(crate) unused: bool,
    /// Nothing of it is pending and the app holds no handle, though peers may sync it:
    /// the driver lets it go once idle (filled in likewise).
    pub(crate) quiet: bool,
    /// Quiet, and every peer syncing it has all of it (filled in likewise).
    pub(crate) settled: bool,
    /// Which sync work of the document this is the outcome of (filled in likewise).
    pub(crate) sequence: u64,
}

pub(crate) enum Command {
    Connect {
        transport: Transport,
        role: Role,
        access: Access,
        reply: oneshot::Sender<ConnectionId>,
    },
    Received {
        connection: ConnectionId,
        bytes: Vec<u8>,
    },
    Closed {
        connection: ConnectionId,
    },
    /// What sync work on a document produced (`instance` tells a document let go and
    /// loaded again apart from the one the work ran on).
    FromDocument {
        instance: Arc<Document>,
        effects: Vec<Effect>,
        outcome: SyncOutcome,
    },
    /// The app loaded or created a document.
    Opened(Arc<Document>),
    /// A document a peer sent something about was loaded (`None`: it cannot be loaded).
    Loaded {
        document: DocumentId,
        loaded: Option<Arc<Document>>,
    },
    /// A dialer started (`true`) or ended (`false`) an attempt to connect: while one is
    /// under way, finds wait for it as for a handshake.
    Dialing(bool),
    /// The app wants a document it does not have: ask peers. `None` if nobody has it.
    Want {
        document: DocumentId,
        reply: oneshot::Sender<Option<Arc<Document>>>,
    },
    /// Load a stored document for the peers it is offered to, and let it go once they
    /// have all of it; `done` is dropped then (or once the document is in real use).
    Offer {
        document: DocumentId,
        done: oneshot::Sender<()>,
    },
    /// The app broadcasts an ephemeral payload.
    Broadcast {
        document: Arc<Document>,
        data: Vec<u8>,
    },
    /// The document was deleted here: stop syncing it (that instance, if given).
    Forget {
        document: DocumentId,
        instance: Option<Arc<Document>>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// The repo's side of the driver.
pub(crate) struct SyncHandle {
    commands: mpsc::UnboundedSender<Command>,
    pub(crate) config: SyncConfig,
    pub(crate) runtime: tokio::runtime::Handle,
}

/// A dialer's connection attempt, from before its TCP connect until its connection is
/// registered with the driver or the attempt failed: finds wait for it (see
/// [`Command::Dialing`]).
pub(crate) struct DialAttempt(mpsc::UnboundedSender<Command>);

impl Drop for DialAttempt {
    fn drop(&mut self) {
        // After shutdown nothing listens, and nothing needs to.
        let _ = self.0.send(Command::Dialing(false));
    }
}

impl fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncHandle")
            .field("peer_id", &self.config.peer_id)
            .finish_non_exhaustive()
    }
}

impl SyncHandle {
    /// Starts the driver of `repo` on the current tokio runtime.
    pub(crate) fn start(repo: &Arc<RepoShared>, mut config: SyncConfig) -> Self {
        // A fresh session for each run: peers drop ephemeral counts they have seen from a
        // session, and a reopened repo starts counting again.
        config.session_id = PeerId::random().to_string();
        let (commands, inbox) = mpsc::unbounded_channel();
        let (stop, stopping) = watch::channel(false);
        let metadata = PeerMetadata {
            storage_id: config.storage_id.clone(),
            is_ephemeral: config.storage_id.is_none(),
        };
        let driver = Driver {
            repo: repo.clone(),
            hub: Hub::new(config.peer_id.clone(), metadata, config.limits),
            docs: HashMap::new(),
            connections: HashMap::new(),
            waiting: HashMap::new(),
            next_connection: 0,
            commands: commands.clone(),
            deferred: Vec::new(),
            dialing: 0,
            deadlines: HashMap::new(),
            engaged: HashMap::new(),
            config: config.clone(),
            ephemeral_count: 0,
            stop,
            stopping,
            dormant: HashMap::new(),
            awaited: Awaited::default(),
            last_active: HashMap::new(),
            quiet: HashMap::new(),
            offered: HashMap::new(),
            unsynced: HashSet::new(),
            drain_due: false,
        };
        let runtime = tokio::runtime::Handle::current();
        runtime.spawn(driver.run(inbox));
        Self {
            commands,
            config,
            runtime,
        }
    }

    pub(crate) fn send(&self, command: Command) {
        // After shutdown nothing listens, and nothing needs to.
        let _ = self.commands.send(command);
    }

    /// Tells the driver that a dialer is connecting until the returned guard is dropped.
    pub(crate) fn dial_attempt(&self) -> DialAttempt {
        self.send(Command::Dialing(true));
        DialAttempt(self.commands.clone())
    }

    /// Stops the driver: connections close, documents are let go.
    pub(crate) async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        self.send(Command::Shutdown { done });
        let _ = stopped.await;
    }
}

/// Where a `find` waiting for peers hears the outcome: the document, or `None` if nobody
/// has it.
type FindReply = oneshot::Sender<Option<Arc<Document>>>;

enum Entry {
    /// Being loaded because a peer sent something about it; its messages wait.
    Loading(Vec<(SharedPeer, DocMessage)>),
    Ready(Arc<Document>),
}

struct Driver {
    repo: Arc<RepoShared>,
    hub: Hub,
    /// Documents being synced. Held while the driver runs (unloading synced documents is
    /// for a later version).
    docs: HashMap<DocumentId, Entry>,
    connections: HashMap<ConnectionId, Outgoing>,
    /// App `find`s waiting for peers to answer.
    waiting: HashMap<DocumentId, Vec<FindReply>>,
    next_connection: u64,
    commands: mpsc::UnboundedSender<Command>,
    /// `find`s that wait (since when) for connections still in their handshake.
    deferred: Vec<(DocumentId, FindReply, Millis)>,
    /// Connection attempts of dialers under way (TCP and WebSocket handshakes).
    dialing: usize,
    /// The connections syncing each document, as its last sync work reported them:
    /// ephemeral messages go to them, in the order they arrive here.
    engaged: HashMap<DocumentId, Vec<ConnectionId>>,
    /// Share policy and this session's id.
    config: SyncConfig,
    /// When each document's synchroniser next has timed work.
    deadlines: HashMap<DocumentId, Millis>,
    /// Ephemeral messages broadcast in this session (numbered across documents).
    ephemeral_count: u64,
    /// Tells connection readers to stop.
    stop: watch::Sender<bool>,
    stopping: watch::Receiver<bool>,
    /// Documents let go while idle, with the connections that were syncing them: offered
    /// to those again when the document is loaded again, and its ephemeral messages still
    /// reach them meanwhile.
    dormant: HashMap<DocumentId, Vec<ConnectionId>>,
    /// Documents peers asked for while they were not here: offered to them when they arrive.
    awaited: Awaited,
    /// When each loaded document last had a message or sent one.
    last_active: HashMap<DocumentId, Millis>,
    /// Loaded documents whose latest sync work (this sequence number) found them quiet.
    quiet: HashMap<DocumentId, u64>,
    /// Documents loaded only to be offered to peers ([`Command::Offer`]), with who waits
    /// for them to be let go.
    offered: HashMap<DocumentId, Vec<oneshot::Sender<()>>>,
    /// Documents let go while no connected peer was offered them: offered to the next peer
    /// the share policy offers them to, so that what was written offline (or while a peer
    /// was still introducing itself) reaches it without the app opening it again.
    unsynced: HashSet<DocumentId>,
    /// A peer arrived or an offer ended since `unsynced` was last looked at.
    drain_due: bool,
}

/// The time for the engine.
fn now() -> Millis {
    Millis(u64::try_from(now_millis()).unwrap_or(0))
}

impl Driver {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        for document in self.repo.open_documents() {
            self.opened(document);
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(Command::Shutdown { done }) => {
                        let _ = self.stop.send(true);
                        self.connections.clear();
                        self.repo.peers.send_replace(Vec::new());
                        self.dormant.clear();
                        self.awaited.clear();
                        self.offered.clear();
                        self.docs.clear();
                        self.waiting.clear();
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.command(command),
                    None => return,
                },
                _ = tick.tick() => self.tick(),
            }
        }
    }

    fn command(&mut self, command: Command) {
        let mut out = Vec::new();
        match command {
            Command::Connect {
                transport,
                role,
                access,
                reply,
            } => {
                self.next_connection += 1;
                let connection = ConnectionId(self.next_connection);
                self.connections.insert(
                    connection,
                    Outgoing {
                        sender: transport.outgoing,
                        backlog: transport.backlog,
                    },
                );
                self.hub
                    .connected(connection, role == Role::Dial, access, now(), &mut out);
                let commands = self.commands.clone();
                let mut incoming = transport.incoming;
                let mut stopping = self.stopping.clone();
                // Not tracked by the repo's background work: a peer that never closes its
                // side must not hold up `Repo::close`, which stops this reader instead.
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            frame = incoming.recv() => match frame {
                                Some(bytes) => {
                                    if commands.send(Command::Received { connection, bytes }).is_err() {
                                        return;
                                    }
                                }
                                None => break,
                            },
                            _ = stopping.changed() => return,
                        }
                    }
                    let _ = commands.send(Command::Closed { connection });
                });
                let _ = reply.send(connection);
            }
            Command::Received { connection, bytes } => {
                let (routed, kind) = self.hub.receive(connection, &bytes, &mut out);
                self.repo
                    .config
                    .observer
                    .message(Direction::In, kind, bytes.len());
                self.route(routed);
            }
            Command::Closed { connection } => {
                self.connections.remove(&connection);
                let routed = self.hub.disconnected(connection, &mut out);
                self.route(routed);
            }
            Command::FromDocument {
                instance,
                effects,
                outcome,
            } => {
                let document = instance.id;
                let current = matches!(
                    self.docs.get(&document),
                    Some(Entry::Ready(doc)) if Arc::ptr_eq(doc, &instance)
                );
                if current {
                    match outcome.deadline {
                        Some(at) => self.deadlines.insert(document, at),
                        None => self.deadlines.remove(&document),
                    };
                    self.engaged.insert(document, outcome.engaged.clone());
                    if !effects.is_empty() {
                        self.last_active.insert(document, now());
                    }
                    if outcome.quiet {
                        self.quiet.insert(document, outcome.sequence);
                    } else {
                        self.quiet.remove(&document);
                    }
                }
                out.extend(effects);
                for (storage, heads, timestamp) in outcome.gossip {
                    self.hub.gossip(
                        document,
                        &storage,
                        &heads,
                        timestamp,
                        &outcome.engaged,
                        &mut out,
                    );
                }
                for (connection, fault) in outcome.faults {
                    let routed = self.hub.fail(connection, fault, &mut out);
                    self.route(routed);
                }
                // Answers first: a find answered just now no longer holds the document.
                self.carry_out(std::mem::take(&mut out));
                // A document nobody has and nobody waits for any more is let go, so that
                // requests for random ids cannot fill a relay's memory (only once no work is
                // queued: a peer being added or a message being handled may still ask).
                if current
                    && let Some(asked_in_vain) = &outcome.forgettable
                    && instance.is_latest(outcome.sequence)
                    && !self.waiting.contains_key(&document)
                {
                    self.forget(document);
                    self.awaited.asked_in_vain(document, asked_in_vain);
                }
                // Nobody uses it (or it was loaded only to be offered, and its peers have
                // it all now): let it go (it unloads once its last sync work is done), so a
                // relay's memory follows what connected peers use, not what it stores.
                else if current
                    && (outcome.unused || (outcome.settled && self.offered.contains_key(&document)))
                    && instance.handles() == 0
                    && instance.is_latest(outcome.sequence)
                    && !self.waiting.contains_key(&document)
                {
                    tracing::trace!(%document, "unused: unloaded");
                    self.let_go(document);
                }
            }
            Command::Opened(document) => {
                self.end_offer(document.id); // in the app's hands now
                self.opened(document);
            }
            Command::Offer { document, done } => {
                if self.docs.contains_key(&document) {
                    drop(done); // loaded already: in use
                } else {
                    self.offered.entry(document).or_default().push(done);
                    self.docs.insert(document, Entry::Loading(Vec::new()));
                    self.load(document);
                }
            }
            Command::Loaded { document, loaded } => self.loaded(document, loaded, &mut out),
            Command::Want { document, reply } => {
                if self.connecting() {
                    // A peer still introducing itself may have it.
                    self.deferred.push((document, reply, now()));
                } else {
                    self.want(document, reply);
                }
            }
            Command::Dialing(started) => {
                self.dialing = if started {
                    self.dialing + 1
                } else {
                    self.dialing.saturating_sub(1)
                };
            }
            Command::Broadcast { document, data } => {
                // Numbered here, where messages are sent in order: JS peers drop a count
                // lower than one they have seen from this session.
                self.ephemeral_count += 1;
                for connection in self.engaged.get(&document.id).into_iter().flatten() {
                    if let Some(peer) = self.hub.peer(*connection) {
                        let message = Message::Ephemeral {
                            sender: self.hub.me().clone(),
                            target: peer.peer_id.clone(),
                            document: document.id,
                            session: self.config.session_id.clone(),
                            count: self.ephemeral_count,
                            data: data.clone(),
                        };
                        send(&mut out, *connection, &message);
                    }
                }
            }
            Command::Forget { document, instance } => {
                let same = match (&instance, self.docs.get(&document)) {
                    (None, _) => true,
                    (Some(instance), Some(Entry::Ready(doc))) => Arc::ptr_eq(doc, instance),
                    (Some(_), _) => false,
                };
                if same {
                    self.forget(document);
                    self.dormant.remove(&document);
                    self.awaited.arrived(document); // deleted: nobody is sent it
                    self.unsynced.remove(&document);
                }
            }
            Command::Shutdown { .. } => {}
        }
        self.carry_out(out);
        self.run_deferred(false);
        self.drain_unsynced();
    }

    /// Asks peers for the finds that waited for handshakes: all once none is in progress,
    /// or (`timed`) those that waited long enough anyway, so that a slow or busy listener
    /// does not hold finds up.
    fn run_deferred(&mut self, timed: bool) {
        if self.deferred.is_empty() {
            return;
        }
        let handshaking = self.connecting();
        let cutoff = Millis(now().0.saturating_sub(HANDSHAKE_WAIT_MS));
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(_, _, since)| !handshaking || (timed && *since <= cutoff));
        self.deferred = wait;
        for (document, reply, _) in ready {
            self.want(document, reply);
        }
    }

    /// Whether a peer is being connected or is introducing itself: it may have what a
    /// `find` asks for.
    fn connecting(&self) -> bool {
        self.dialing > 0 || self.hub.handshaking()
    }

    fn forget(&mut self, document: DocumentId) {
        self.end_offer(document); // tells whoever waits for it
        self.docs.remove(&document);
        self.deadlines.remove(&document);
        self.engaged.remove(&document);
        self.last_active.remove(&document);
        self.quiet.remove(&document);
    }

    /// Lets go of documents quiet and without a message for `idle_unload`, keeping the
    /// connections that synced them.
    fn unload_idle(&mut self, now: Millis) {
        let Some(after) = self.repo.config.idle_unload else {
            return;
        };
        let cutoff = Millis(now.0.saturating_sub(after.as_millis() as u64));
        let idle: Vec<DocumentId> = self
            .quiet
            .iter()
            .filter(|(document, sequence)| {
                self.last_active
                    .get(*document)
                    .is_none_or(|at| *at <= cutoff)
                    && !self.waiting.contains_key(*document)
                    && matches!(
                        self.docs.get(*document),
                        Some(Entry::Ready(doc)) if doc.handles() == 0 && doc.is_latest(**sequence)
                    )
            })
            .map(|(document, _)| *document)
            .collect();
        for document in idle {
            self.let_go(document);
            tracing::trace!(%document, "idle: unloaded");
        }
    }

    /// Ends the offer of `document`, if it was offered: whoever waits for it is told, and
    /// room is made for more.
    fn end_offer(&mut self, document: DocumentId) {
        if self.offered.remove(&document).is_some() {
            self.drain_due = true;
        }
    }

    /// Whether the share policy offers `document` to `peer` unasked (and it may read it).
    fn offers(&self, peer: &PeerInfo, document: DocumentId) -> bool {
        let policy = &self.config.share_policy;
        peer.access.can_read(document)
            && policy.access(peer, document)
            && policy.announce(peer, document)
    }

    /// Starts offering documents from `unsynced` to the connected peers they are offered to,
    /// keeping at most [`MAX_OFFERS`] offers under way (a device back online with many
    /// documents written offline does not load them all at once).
    fn drain_unsynced(&mut self) {
        // Only worth a look once a peer arrived or an offer ended (not on every command: a
        // device offline with many closed documents would scan them all each time).
        if !std::mem::take(&mut self.drain_due)
            || self.unsynced.is_empty()
            || self.offered.len() >= MAX_OFFERS
        {
            return;
        }
        let room = MAX_OFFERS - self.offered.len();
        let due: Vec<DocumentId> = self
            .unsynced
            .iter()
            .copied()
            .filter(|document| self.hub.peers().any(|peer| self.offers(peer, *document)))
            .take(room)
            .collect();
        for document in due {
            self.unsynced.remove(&document);
            if !self.docs.contains_key(&document) {
                self.offered.entry(document).or_default();
                self.docs.insert(document, Entry::Loading(Vec::new()));
                self.load(document);
            }
        }
    }

    /// Unloads a document that peers may still sync: those the share policy would not
    /// offer it to unasked (clients of a relay) are kept in `dormant`, to be offered it again
    /// when it is loaded again; the others are offered it then anyway.
    fn let_go(&mut self, document: DocumentId) {
        let mut interested: Vec<ConnectionId> = self
            .engaged
            .get(&document)
            .into_iter()
            .flatten()
            .copied()
            .filter(|connection| {
                self.hub
                    .peer(*connection)
                    .is_some_and(|peer| !self.config.share_policy.announce(peer, document))
            })
            .collect();
        let offered_to_someone = self.hub.peers().any(|peer| self.offers(peer, document));
        if !offered_to_someone && self.config.share_policy.offers_unasked() {
            self.unsynced.insert(document);
        }
        self.forget(document);
        if let Some(before) = self.dormant.remove(&document) {
            for connection in before {
                if !interested.contains(&connection) {
                    interested.push(connection);
                }
            }
        }
        if !interested.is_empty() {
            self.dormant.insert(document, interested);
        }
    }

    /// Sends, closes and notifies.
    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send {
                    connection,
                    kind,
                    bytes,
                } => {
                    let Some(outgoing) = self.connections.get(&connection) else {
                        continue;
                    };
                    self.repo
                        .config
                        .observer
                        .message(Direction::Out, kind, bytes.len());
                    let room = outgoing.backlog.as_ref().is_none_or(|b| b.add(bytes.len()));
                    if room {
                        let _ = outgoing.sender.send(bytes);
                    } else if let Some(backlog) = &outgoing.backlog {
                        // The peer is not reading: let it go rather than queue without end.
                        tracing::info!(%connection, queued = backlog.queued(), "peer not reading: closing the connection");
                        backlog.overflowed.store(true, Ordering::Release);
                        backlog.overflow.notify_one();
                        backlog.written(bytes.len());
                        self.connections.remove(&connection);
                    }
                }
                Effect::Close { connection, reason } => {
                    tracing::info!(%connection, %reason, "closing connection");
                    // Dropping the sender ends the peer's stream; our reader reports Closed.
                    self.connections.remove(&connection);
                }
                Effect::Notify(Notification::DocumentReady { document }) => {
                    if let Some(Entry::Ready(doc)) = self.docs.get(&document) {
                        let doc = doc.clone();
                        self.answer(document, Some(&doc));
                    }
                }
                Effect::Notify(Notification::DocumentUnavailable { document }) => {
                    self.answer(document, None);
                }
                Effect::Notify(note) => tracing::debug!(?note, "sync"),
                Effect::Storage(task) => {
                    tracing::error!(?task, "storage task reached the driver");
                }
            }
        }
    }

    fn answer(&mut self, document: DocumentId, found: Option<&Arc<Document>>) {
        for reply in self.waiting.remove(&document).unwrap_or_default() {
            let _ = reply.send(found.cloned());
        }
    }

    fn route(&mut self, routed: Routed) {
        match routed {
            Routed::Nothing => {}
            Routed::PeerReady(peer) => {
                self.repo
                    .peers
                    .send_modify(|peers| peers.push(PeerInfo::clone(&peer)));
                for entry in self.docs.values() {
                    if let Entry::Ready(doc) = entry {
                        add_peer(doc, &peer);
                    }
                }
                // Documents let go while nobody could be offered them (offline, or a peer
                // still introducing itself) are offered now, a few at a time.
                self.drain_due = true;
                self.drain_unsynced();
            }
            Routed::PeerGone(peer) => {
                let connection = peer.connection;
                self.dormant.retain(|_, connections| {
                    connections.retain(|c| *c != connection);
                    !connections.is_empty()
                });
                self.awaited.connection_ended(connection);
                self.repo
                    .peers
                    .send_modify(|peers| peers.retain(|p| p.connection != connection));
                for entry in self.docs.values_mut() {
                    match entry {
                        Entry::Ready(doc) => doc.sync_later(move |sync, doc, cx, out| {
                            sync.remove_peer(cx, doc, connection, out);
                            SyncOutcome::default()
                        }),
                        Entry::Loading(waiting) => {
                            waiting.retain(|(peer, _)| peer.connection != connection);
                        }
                    }
                }
            }
            Routed::Document {
                peer,
                document,
                message:
                    DocMessage::Ephemeral {
                        origin,
                        session,
                        count,
                        data,
                    },
            } => {
                // Forwarded here, not on the document's thread, so that messages leave in
                // the order they came (JS peers drop a count lower than one seen). A
                // document let go while idle still has them forwarded to its peers.
                let (doc, engaged) = match self.docs.get(&document) {
                    Some(Entry::Ready(doc)) => (Some(doc.clone()), self.engaged.get(&document)),
                    _ => match self.dormant.get(&document) {
                        Some(connections) => (None, Some(connections)),
                        None => return, // about a document not synced here
                    },
                };
                if !self.config.share_policy.access(&peer, document) {
                    return;
                }
                let mut out = Vec::new();
                for connection in engaged.into_iter().flatten() {
                    match self.hub.peer(*connection) {
                        Some(to) if *connection != peer.connection && to.peer_id != origin => {
                            let message = Message::Ephemeral {
                                sender: origin.clone(),
                                target: to.peer_id.clone(),
                                document,
                                session: session.clone(),
                                count,
                                data: data.clone(),
                            };
                            send(&mut out, *connection, &message);
                        }
                        _ => {}
                    }
                }
                if let Some(doc) = doc {
                    doc.emit(DocEvent::Ephemeral { from: origin, data });
                    self.last_active.insert(document, now());
                    if !self.offers(&peer, document) {
                        self.end_offer(document); // a client is here
                    }
                }
                self.carry_out(out);
            }
            Routed::Document {
                peer,
                document,
                message,
            } => {
                // A client using an offered document makes it an ordinary one (what the
                // peers it is offered to say is part of the offer).
                if !self.offers(&peer, document) {
                    self.end_offer(document);
                }
                self.route_to_document(peer, document, message);
            }
        }
    }

    /// Hands a peer's message about `document` to it, loading it for sync traffic.
    fn route_to_document(&mut self, peer: SharedPeer, document: DocumentId, message: DocMessage) {
        match self.docs.get_mut(&document) {
            Some(Entry::Ready(doc)) => {
                deliver(doc, peer.connection, message, &self.repo.config.observer);
                self.last_active.insert(document, now());
            }
            Some(Entry::Loading(waiting)) => {
                if waiting.len() < MAX_LOADING_BACKLOG {
                    waiting.push((peer, message));
                } else {
                    tracing::warn!(%document, "too many messages for a loading document; dropped");
                }
            }
            // Only sync traffic loads a document.
            None if matches!(message, DocMessage::Sync { .. }) => {
                // Loaded for a peer it is offered to anyway (a relay catching up, or a
                // device's relay with a change): let go once in sync, as an offered
                // document; a client's message would make it an ordinary one.
                if self.offers(&peer, document) {
                    self.offered.entry(document).or_default();
                }
                self.docs
                    .insert(document, Entry::Loading(vec![(peer, message)]));
                self.load(document);
            }
            None => {}
        }
    }

    /// Loads a document for peers, in the background: open already, stored, or absent.
    fn load(&self, document: DocumentId) {
        let repo = self.repo.clone();
        let commands = self.commands.clone();
        self.repo.spawn_background(async move {
            let started = Instant::now();
            let loaded = match repo.load_for_sync(document).await {
                Ok(doc) => {
                    let took = started.elapsed();
                    if took >= SLOW_LOAD {
                        tracing::debug!(%document, ?took, "slow load for a peer");
                    }
                    Some(doc)
                }
                Err(error) => {
                    tracing::warn!(%document, %error, "document cannot be loaded for a peer");
                    None
                }
            };
            let _ = commands.send(Command::Loaded { document, loaded });
        });
    }

    fn loaded(
        &mut self,
        document: DocumentId,
        loaded: Option<Arc<Document>>,
        out: &mut Vec<Effect>,
    ) {
        let waiting = match self.docs.remove(&document) {
            Some(Entry::Loading(waiting)) => waiting,
            // Opened by the app meanwhile (and made ready then): keep it.
            Some(ready) => {
                self.docs.insert(document, ready);
                return;
            }
            None => {
                self.end_offer(document);
                return;
            }
        };
        let Some(doc) = loaded else {
            self.end_offer(document);
            self.dormant.remove(&document);
            // Damaged in storage: those who asked hear it is unavailable.
            for (peer, _) in waiting {
                self.hub.tell_unavailable(&peer, document, out);
            }
            self.answer(document, None);
            return;
        };
        self.make_ready(doc.clone());
        for (peer, message) in waiting {
            deliver(&doc, peer.connection, message, &self.repo.config.observer);
        }
        if self.waiting.contains_key(&document) {
            open(&doc);
        }
    }

    /// Starts syncing a document: every connected peer is added to it (and peers that left
    /// while the driver did not hold it are dropped from it).
    fn make_ready(&mut self, doc: Arc<Document>) {
        let connected: Vec<ConnectionId> = self.hub.peers().map(|peer| peer.connection).collect();
        doc.sync_later(move |sync, doc, cx, out| {
            sync.retain_peers(cx, doc, &connected, out);
            SyncOutcome::default()
        });
        // Peers that synced it before it was let go while idle are offered it again, and
        // those that asked for it while it was not here still want it: they are sent it
        // once it is here (now, or when its first changes arrive).
        let resumed = self.dormant.remove(&doc.id).unwrap_or_default();
        let awaiting = self.awaited.arrived(doc.id);
        for peer in self.hub.peers() {
            let peer = peer.clone();
            let rejoin = if awaiting.contains(&peer.connection) {
                Rejoin::Awaiting
            } else if resumed.contains(&peer.connection) {
                Rejoin::Resumed
            } else {
                Rejoin::New
            };
            doc.sync_later(move |sync, doc, cx, out| {
                sync.add_peer_as(cx, doc, peer, rejoin, out);
                SyncOutcome::default()
            });
        }
        self.last_active.insert(doc.id, now());
        self.docs.insert(doc.id, Entry::Ready(doc));
    }

    fn opened(&mut self, doc: Arc<Document>) {
        match self.docs.remove(&doc.id) {
            Some(Entry::Ready(existing)) => {
                self.docs.insert(doc.id, Entry::Ready(existing));
            }
            Some(Entry::Loading(waiting)) => {
                self.make_ready(doc.clone());
                for (peer, message) in waiting {
                    deliver(&doc, peer.connection, message, &self.repo.config.observer);
                }
            }
            None => self.make_ready(doc),
        }
    }

    fn want(&mut self, document: DocumentId, reply: oneshot::Sender<Option<Arc<Document>>>) {
        self.waiting.entry(document).or_default().push(reply);
        match self.docs.get(&document) {
            Some(Entry::Ready(doc)) => open(doc),
            Some(Entry::Loading(_)) => {} // opened once loaded
            None => {
                let doc = self.repo.register_absent(document);
                self.make_ready(doc.clone());
                open(&doc);
            }
        }
    }

    fn tick(&mut self) {
        let now = now();
        let mut out = Vec::new();
        self.hub
            .expire_handshakes(now, self.config.handshake_timeout_ms, &mut out);
        self.hub
            .expire_gossip(Millis(now.0.saturating_sub(86_400_000)));
        self.carry_out(out);
        self.run_deferred(true);
        self.unload_idle(now);
        // Only documents with timed work due are woken.
        let due: Vec<DocumentId> = self
            .deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(document, _)| *document)
            .collect();
        for document in due {
            self.deadlines.remove(&document);
            if let Some(Entry::Ready(doc)) = self.docs.get(&document) {
                doc.sync_later(|sync, doc, cx, out| {
                    sync.tick(cx, doc, out);
                    SyncOutcome::default()
                });
            }
        }
    }
}

fn add_peer(doc: &Arc<Document>, peer: &SharedPeer) {
    let peer = peer.clone();
    doc.sync_later(move |sync, doc, cx, out| {
        sync.add_peer(cx, doc, peer, out);
        SyncOutcome::default()
    });
}

/// Tells `doc`'s synchroniser the app opened it: a `find` waiting for it hears it is ready.
pub(crate) fn open(doc: &Arc<Document>) {
    doc.sync_later(|sync, doc, cx, out| {
        sync.open(cx, doc, out);
        SyncOutcome::default()
    });
}

/// Hands a peer's message to its document's synchroniser; the observer hears how long a
/// sync message took from here to applied.
fn deliver(
    doc: &Arc<Document>,
    connection: ConnectionId,
    message: DocMessage,
    observer: &Arc<dyn Observer>,
) {
    let timed =
        matches!(message, DocMessage::Sync { .. }).then(|| (observer.clone(), Instant::now()));
    doc.sync_later(move |sync, doc, cx, out| {
        let received = sync.receive(cx, doc, connection, message, out);
        if let Some((observer, arrived)) = timed {
            observer.sync_applied(arrived.elapsed());
        }
        match received {
            Ok(gossip) => SyncOutcome {
                gossip,
                ..SyncOutcome::default()
            },
            Err(fault) => SyncOutcome {
                faults: vec![(connection, fault)],
                ..SyncOutcome::default()
            },
        }
    });
}
