//! Deterministic simulation of the sync engine: devices and a relay joined by a simulated
//! network that drops, duplicates, delays and reorders messages, breaks and heals links,
//! and restarts replicas (which reload from their store, losing writes not yet committed).
//! After the chaos the network heals; every replica must end with the same heads and the
//! same content, and no change whose write was acknowledged may be missing.
//!
//! `WEFT_SIM_SEEDS=n` runs seeds 0..n (default 1000); `WEFT_SEED=s` replays one seed.
//! Everything is driven by one seeded generator, so a seed replays exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
};

use common::{Rng, pump::Store};
use weft::{
    DocumentId, PeerId, StorageId,
    automerge::{
        Automerge, ObjType, ROOT, ReadDoc, ScalarValue, Value, hydrate, transaction::Transactable,
    },
    sync::{
        ConnectionId, Effect, Engine, Input, LocalChange, Millis, Notification, ServeOnRequest,
        StorageTask, SyncConfig,
    },
};

struct Node {
    name: String,
    relay: bool,
    storage_id: StorageId,
    engine: Engine,
    store: Store,
    /// Bumped at each restart: storage work and messages of an earlier life are void.
    life: u64,
    restarts: u64,
    /// Documents the app created or opened, reopened after a restart.
    known: BTreeSet<DocumentId>,
    /// When the last storage task will complete (tasks complete in order).
    storage_clock: u64,
}

struct Link {
    ends: [(usize, ConnectionId); 2],
    up: bool,
    /// Bumped when the link goes down: messages in flight on it are lost.
    generation: u64,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        link: usize,
        generation: u64,
        to_end: usize,
        bytes: Vec<u8>,
    },
    Disconnect {
        node: usize,
        connection: ConnectionId,
    },
    Storage {
        node: usize,
        life: u64,
        /// The task's key in `Sim::tasks`.
        task: u64,
    },
    Tick {
        node: usize,
    },
}

/// A put the app made whose write may be acknowledged: (document, key, value).
struct PendingPut {
    node: usize,
    life: u64,
    document: DocumentId,
    key: String,
    value: i64,
}

struct Sim {
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    nodes: Vec<Node>,
    links: Vec<Link>,
    next_connection: u64,
    faults: bool,
    documents: Vec<DocumentId>,
    puts: Vec<PendingPut>,
    acked: BTreeSet<u64>,
    /// Storage tasks in flight, by key.
    tasks: BTreeMap<u64, StorageTask>,
    next_task: u64,
    /// Events in the queue other than ticks.
    busy: usize,
    steps: u64,
}

fn engine_for(name: &str, storage_id: &StorageId, relay: bool, rng: &mut Rng) -> Engine {
    let mut config = SyncConfig::new(PeerId::new(name), Some(storage_id.clone()))
        .deterministic(format!("{name}-{}", rng.next()), rng.next());
    if relay {
        config = config.with_share_policy(Arc::new(ServeOnRequest));
    }
    config.request_timeout_ms = 2_000;
    config.sync_state_save_interval_ms = 200;
    Engine::new(config)
}

impl Sim {
    fn new(seed: u64, devices: usize) -> Self {
        let mut rng = Rng(seed);
        let mut nodes = Vec::new();
        for i in 0..=devices {
            let relay = i == devices;
            let name = if relay {
                "relay".to_owned()
            } else {
                format!("device{i}")
            };
            let storage_id = StorageId::new(format!("storage-{name}"));
            let engine = engine_for(&name, &storage_id, relay, &mut rng);
            nodes.push(Node {
                name,
                relay,
                storage_id,
                engine,
                store: Store::default(),
                life: 0,
                restarts: 0,
                known: BTreeSet::new(),
                storage_clock: 0,
            });
        }
        let mut sim = Self {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            links: Vec::new(),
            next_connection: 0,
            faults: true,
            documents: Vec::new(),
            puts: Vec::new(),
            acked: BTreeSet::new(),
            tasks: BTreeMap::new(),
            next_task: 0,
            busy: 0,
            steps: 0,
        };
        let relay = devices;
        for device in 0..devices {
            sim.add_link(device, relay);
        }
        // Two devices also sync directly, as on a LAN.
        if devices >= 2 {
            sim.add_link(0, 1);
        }
        for node in 0..sim.nodes.len() {
            sim.schedule(250, Event::Tick { node });
        }
        sim
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        if !matches!(event, Event::Tick { .. }) {
            self.busy += 1;
        }
        self.seq += 1;
        self.queue
            .push(Reverse((self.now + delay, self.seq, event)));
    }

    fn add_link(&mut self, dialer: usize, listener: usize) {
        let ends = [(dialer, self.connection()), (listener, self.connection())];
        self.links.push(Link {
            ends,
            up: false,
            generation: 0,
        });
        self.link_up(self.links.len() - 1);
    }

    fn connection(&mut self) -> ConnectionId {
        self.next_connection += 1;
        ConnectionId(self.next_connection)
    }

    fn link_up(&mut self, link: usize) {
        if self.links[link].up {
            return;
        }
        // Fresh connection ids, as a new socket.
        let (a, b) = (self.connection(), self.connection());
        let l = &mut self.links[link];
        l.ends[0].1 = a;
        l.ends[1].1 = b;
        l.up = true;
        let [(dialer, dc), (listener, lc)] = l.ends;
        self.input(
            listener,
            Input::Connected {
                connection: lc,
                dialed: false,
                access: weft::sync::Access::full(),
            },
        );
        self.input(
            dialer,
            Input::Connected {
                connection: dc,
                dialed: true,
                access: weft::sync::Access::full(),
            },
        );
    }

    /// The link goes down: both ends hear of it, messages in flight are lost.
    fn link_down(&mut self, link: usize) {
        let l = &mut self.links[link];
        if !l.up {
            return;
        }
        l.up = false;
        l.generation += 1;
        let ends = l.ends;
        for (node, connection) in ends {
            self.input(node, Input::Disconnected { connection });
        }
    }

    fn find_link(&self, node: usize, connection: ConnectionId) -> Option<(usize, usize)> {
        self.links.iter().enumerate().find_map(|(i, l)| {
            l.ends
                .iter()
                .position(|end| *end == (node, connection))
                .map(|end| (i, end))
        })
    }

    /// Hands `input` to a node's engine and carries out the effects.
    fn input(&mut self, node: usize, input: Input) {
        let trace = std::env::var("WEFT_SIM_TRACE").is_ok();
        if trace {
            let text = match &input {
                Input::Received { connection, bytes } => {
                    format!("Received {connection} {:?}", weft::wire::decode(bytes))
                }
                other => format!("{other:?}"),
            };
            eprintln!(
                "{:>7} {:<8} <- {}",
                self.now,
                self.nodes[node].name,
                text.chars().take(300).collect::<String>()
            );
        }
        let effects = self.nodes[node].engine.handle(Millis(self.now), input);
        if trace {
            for effect in &effects {
                let text = match effect {
                    Effect::Send {
                        connection, bytes, ..
                    } => {
                        format!("Send {connection} {:?}", weft::wire::decode(bytes))
                    }
                    other => format!("{other:?}"),
                };
                eprintln!(
                    "{:>7} {:<8} -> {}",
                    self.now,
                    self.nodes[node].name,
                    text.chars().take(300).collect::<String>()
                );
            }
        }
        for effect in effects {
            match effect {
                Effect::Send {
                    connection, bytes, ..
                } => {
                    let Some((link, end)) = self.find_link(node, connection) else {
                        continue;
                    };
                    if !self.links[link].up {
                        continue;
                    }
                    let generation = self.links[link].generation;
                    let to_end = 1 - end;
                    let copies = if self.faults && self.rng.chance(2) {
                        0 // dropped
                    } else if self.faults && self.rng.chance(2) {
                        2 // duplicated
                    } else {
                        1
                    };
                    for _ in 0..copies {
                        // Random delays reorder messages when faults are on.
                        let delay = if self.faults {
                            1 + self.rng.below(40)
                        } else {
                            1
                        };
                        self.schedule(
                            delay,
                            Event::Deliver {
                                link,
                                generation,
                                to_end,
                                bytes: bytes.clone(),
                            },
                        );
                    }
                }
                Effect::Close { connection, .. } => {
                    if let Some((link, _)) = self.find_link(node, connection) {
                        self.link_down(link);
                    } else {
                        self.schedule(0, Event::Disconnect { node, connection });
                    }
                }
                Effect::Storage(task) => {
                    let n = &mut self.nodes[node];
                    n.storage_clock = n.storage_clock.max(self.now) + 1 + self.rng.below(5);
                    let at = n.storage_clock - self.now;
                    let life = n.life;
                    let id = self.next_task;
                    self.next_task += 1;
                    self.tasks.insert(id, task);
                    self.schedule(
                        at,
                        Event::Storage {
                            node,
                            life,
                            task: id,
                        },
                    );
                }
                Effect::Notify(Notification::Stored { document, .. }) => {
                    let life = self.nodes[node].life;
                    for (index, put) in self.puts.iter().enumerate() {
                        if put.node == node && put.life == life && put.document == document {
                            self.acked.insert(index as u64);
                        }
                    }
                }
                Effect::Notify(_) => {}
                _ => {}
            }
        }
    }

    fn run_storage(&mut self, node: usize, life: u64, task: StorageTask) {
        if self.nodes[node].life != life {
            return; // the replica crashed before this write committed: it is lost
        }
        // Writes fail now and then; the engine must retry without losing anything.
        let fail = self.faults && self.rng.chance(1);
        let result = self.nodes[node].store.run(task, fail);
        if let Some(result) = result {
            self.input(node, Input::Storage(result));
        }
    }

    fn restart(&mut self, node: usize) {
        for link in 0..self.links.len() {
            if self.links[link].ends.iter().any(|(n, _)| *n == node) {
                self.link_down(link);
            }
        }
        let n = &mut self.nodes[node];
        n.life += 1;
        n.restarts += 1;
        n.storage_clock = 0;
        n.engine = engine_for(&n.name, &n.storage_id, n.relay, &mut self.rng);
        let known: Vec<DocumentId> = n.known.iter().copied().collect();
        for document in known {
            self.input(node, Input::Open { document });
        }
    }

    fn devices(&self) -> usize {
        self.nodes.len() - 1
    }

    /// One random thing an app or the network does.
    fn chaos(&mut self) {
        let roll = self.rng.below(100);
        let device = self.rng.below(self.devices() as u64) as usize;
        match roll {
            0..=4 if self.documents.len() < 3 => {
                let document = DocumentId::from_random_bytes(
                    self.rng.next().to_le_bytes().repeat(2).try_into().unwrap(),
                );
                self.documents.push(document);
                self.nodes[device].known.insert(document);
                self.input(device, Input::Create { document });
                let change = LocalChange::new(|tx| {
                    tx.put_object(ROOT, "text", ObjType::Text)?;
                    Ok(())
                });
                self.input(device, Input::Change { document, change });
            }
            0..=14 if !self.documents.is_empty() => {
                let document = self.documents[self.rng.below(self.documents.len() as u64) as usize];
                self.nodes[device].known.insert(document);
                self.input(device, Input::Open { document });
            }
            0..=69 if !self.documents.is_empty() => {
                let document = self.documents[self.rng.below(self.documents.len() as u64) as usize];
                let ready = self.nodes[device]
                    .engine
                    .document(document)
                    .is_some_and(|d| d.get(ROOT, "text").ok().flatten().is_some());
                if !ready {
                    return;
                }
                let put = self.puts.len() as u64;
                let key = format!("{}-k{put}", self.nodes[device].name);
                let value = self.rng.next() as i64;
                let at = self.rng.below(4) as usize;
                self.puts.push(PendingPut {
                    node: device,
                    life: self.nodes[device].life,
                    document,
                    key: key.clone(),
                    value,
                });
                let change = LocalChange::new(move |tx| {
                    tx.put(ROOT, key.as_str(), value)?;
                    let text = tx.get(ROOT, "text")?.map(|(_, id)| id).unwrap();
                    let len = tx.length(&text);
                    tx.splice_text(&text, at.min(len), 0, "ab")?;
                    Ok(())
                });
                self.input(device, Input::Change { document, change });
            }
            70..=74 if !self.documents.is_empty() => {
                let document = self.documents[self.rng.below(self.documents.len() as u64) as usize];
                self.input(
                    device,
                    Input::Broadcast {
                        document,
                        data: vec![0xa0],
                    },
                );
            }
            75..=84 => {
                let link = self.rng.below(self.links.len() as u64) as usize;
                if self.links[link].up {
                    self.link_down(link);
                } else {
                    self.link_up(link);
                }
            }
            85..=89 => {
                let node = self.rng.below(self.nodes.len() as u64) as usize;
                self.restart(node);
            }
            _ => {}
        }
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((at, _, event))) = self.queue.pop() else {
            return false;
        };
        self.steps += 1;
        if !matches!(event, Event::Tick { .. }) {
            self.busy -= 1;
        }
        self.now = self.now.max(at);
        match event {
            Event::Deliver {
                link,
                generation,
                to_end,
                bytes,
            } => {
                let l = &self.links[link];
                if l.up && l.generation == generation {
                    let (node, connection) = l.ends[to_end];
                    self.input(node, Input::Received { connection, bytes });
                }
            }
            Event::Disconnect { node, connection } => {
                self.input(node, Input::Disconnected { connection });
            }
            Event::Storage { node, life, task } => {
                let task = self.tasks.remove(&task).unwrap();
                self.run_storage(node, life, task);
            }
            Event::Tick { node } => {
                self.input(node, Input::Tick);
                self.schedule(250, Event::Tick { node });
            }
        }
        true
    }

    /// Whether only ticks are left to run.
    fn quiet(&self) -> bool {
        self.busy == 0
            && self.nodes.iter().all(|n| {
                n.engine
                    .next_deadline()
                    .is_none_or(|d| d.0 > self.now + 5_000)
            })
    }
}

fn content(doc: &Automerge) -> hydrate::Value {
    doc.hydrate(None)
}

/// What a run did, so the test can show the simulation is not trivially quiet.
#[derive(Debug, Default)]
struct Stats {
    steps: u64,
    acked_puts: u64,
    restarts: u64,
    shared_documents: u64,
}

fn run(seed: u64) -> Result<Stats, String> {
    let mut sim = Sim::new(seed, 3);
    // Chaos: app actions and faults interleaved with the network.
    for _ in 0..300 {
        sim.chaos();
        for _ in 0..sim.rng.below(12) {
            sim.step();
        }
    }
    // Heal: no more faults; every link is reset (a broken socket is noticed and redialled)
    // and the apps reopen what they know.
    sim.faults = false;
    for link in 0..sim.links.len() {
        sim.link_down(link);
    }
    for _ in 0..2_000 {
        if !sim.step() {
            break;
        }
    }
    for link in 0..sim.links.len() {
        sim.link_up(link);
    }
    for node in 0..sim.nodes.len() {
        let known: Vec<DocumentId> = sim.nodes[node].known.iter().copied().collect();
        for document in known {
            sim.input(node, Input::Open { document });
        }
    }
    let mut steps = 0;
    while !sim.quiet() {
        if steps > 200_000 {
            return Err("no quiescence after 200,000 steps".into());
        }
        sim.step();
        steps += 1;
    }
    check(&sim)?;
    Ok(Stats {
        steps: sim.steps,
        acked_puts: sim.acked.len() as u64,
        restarts: sim.nodes.iter().map(|n| n.restarts).sum(),
        shared_documents: sim
            .documents
            .iter()
            .filter(|d| {
                sim.nodes
                    .iter()
                    .filter(|n| {
                        n.engine
                            .document(**d)
                            .is_some_and(|doc| !doc.get_heads().is_empty())
                    })
                    .count()
                    > 1
            })
            .count() as u64,
    })
}

fn check(sim: &Sim) -> Result<(), String> {
    for document in &sim.documents {
        // Which replicas hold the document with content.
        let holders: Vec<(&str, &Automerge)> = sim
            .nodes
            .iter()
            .filter_map(|n| {
                let doc = n.engine.document(*document)?;
                (!doc.get_heads().is_empty()).then_some((n.name.as_str(), doc))
            })
            .collect();
        let Some((first_name, first)) = holders.first() else {
            // Created, but the creator crashed before it was stored: it exists nowhere.
            continue;
        };
        for node in &sim.nodes {
            let wants = node.relay || node.known.contains(document);
            if wants && !holders.iter().any(|(name, _)| *name == node.name) {
                let stored = node
                    .store
                    .docs
                    .get(document)
                    .map(|bytes| Automerge::load(bytes).map(|doc| doc.get_heads().len()));
                return Err(format!(
                    "{} does not have {document}, which {first_name} has (stored: {stored:?})",
                    node.name
                ));
            }
        }
        for (name, doc) in &holders[1..] {
            if doc.get_heads() != first.get_heads() {
                return Err(format!(
                    "{document}: heads of {name} differ from {first_name}'s"
                ));
            }
            if content(doc) != content(first) {
                return Err(format!(
                    "{document}: content of {name} differs from {first_name}'s"
                ));
            }
        }
    }
    for (index, put) in sim.puts.iter().enumerate() {
        if !sim.acked.contains(&(index as u64)) {
            continue;
        }
        let holder = sim
            .nodes
            .iter()
            .find_map(|n| n.engine.document(put.document));
        let value = holder.and_then(|doc| doc.get(ROOT, put.key.as_str()).ok().flatten());
        match value {
            Some((Value::Scalar(v), _)) if *v == ScalarValue::Int(put.value) => {}
            other => {
                return Err(format!(
                    "acknowledged put {} on {} is lost: {other:?}",
                    put.key, put.document
                ));
            }
        }
    }
    Ok(())
}

fn run_seed(seed: u64) -> Stats {
    let replay = format!("replay: WEFT_SEED={seed} cargo test -p weft --test simulation");
    match catch_unwind(AssertUnwindSafe(|| run(seed))) {
        Ok(Ok(stats)) => stats,
        Ok(Err(failure)) => panic!("seed {seed} failed: {failure}\n{replay}"),
        Err(_) => panic!("seed {seed} panicked (see above)\n{replay}"),
    }
}

#[test]
fn replicas_converge_under_faults_and_restarts() {
    if let Ok(seed) = std::env::var("WEFT_SEED") {
        let stats = run_seed(seed.parse().expect("WEFT_SEED is a number"));
        eprintln!("{stats:?}");
        return;
    }
    let seeds: u64 = std::env::var("WEFT_SIM_SEEDS").map_or(1000, |n| n.parse().expect("a count"));
    let mut total = Stats::default();
    for seed in 0..seeds {
        let stats = run_seed(seed);
        total.steps += stats.steps;
        total.acked_puts += stats.acked_puts;
        total.restarts += stats.restarts;
        total.shared_documents += stats.shared_documents;
    }
    eprintln!("{seeds} seeds: {total:?}");
    // The runs did what they are for: changes were acknowledged, replicas restarted, and
    // documents were shared between replicas.
    assert!(total.acked_puts >= 10 * seeds, "{total:?}");
    assert!(total.restarts >= seeds, "{total:?}");
    assert!(total.shared_documents >= seeds, "{total:?}");
}
