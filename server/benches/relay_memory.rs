//! The relay's memory with many stored documents and few in use, and what a connection
//! with a token costs against one without, in the same run.
//!
//! Memory: 10,000 documents are stored in a relay's database; the relay binary is started
//! on it; ten clients open ten documents each (100 in use) and keep them; the relay's RSS is
//! read from /proc. Then one client walks through all 10,000, 100 at a time, letting each
//! batch go, and the relay's peak RSS (VmHWM) over the whole run is read. Target (issue 6):
//! at most 512 MiB with 100 in use.
//!
//! Connections: two relay processes on the same data, one letting anonymous peers in, one
//! requiring a JWT (HS256, in the URL); rounds alternate between them. Each connection is a
//! WebSocket handshake, the token check, automerge-repo's `join` and the relay's `peer`
//! answer, one after the other, as a client that reconnects would.
//!
//! `cargo bench -p weft-relay --bench relay_memory`. `WEFT_BENCH_ROUNDS` sets the rounds of
//! the connection part (5).

// A benchmark: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/benches/common/mod.rs"]
mod bench;
#[path = "../../core/tests/common/mod.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use weft::{
    DocHandle, DocumentId, Repo,
    automerge::{AutoCommit, ObjType, ROOT, transaction::Transactable},
    store::{Chunk, ChunkKind, SqliteOptions, SqliteStorage, Storage, WriteOp},
    wire,
};
use weft_relay::{auth::Grant, secret};

const STORED: usize = 10_000;
const CLIENTS: usize = 10;
const IN_USE_PER_CLIENT: usize = 10;
const CONNECTIONS_PER_ROUND: usize = 200;
/// The relay's idle unload in this run (60 s by default): short, so that the walk below
/// shows memory coming back within the run.
const IDLE_UNLOAD: Duration = Duration::from_secs(5);

/// A note of the kind a notes app keeps: a few fields and a paragraph, in three changes.
fn note(i: usize) -> (DocumentId, Vec<u8>, Vec<weft::automerge::ChangeHash>) {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "title", format!("Note {i}")).unwrap();
    doc.commit();
    let body = doc.put_object(ROOT, "body", ObjType::Text).unwrap();
    let text = format!("{i}: buy milk, call the plumber, water the plants. ").repeat(4);
    doc.splice_text(&body, 0, 0, &text).unwrap();
    doc.commit();
    doc.put(ROOT, "done", i.is_multiple_of(3)).unwrap();
    doc.commit();
    let heads = doc.get_heads();
    (DocumentId::random(), doc.save(), heads)
}

/// Stores `STORED` notes in the relay database under `data`; returns their ids.
async fn seed(data: &std::path::Path) -> Vec<DocumentId> {
    std::fs::create_dir_all(data).unwrap();
    let storage = SqliteStorage::open(data.join("weft.db"), SqliteOptions::default()).unwrap();
    let mut ids = Vec::with_capacity(STORED);
    let writes = (0..STORED)
        .map(|i| {
            let (id, bytes, heads) = note(i);
            ids.push(id);
            WriteOp::CreateDocument {
                id,
                chunk: Chunk::new(ChunkKind::Snapshot, bytes),
                heads,
                now: 0,
            }
        })
        .collect();
    storage.submit(writes).await.unwrap();
    storage.close().await.unwrap();
    ids
}

/// A field of /proc/PID/status, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kb / 1024.0
}

/// `weft_documents_loaded` from the relay's `/metrics`.
async fn loaded(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("ws://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .lines()
        .find_map(|line| line.strip_prefix("weft_documents_loaded "))
        .unwrap_or("?")
        .to_owned()
}

/// Finds `ids` on `repo` and waits until each has its content.
async fn open_all(repo: &Repo, ids: &[DocumentId]) -> Vec<DocHandle> {
    let mut handles = Vec::with_capacity(ids.len());
    for id in ids {
        handles.push(common::find_eventually(repo, *id).await);
    }
    for handle in &handles {
        common::eventually("a document arrives whole", || async {
            handle.with_doc(|d| {
                weft::automerge::ReadDoc::get(d, ROOT, "done")
                    .ok()
                    .flatten()
                    .is_some()
            })
        })
        .await;
    }
    handles
}

fn memory(runtime: &tokio::runtime::Runtime, data: &std::path::Path, ids: &[DocumentId]) {
    let (relay, url, _) = support::start_binary(
        data,
        &[
            "--anonymous",
            "read-write",
            "--idle-unload",
            &IDLE_UNLOAD.as_secs().to_string(),
        ],
    );
    let pid = relay.id();
    let at_start = status_mib(pid, "VmRSS:");
    let (in_use, walked, idle, peak) = runtime.block_on(async {
        let mut clients = Vec::new();
        for chunk in ids.chunks(IN_USE_PER_CLIENT).take(CLIENTS) {
            let repo = Repo::in_memory();
            let dialer = common::online(&repo, &url).await;
            let handles = open_all(&repo, chunk).await;
            clients.push((repo, dialer, handles));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let in_use = status_mib(pid, "VmRSS:");

        // One more client walks through every stored document, 100 at a time.
        let walker = Repo::in_memory();
        let _dialer = common::online(&walker, &url).await;
        let started = Instant::now();
        for batch in ids.chunks(100) {
            let handles = open_all(&walker, batch).await;
            drop(handles);
        }
        eprintln!(
            "  walked {} documents in {:.1} s",
            ids.len(),
            started.elapsed().as_secs_f64()
        );
        let walked = (status_mib(pid, "VmRSS:"), loaded(&url).await);
        // The walker stays connected; the relay lets the idle documents go.
        tokio::time::sleep(IDLE_UNLOAD + Duration::from_secs(2)).await;
        let idle = (status_mib(pid, "VmRSS:"), loaded(&url).await);
        let peak = status_mib(pid, "VmHWM:");
        drop(clients);
        (in_use, walked, idle, peak)
    });
    support::terminate(relay);
    println!("relay memory, {STORED} documents stored:");
    println!("  idle after start                     {at_start:7.1} MiB RSS");
    println!(
        "  {} in use by {CLIENTS} clients             {in_use:7.1} MiB RSS  (target ≤ 512 MiB: {})",
        CLIENTS * IN_USE_PER_CLIENT,
        if in_use <= 512.0 { "met" } else { "MISSED" }
    );
    println!(
        "  a client walked all of them          {:7.1} MiB RSS, {} documents loaded",
        walked.0, walked.1
    );
    println!(
        "  {} s later (idle unload), connected  {:7.1} MiB RSS, {} documents loaded",
        IDLE_UNLOAD.as_secs() + 2,
        idle.0,
        idle.1
    );
    println!("  peak over the run                    {peak:7.1} MiB (VmHWM)");
}

/// `CONNECTIONS_PER_ROUND` connections made one after the other: handshake, `join`, `peer`.
async fn connect_round(url: &str) -> Duration {
    let join = wire::encode(&wire::Message::Join {
        sender: weft::PeerId::new("bench"),
        metadata: None,
        supported_versions: Some(vec!["1".to_owned()]),
    });
    let started = Instant::now();
    for _ in 0..CONNECTIONS_PER_ROUND {
        let reply = common::first_reply(url, join.clone()).await;
        assert!(
            matches!(reply, Some(wire::Message::Peer { .. })),
            "not let in: {reply:?}"
        );
    }
    started.elapsed()
}

fn connections(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let rounds: usize = std::env::var("WEFT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let (open_relay, open_url, _) =
        support::start_binary(&dir.join("open"), &["--anonymous", "read-write"]);
    let (token_relay, token_url, _) = support::start_binary(&dir.join("tokens"), &[]);
    let secret = secret::read(&dir.join("tokens").join(secret::SECRET_FILE)).unwrap();
    let token = support::token(&secret, Grant::default(), Grant::everything(), 3600);
    let token_url = format!("{token_url}/?token={token}");
    let (mut open, mut tokens) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        // Warm-up: one round each, not counted.
        connect_round(&open_url).await;
        connect_round(&token_url).await;
        for _ in 0..rounds {
            open.push(connect_round(&open_url).await);
            tokens.push(connect_round(&token_url).await);
        }
    });
    support::terminate(open_relay);
    support::terminate(token_relay);
    let per_connection = |samples: &[Duration]| {
        bench::millis(bench::median(samples.to_vec())) / CONNECTIONS_PER_ROUND as f64
    };
    let (open_ms, token_ms) = (per_connection(&open), per_connection(&tokens));
    println!(
        "connection + auth, {CONNECTIONS_PER_ROUND} sequential connections a round, {rounds} rounds, medians:"
    );
    println!("  anonymous (baseline)   {open_ms:6.3} ms a connection");
    println!(
        "  JWT (HS256, in the URL) {token_ms:6.3} ms a connection  ({:.2}× the baseline)",
        token_ms / open_ms
    );
}

fn main() {
    println!("machine: {}", bench::machine());
    let runtime = bench::runtime();
    let dir = bench::bench_dir();
    let data = dir.path().join("memory");
    let ids = runtime.block_on(seed(&data));
    memory(&runtime, &data, &ids);
    connections(&runtime, dir.path());
}
