//! Durability under SIGKILL: a real child process writes through weft and prints each
//! acknowledged change; the test kills it at random moments, reopens the database and checks
//! that every acknowledged change is there and SQLite's integrity check passes.
//!
//! A kill keeps the OS page cache, so this covers process crashes (the app killed, the
//! phone's OS reclaiming it), not power loss; that is what `synchronous=FULL` is for.
//!
//! `WEFT_CRASH_ROUNDS` sets the number of kills (default 20); `WEFT_CRASH_SEED` replays a
//! run (the seed is printed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use weft::{DocumentId, Repo, automerge::ChangeHash};

/// splitmix64: a seeded generator for kill times (deterministic per seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// What one round of the child acknowledged before it was killed.
#[derive(Default)]
struct Acknowledged {
    documents: BTreeSet<DocumentId>,
    changes: BTreeMap<DocumentId, Vec<ChangeHash>>,
}

fn run_child_and_kill(path: &std::path::Path, kill_after: Duration) -> Acknowledged {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .arg(path)
        .arg("4")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    let mut acknowledged = Acknowledged::default();
    let mut record = |line: String| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["DOC", id] => {
                acknowledged
                    .documents
                    .insert(id.parse().expect("document id"));
            }
            ["ACK", id, _writer, _n, hash] => {
                let id: DocumentId = id.parse().expect("document id");
                let hash: ChangeHash = hash.parse().expect("change hash");
                acknowledged.changes.entry(id).or_default().push(hash);
            }
            _ => panic!("unexpected output from crash_writer: {line}"),
        }
    };
    // Wait until it is writing, then let it run for the chosen time and kill it.
    let first = received
        .recv_timeout(Duration::from_secs(30))
        .expect("crash_writer printed nothing within 30 s");
    record(first);
    let deadline = Instant::now() + kill_after;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match received.recv_timeout(left) {
            Ok(line) => record(line),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("crash_writer exited early"),
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap child");
    // Lines already in the pipe were acknowledged before the kill: count them too.
    reader.join().expect("reader thread");
    for line in received.try_iter() {
        record(line);
    }
    acknowledged
}

/// Reopens the database and checks that `documents` hold every acknowledged change.
async fn check_acknowledged(
    path: &std::path::Path,
    all: &Acknowledged,
    documents: &[DocumentId],
    round: u64,
    seed: u64,
) {
    let repo = Repo::open(path).await.unwrap();
    for id in documents {
        let doc = repo
            .find(*id)
            .await
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): document {id}: {e}"));
        let missing: Vec<&ChangeHash> = all
            .changes
            .get(id)
            .into_iter()
            .flatten()
            .filter(|hash| doc.with_doc(|d| d.get_change_meta_by_hash(hash).is_none()))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round} (seed {seed}): document {id} lost acknowledged changes {missing:?}"
        );
    }
    repo.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_survives_sigkill() {
    let rounds = env_number("WEFT_CRASH_ROUNDS", 20);
    let seed = env_number("WEFT_CRASH_SEED", {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |elapsed| elapsed.as_nanos() as u64)
    });
    eprintln!("crash test: {rounds} rounds, WEFT_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");

    let mut all = Acknowledged::default();
    let mut total_changes = 0;
    for round in 0..rounds {
        let kill_after = Duration::from_millis(rng.between(0, 400));
        let acknowledged = run_child_and_kill(&path, kill_after);
        total_changes += acknowledged.changes.values().map(Vec::len).sum::<usize>();
        let round_documents = acknowledged.documents.clone();
        all.documents.extend(acknowledged.documents);
        for (id, hashes) in acknowledged.changes {
            all.changes.entry(id).or_default().extend(hashes);
        }

        let conn = rusqlite::Connection::open(&path).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "round {round} (seed {seed})");
        drop(conn);

        // This round's documents every round; every document from every round at the end
        // (checking all of them each round would make long runs quadratic).
        let last = round + 1 == rounds;
        let to_check: Vec<DocumentId> = if last {
            all.documents.iter().copied().collect()
        } else {
            round_documents.iter().copied().collect()
        };
        check_acknowledged(&path, &all, &to_check, round, seed).await;
    }
    eprintln!(
        "crash test: {rounds} kills, {total_changes} acknowledged changes in {} documents, none lost",
        all.documents.len()
    );
    assert!(total_changes > 0, "the writer never acknowledged a change");
}
