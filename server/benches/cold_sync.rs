//! Cold sync from a relay to an empty client: 1,000 small documents, then the editing-trace
//! document (259,778 edits, one commit per 100), served by `weft-relay` and by the official
//! automerge-repo sync server (node, `NodeWSServerAdapter`, `NodeFSStorageAdapter`, set up as
//! automerge-repo-sync-server does) from the same documents, to the same weft client, in the
//! same run. Time and bytes on the wire, counted by a TCP proxy between client and server.
//!
//! Each round starts each server afresh on its stored data and warms the process up with
//! one unrelated small document; then a first empty client finds none of its documents in
//! the server's memory ("cold server"), and a second empty client syncs from the same
//! process ("warm server"). Servers alternate within a round. A client floor (loading the
//! same bytes into automerge, no network) is measured in the same run.
//!
//! `cargo bench -p weft-relay --bench cold_sync` (needs `scripts/setup` for node and the npm
//! packages). `WEFT_BENCH_ROUNDS` sets the rounds (5); `WEFT_BENCH_CORPUS=small` or `trace`
//! runs one corpus. Target (issue 5): weft-relay at least
//! 2× faster than the JS server.

// A benchmark: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/benches/common/mod.rs"]
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use weft::{
    DocumentId, Repo, RepoConfig,
    automerge::{AutoCommit, Automerge, ChangeHash, ObjType, ROOT, transaction::Transactable},
    net::{ConnectionState, NetConfig},
    store::{Chunk, ChunkKind, SqliteOptions, SqliteStorage, Storage, WriteOp},
};

use common::{machine, median, millis, trace};

const SMALL_DOCUMENTS: usize = 1_000;
/// How long one client may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(300);

/// Documents as both servers store them.
struct Corpus {
    name: &'static str,
    documents: Arc<Vec<Stored>>,
    /// A small document each server serves once before the measured clients, so that a
    /// just-started process (node's JIT, the relay's first connection) is not what is
    /// measured: only the documents are cold.
    warmup: Arc<Vec<Stored>>,
}

struct Stored {
    id: DocumentId,
    bytes: Vec<u8>,
    heads: Vec<ChangeHash>,
}

impl Stored {
    fn new(mut doc: AutoCommit) -> Self {
        let mut heads = doc.get_heads();
        heads.sort();
        Self {
            id: DocumentId::random(),
            bytes: doc.save(),
            heads,
        }
    }
}

impl Corpus {
    fn new(name: &'static str, documents: Vec<Stored>) -> Self {
        Self {
            name,
            documents: Arc::new(documents),
            warmup: Arc::new(vec![small_document(0)]),
        }
    }

    /// Everything a server stores.
    fn stored(&self) -> impl Iterator<Item = &Stored> {
        self.documents.iter().chain(self.warmup.iter())
    }

    fn bytes(&self) -> usize {
        self.documents.iter().map(|d| d.bytes.len()).sum()
    }
}

/// A small document of the kind a notes or tasks app keeps: a few fields and a short text,
/// written in three changes.
fn small_document(i: usize) -> Stored {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "title", format!("Note {i}")).unwrap();
    doc.put(ROOT, "done", false).unwrap();
    doc.commit();
    let body = doc.put_object(ROOT, "body", ObjType::Text).unwrap();
    doc.splice_text(&body, 0, 0, "Buy milk, call the plumber, water the plants.")
        .unwrap();
    doc.commit();
    doc.put(ROOT, "done", i.is_multiple_of(3)).unwrap();
    doc.commit();
    Stored::new(doc)
}

fn small_documents() -> Corpus {
    Corpus::new(
        "1,000 small documents",
        (0..SMALL_DOCUMENTS).map(small_document).collect(),
    )
}

fn trace_document() -> Corpus {
    let (doc, _) = trace::replay_raw(&trace::load_trace());
    Corpus::new("editing-trace document", vec![Stored::new(doc)])
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Weft,
    Js,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Weft => "weft-relay",
            Server::Js => "JS sync server",
        }
    }
}

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js")
}

/// Stores the corpus where each server keeps its data: weft-relay's SQLite database, and the
/// JS server's folder (through automerge-repo's own `import` and `flush`).
fn seed(server: Server, data: &Path, corpus: &Corpus, runtime: &tokio::runtime::Runtime) {
    match server {
        Server::Weft => runtime.block_on(async {
            std::fs::create_dir_all(data).unwrap();
            let storage =
                SqliteStorage::open(data.join("weft.db"), SqliteOptions::default()).unwrap();
            let writes = corpus
                .stored()
                .map(|doc| WriteOp::CreateDocument {
                    id: doc.id,
                    chunk: Chunk::new(ChunkKind::Snapshot, doc.bytes.clone()),
                    heads: doc.heads.clone(),
                    now: 0,
                })
                .collect();
            storage.submit(writes).await.unwrap();
            storage.close().await.unwrap();
        }),
        Server::Js => {
            let seeds = tempfile::tempdir().unwrap();
            for doc in corpus.stored() {
                std::fs::write(seeds.path().join(format!("{}.am", doc.id)), &doc.bytes).unwrap();
            }
            let output = Command::new("node")
                .arg(js_dir().join("sync-server.mjs"))
                .arg("import")
                .arg(data)
                .arg(seeds.path())
                .output()
                .expect("node runs (scripts/setup installs it)");
            assert!(
                output.status.success(),
                "seeding the JS server failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// A server process serving its data folder; killed if dropped without [`Running::stop`]
/// (a failed benchmark leaves nothing running).
struct Running {
    child: Child,
    stopped: bool,
    /// The JS server exits when its stdin closes.
    stdin: Option<ChildStdin>,
    address: SocketAddr,
}

fn start(server: Server, data: &Path) -> Running {
    let mut child = match server {
        Server::Weft => Command::new(env!("CARGO_BIN_EXE_weft-relay"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--anonymous",
                "read-write",
                "--data",
            ])
            .arg(data)
            .env("RUST_LOG", "warn,weft_relay=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Server::Js => Command::new("node")
            .arg(js_dir().join("sync-server.mjs"))
            .arg("serve")
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    };
    // weft-relay logs `address=…`; the JS server prints {"url":"ws://…"}.
    let (output, marker): (Box<dyn std::io::Read + Send>, &str) = match server {
        Server::Weft => (Box::new(child.stderr.take().unwrap()), "address="),
        Server::Js => (Box::new(child.stdout.take().unwrap()), "ws://"),
    };
    let mut lines = BufReader::new(output).lines();
    let address = loop {
        let line = lines.next().expect("the server starts").unwrap();
        if let Some(rest) = line.split(marker).nth(1) {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                .unwrap_or(rest.len());
            break rest[..end].parse().unwrap();
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Running {
        stdin: child.stdin.take(),
        child,
        stopped: false,
        address,
    }
}

impl Running {
    fn stop(mut self) {
        match self.stdin.take() {
            Some(stdin) => drop(stdin),
            None => {
                let status = Command::new("kill")
                    .arg(self.child.id().to_string())
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
        let status = self.child.wait().unwrap();
        self.stopped = true;
        assert!(status.success(), "the server exits cleanly: {status}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TCP proxy in front of a server that counts the bytes each way (WebSocket framing and
/// the HTTP upgrade included: what a network carries).
struct CountingProxy {
    address: SocketAddr,
    to_server: Arc<AtomicU64>,
    to_client: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    async fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let to_server = Arc::new(AtomicU64::new(0));
        let to_client = Arc::new(AtomicU64::new(0));
        let counters = (to_server.clone(), to_client.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(server).await.unwrap();
                client.set_nodelay(true).unwrap();
                upstream.set_nodelay(true).unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = upstream.into_split();
                tokio::spawn(forward(client_read, server_write, counters.0.clone()));
                tokio::spawn(forward(server_read, client_write, counters.1.clone()));
            }
        });
        Self {
            address,
            to_server,
            to_client,
            task,
        }
    }

    fn bytes(&self) -> (u64, u64) {
        (
            self.to_server.load(Ordering::Relaxed),
            self.to_client.load(Ordering::Relaxed),
        )
    }

    /// The bytes once traffic has stopped for 200 ms (replies still in flight when the
    /// client had everything count too).
    async fn settled_bytes(&self) -> (u64, u64) {
        let mut last = self.bytes();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.bytes();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Arc<AtomicU64>,
) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = to.shutdown().await;
}

/// One empty client's sync of every document in `corpus`.
struct Sample {
    time: Duration,
    to_server: u64,
    to_client: u64,
}

/// An empty in-memory weft client dials `server` (through a counting proxy) and asks for
/// all `documents` at once; the clock stops when each has the server's heads.
async fn empty_client(server: SocketAddr, documents: Arc<Vec<Stored>>) -> Sample {
    let proxy = CountingProxy::start(server).await;
    // A slow server must be measured, not refused: peers get as long as the benchmark.
    let mut config = RepoConfig::default();
    config.sync.request_timeout_ms = PATIENCE.as_millis() as u64;
    let repo = Repo::in_memory_with(config);
    let start = Instant::now();
    let dialer = repo.dial(format!("ws://{}", proxy.address), NetConfig::default());
    let mut finds = tokio::task::JoinSet::new();
    for index in 0..documents.len() {
        let (repo, documents) = (repo.clone(), documents.clone());
        finds.spawn(async move {
            let wanted = &documents[index];
            let handle = repo.find(wanted.id).await.unwrap();
            let mut events = handle.subscribe();
            loop {
                let mut heads = handle.heads();
                heads.sort();
                if heads == wanted.heads {
                    break;
                }
                events.recv().await.expect("the document stays open");
            }
        });
    }
    tokio::time::timeout(PATIENCE, async {
        while let Some(done) = finds.join_next().await {
            done.unwrap();
        }
    })
    .await
    .expect("the client gets every document in time");
    let time = start.elapsed();
    let (to_server, to_client) = proxy.settled_bytes().await;
    assert_eq!(dialer.state(), ConnectionState::Connected);
    dialer.stop().await;
    repo.close().await.unwrap();
    Sample {
        time,
        to_server,
        to_client,
    }
}

/// The least time any server could give this client: loading the documents' bytes
/// straight into automerge, with no network and no server (median of 5).
fn client_floor(corpus: &Corpus) -> Duration {
    let runs = (0..5)
        .map(|_| {
            let start = Instant::now();
            for doc in corpus.documents.iter() {
                std::hint::black_box(Automerge::load(&doc.bytes).unwrap());
            }
            start.elapsed()
        })
        .collect();
    median(runs)
}

#[derive(Default)]
struct Samples {
    cold: Vec<Sample>,
    warm: Vec<Sample>,
}

fn run_corpus(corpus: &Corpus, rounds: usize, runtime: &tokio::runtime::Runtime) {
    println!(
        "\n{}: {} documents, {} bytes saved",
        corpus.name,
        corpus.documents.len(),
        corpus.bytes()
    );
    let servers = [Server::Weft, Server::Js];
    let folders = tempfile::tempdir().unwrap();
    let data = |server: Server| folders.path().join(server.name().replace(' ', "-"));
    for server in servers {
        let start = Instant::now();
        seed(server, &data(server), corpus, runtime);
        println!(
            "  seeded {:<15} in {:>6.0} ms",
            server.name(),
            millis(start.elapsed())
        );
    }

    let floor = client_floor(corpus);
    let mut samples = [Samples::default(), Samples::default()];
    for round in 0..rounds {
        // Alternate which server goes first, so neither always meets a cooler machine.
        let order = if round % 2 == 0 {
            servers
        } else {
            [Server::Js, Server::Weft]
        };
        for server in order {
            let running = start(server, &data(server));
            let slot = &mut samples[usize::from(server == Server::Js)];
            runtime.block_on(empty_client(running.address, corpus.warmup.clone()));
            let documents = &corpus.documents;
            slot.cold
                .push(runtime.block_on(empty_client(running.address, documents.clone())));
            slot.warm
                .push(runtime.block_on(empty_client(running.address, documents.clone())));
            running.stop();
        }
        print!(".");
        std::io::stdout().flush().unwrap();
    }
    println!();
    println!(
        "  client floor (Automerge::load of the same bytes, no network): {:.1} ms",
        millis(floor)
    );
    report(&samples);
}

fn report(samples: &[Samples; 2]) {
    let summary = |samples: &[Sample]| {
        let time = median(samples.iter().map(|s| s.time).collect());
        let spread = (
            samples.iter().map(|s| s.time).min().unwrap(),
            samples.iter().map(|s| s.time).max().unwrap(),
        );
        let bytes = |pick: fn(&Sample) -> u64| {
            let mut all: Vec<u64> = samples.iter().map(pick).collect();
            all.sort();
            all[all.len() / 2]
        };
        (time, spread, bytes(|s| s.to_client), bytes(|s| s.to_server))
    };
    for (label, pick) in [
        (
            "cold server",
            (|s: &Samples| &s.cold[..]) as fn(&Samples) -> &[Sample],
        ),
        ("warm server", |s: &Samples| &s.warm[..]),
    ] {
        let weft = summary(pick(&samples[0]));
        let js = summary(pick(&samples[1]));
        for (server, (time, (min, max), down, up)) in [(Server::Weft, weft), (Server::Js, js)] {
            println!(
                "  {label}, {:<15} {:>8.1} ms (min {:.1}, max {:.1}); {:>10} bytes to the client, {:>8} to the server",
                server.name(),
                millis(time),
                millis(min),
                millis(max),
                down,
                up
            );
        }
        println!(
            "  {label}: weft-relay {:.2}x faster; {:.2}x the bytes",
            js.0.as_secs_f64() / weft.0.as_secs_f64(),
            (weft.2 + weft.3) as f64 / (js.2 + js.3) as f64
        );
    }
}

fn main() {
    let rounds = std::env::var("WEFT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let installed = js_dir().join("node_modules/@automerge/automerge-repo-storage-nodefs");
    assert!(
        installed.exists(),
        "the JS packages are missing: run scripts/setup first"
    );
    println!(
        "cold sync to an empty weft client, {rounds} rounds (medians); machine: {}",
        machine()
    );
    let runtime = common::runtime();
    // `WEFT_BENCH_CORPUS=small` or `trace` runs one of them (to profile it).
    let only = std::env::var("WEFT_BENCH_CORPUS").ok();
    if only.as_deref() != Some("trace") {
        run_corpus(&small_documents(), rounds, &runtime);
    }
    if only.as_deref() != Some("small") {
        run_corpus(&trace_document(), rounds, &runtime);
    }
}
