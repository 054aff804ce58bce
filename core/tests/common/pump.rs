//! A lossless, deterministic driver for scenario tests of the sync engine: engines joined by
//! in-order links, in-memory stores, and an "outside" end whose messages the test writes
//! and reads as raw frames (to play a misbehaving or JS-like peer).

use std::collections::{BTreeMap, VecDeque};

use weft::{
    DocumentId, StorageId,
    sync::{
        ConnectionId, Effect, Engine, Input, Millis, Notification, StorageResult, StorageTask,
        SyncConfig,
    },
    wire::{self, Message},
};

/// Index of the outside end in links.
pub(crate) const OUTSIDE: usize = usize::MAX;

/// An in-memory store that runs the engine's storage tasks: chunks per document
/// (concatenated) and sync states.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) docs: BTreeMap<DocumentId, Vec<u8>>,
    pub(crate) sync_states: BTreeMap<(DocumentId, StorageId), Vec<u8>>,
}

impl Store {
    /// Runs a task; appends fail (and store nothing) if `fail_writes`.
    pub(crate) fn run(&mut self, task: StorageTask, fail_writes: bool) -> Option<StorageResult> {
        match task {
            StorageTask::Load { document } => Some(StorageResult::Loaded {
                document,
                bytes: self.docs.get(&document).cloned(),
            }),
            StorageTask::Append {
                document, bytes, ..
            } => {
                if !fail_writes {
                    self.docs.entry(document).or_default().extend(bytes);
                }
                Some(StorageResult::Appended {
                    document,
                    ok: !fail_writes,
                })
            }
            StorageTask::LoadSyncState { document, peer } => Some(StorageResult::SyncStateLoaded {
                state: self.sync_states.get(&(document, peer.clone())).cloned(),
                document,
                peer,
            }),
            StorageTask::SaveSyncState {
                document,
                peer,
                state,
            } => {
                self.sync_states.insert((document, peer), state);
                None
            }
            _ => None,
        }
    }
}

pub(crate) struct Node {
    pub(crate) config: SyncConfig,
    pub(crate) engine: Engine,
    pub(crate) store: Store,
    pub(crate) notes: Vec<Notification>,
    /// Storage tasks wait here instead of running (a slow disk).
    pub(crate) hold_storage: bool,
    /// Appends fail.
    pub(crate) fail_writes: bool,
    held: VecDeque<StorageTask>,
}

pub(crate) struct Link {
    pub(crate) ends: [(usize, ConnectionId); 2],
    pub(crate) up: bool,
}

enum Event {
    Deliver {
        link: usize,
        to_end: usize,
        bytes: Vec<u8>,
    },
    Storage {
        node: usize,
        task: StorageTask,
    },
    Disconnected {
        node: usize,
        connection: ConnectionId,
    },
    Close {
        link: usize,
    },
}

#[derive(Default)]
pub(crate) struct Pump {
    pub(crate) nodes: Vec<Node>,
    pub(crate) links: Vec<Link>,
    queue: VecDeque<Event>,
    pub(crate) now: u64,
    next_connection: u64,
    /// Every frame sent: (link, from end, bytes).
    pub(crate) wire_log: Vec<(usize, usize, Vec<u8>)>,
    /// Frames sent to the outside end, per link, decoded.
    pub(crate) outside_inbox: BTreeMap<usize, Vec<Message>>,
    /// Links the engine asked to close.
    pub(crate) closed: Vec<(usize, String)>,
}

impl Pump {
    pub(crate) fn add(&mut self, config: SyncConfig) -> usize {
        self.nodes.push(Node {
            engine: Engine::new(config.clone()),
            config,
            store: Store::default(),
            notes: Vec::new(),
            hold_storage: false,
            fail_writes: false,
            held: VecDeque::new(),
        });
        self.nodes.len() - 1
    }

    fn connection(&mut self) -> ConnectionId {
        self.next_connection += 1;
        ConnectionId(self.next_connection)
    }

    /// Joins two nodes (or a node and [`OUTSIDE`] as the dialler) and runs the handshake.
    pub(crate) fn connect(&mut self, dialer: usize, listener: usize) -> usize {
        self.connect_with(dialer, listener, weft::sync::Access::full())
    }

    /// Like `connect`; the listener lets the dialer read and write only what `access` says.
    pub(crate) fn connect_with(
        &mut self,
        dialer: usize,
        listener: usize,
        access: weft::sync::Access,
    ) -> usize {
        let ends = [(dialer, self.connection()), (listener, self.connection())];
        self.links.push(Link { ends, up: true });
        let link = self.links.len() - 1;
        if listener != OUTSIDE {
            self.input(
                listener,
                Input::Connected {
                    connection: ends[1].1,
                    dialed: false,
                    access,
                },
            );
        }
        if dialer != OUTSIDE {
            self.input(
                dialer,
                Input::Connected {
                    connection: ends[0].1,
                    dialed: true,
                    access: weft::sync::Access::full(),
                },
            );
        }
        self.run();
        link
    }

    pub(crate) fn disconnect(&mut self, link: usize) {
        if !std::mem::replace(&mut self.links[link].up, false) {
            return;
        }
        for (node, connection) in self.links[link].ends {
            if node != OUTSIDE {
                self.input(node, Input::Disconnected { connection });
            }
        }
        self.run();
    }

    /// Restarts a node: a new engine over the same store (after its held tasks are lost).
    pub(crate) fn restart(&mut self, node: usize) {
        for link in 0..self.links.len() {
            if self.links[link].ends.iter().any(|(n, _)| *n == node) {
                self.disconnect(link);
            }
        }
        let n = &mut self.nodes[node];
        n.held.clear();
        n.engine = Engine::new(n.config.clone());
    }

    /// Sends raw bytes from the outside end of `link` to its node.
    pub(crate) fn inject(&mut self, link: usize, bytes: Vec<u8>) {
        let to_end = usize::from(self.links[link].ends[0].0 == OUTSIDE);
        self.queue.push_back(Event::Deliver {
            link,
            to_end,
            bytes,
        });
        self.run();
    }

    pub(crate) fn input(&mut self, node: usize, input: Input) {
        let effects = self.nodes[node].engine.handle(Millis(self.now), input);
        for effect in effects {
            match effect {
                Effect::Send {
                    connection, bytes, ..
                } => {
                    let (link, end) = self.find(node, connection);
                    if self.links[link].up {
                        self.wire_log.push((link, end, bytes.clone()));
                        self.queue.push_back(Event::Deliver {
                            link,
                            to_end: 1 - end,
                            bytes,
                        });
                    }
                }
                Effect::Close { connection, reason } => {
                    let (link, _) = self.find(node, connection);
                    self.closed.push((link, reason));
                    // After the frames queued before it, as a socket closes.
                    self.queue.push_back(Event::Close { link });
                }
                Effect::Storage(task) => self.queue.push_back(Event::Storage { node, task }),
                Effect::Notify(note) => self.nodes[node].notes.push(note),
                _ => {}
            }
        }
    }

    fn find(&self, node: usize, connection: ConnectionId) -> (usize, usize) {
        self.links
            .iter()
            .enumerate()
            .find_map(|(i, l)| {
                l.ends
                    .iter()
                    .position(|e| *e == (node, connection))
                    .map(|e| (i, e))
            })
            .expect("a known connection")
    }

    /// Runs until nothing is left to deliver or store (held storage stays held).
    pub(crate) fn run(&mut self) {
        for _ in 0..1_000_000 {
            let Some(event) = self.queue.pop_front() else {
                return;
            };
            match event {
                Event::Deliver {
                    link,
                    to_end,
                    bytes,
                } => {
                    let (node, connection) = self.links[link].ends[to_end];
                    if !self.links[link].up {
                        continue;
                    }
                    if node == OUTSIDE {
                        let message = wire::decode(&bytes).unwrap().unwrap();
                        self.outside_inbox.entry(link).or_default().push(message);
                    } else {
                        self.input(node, Input::Received { connection, bytes });
                    }
                }
                Event::Close { link } => {
                    if std::mem::replace(&mut self.links[link].up, false) {
                        for (node, connection) in self.links[link].ends {
                            if node != OUTSIDE {
                                self.queue
                                    .push_back(Event::Disconnected { node, connection });
                            }
                        }
                    }
                }
                Event::Disconnected { node, connection } => {
                    self.input(node, Input::Disconnected { connection });
                }
                Event::Storage { node, task } => {
                    if self.nodes[node].hold_storage {
                        self.nodes[node].held.push_back(task);
                    } else {
                        self.store(node, task);
                    }
                }
            }
        }
        panic!("the pump did not settle");
    }

    /// Lets held storage tasks run.
    pub(crate) fn release_storage(&mut self, node: usize) {
        self.nodes[node].hold_storage = false;
        while let Some(task) = self.nodes[node].held.pop_front() {
            self.store(node, task);
        }
        self.run();
    }

    fn store(&mut self, node: usize, task: StorageTask) {
        let fail = self.nodes[node].fail_writes;
        if let Some(result) = self.nodes[node].store.run(task, fail) {
            self.input(node, Input::Storage(result));
        }
    }

    /// Moves time on and ticks every node.
    pub(crate) fn advance(&mut self, ms: u64) {
        self.now += ms;
        for node in 0..self.nodes.len() {
            self.input(node, Input::Tick);
        }
        self.run();
    }

    /// Bytes of frames sent on `link` from `end` (0: the dialler).
    pub(crate) fn bytes_sent(&self, link: usize, end: usize) -> usize {
        self.wire_log
            .iter()
            .filter(|(l, e, _)| *l == link && *e == end)
            .map(|(_, _, b)| b.len())
            .sum()
    }
}
