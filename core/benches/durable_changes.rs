//! Durable changes per second: weft's group commit against a naive baseline measured in the
//! same run (rusqlite, one transaction per change, same WAL and `synchronous=FULL`).
//!
//! `cargo bench -p weft --bench durable_changes` (`WEFT_BENCH_CHANGES` sets the count,
//! `WEFT_BENCH_DIR` the disk, `WEFT_BENCH_SYNC=normal` runs weft with `synchronous=NORMAL`
//! to separate fsync cost from the rest). Targets (issue): at 50 writers ≥ 10× the naive rate and at most
//! one transaction (fsync) per 10 changes.

// A benchmark: a failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

mod common;

use std::{sync::Arc, time::Instant};

use rusqlite::{Connection, params};
use weft::{
    Repo, RepoConfig,
    automerge::{AutoCommit, ROOT, transaction::Transactable},
    store::{SqliteStorage, Storage, StoreStats},
};

/// One small change: a counter-like field set on a map, as an app's edit would.
fn naive_rate(changes: usize) -> (f64, std::time::Duration) {
    let dir = common::bench_dir();
    let conn = Connection::open(dir.path().join("naive.db")).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE chunks (doc BLOB, hash BLOB, data BLOB, UNIQUE (doc, hash))")
        .unwrap();
    let mut doc = AutoCommit::new();
    let cpu_before = common::cpu_time();
    let start = Instant::now();
    for n in 0..changes {
        doc.put(ROOT, "n", n as i64).unwrap();
        doc.commit();
        let bytes = doc.save_incremental();
        let hash = weft::store::ChunkHash::of(&bytes);
        conn.execute_batch("BEGIN").unwrap();
        conn.execute(
            "INSERT INTO chunks (doc, hash, data) VALUES (?1, ?2, ?3)",
            params![&[0u8; 16][..], hash.0, bytes],
        )
        .unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }
    let rate = changes as f64 / start.elapsed().as_secs_f64();
    (rate, (common::cpu_time() - cpu_before) / changes as u32)
}

struct Measured {
    rate: f64,
    cpu_per_change: std::time::Duration,
    stats: StoreStats,
}

fn weft_rate(runtime: &tokio::runtime::Runtime, writers: usize, changes: usize) -> Measured {
    let dir = common::bench_dir();
    let mut config = RepoConfig::default();
    if std::env::var("WEFT_BENCH_SYNC").is_ok_and(|v| v == "normal") {
        config.sqlite.synchronous = weft::store::Synchronous::Normal;
    }
    let storage = Arc::new(SqliteStorage::open(dir.path().join("weft.db"), config.sqlite).unwrap());
    let repo = Repo::with_storage(storage.clone() as Arc<dyn Storage>, config);
    runtime.block_on(async {
        let mut docs = Vec::new();
        for _ in 0..writers {
            docs.push(repo.create().await.unwrap());
        }
        let before = storage.stats();
        let cpu_before = common::cpu_time();
        let per_writer = changes / writers;
        let start = Instant::now();
        let tasks: Vec<_> = docs
            .into_iter()
            .map(|doc| {
                tokio::spawn(async move {
                    for n in 0..per_writer {
                        doc.change(move |tx| tx.put(ROOT, "n", n as i64))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed();
        let cpu = common::cpu_time() - cpu_before;
        let after = storage.stats();
        repo.close().await.unwrap();
        Measured {
            rate: (per_writer * writers) as f64 / elapsed.as_secs_f64(),
            cpu_per_change: cpu / (per_writer * writers) as u32,
            stats: StoreStats {
                transactions: after.transactions - before.transactions,
                submissions: after.submissions - before.submissions,
                commit_time: after.commit_time - before.commit_time,
            },
        }
    })
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list of tests; there are none.
    }
    let changes: usize = std::env::var("WEFT_BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let runtime = common::runtime();
    println!(
        "durable changes, synchronous=FULL, WAL; machine: {}",
        common::machine()
    );
    let (naive, naive_cpu) = naive_rate(changes / 2);
    println!(
        "  naive rusqlite, 1 transaction per change: {naive:>9.0} changes/s (baseline), {:.0} µs CPU per change",
        naive_cpu.as_secs_f64() * 1e6
    );
    for writers in [1, 50] {
        let measured = weft_rate(&runtime, writers, changes);
        println!(
            "  weft, {writers:>2} concurrent writers:            {:>9.0} changes/s = {:>5.2}x naive; \
             {} transactions for {} changes ({:.1} changes per fsync), writer busy {:.0}%, {:.0} µs CPU per change",
            measured.rate,
            measured.rate / naive,
            measured.stats.transactions,
            measured.stats.submissions,
            measured.stats.submissions as f64 / measured.stats.transactions.max(1) as f64,
            100.0 * measured.stats.commit_time.as_secs_f64() * measured.rate
                / measured.stats.submissions.max(1) as f64,
            measured.cpu_per_change.as_secs_f64() * 1e6,
        );
    }
}
