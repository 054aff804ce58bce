//! What the FFI costs: a document change (and a read) through Python against the same one
//! through Rust, measured in the same run.
//!
//! `scripts/bench-ffi` (builds the Python package in release mode, then runs this);
//! `WEFT_BENCH_CHANGES` and `WEFT_BENCH_READS` set the counts. Three ways to one operation:
//! - Rust: `DocHandle::edit` / `DocHandle::get`, what a Rust app calls;
//! - Rust through `weft-ffi`'s types (`Document::put` driven by another executor): adds the
//!   hop onto the bindings' runtime and the type conversions, without a foreign language;
//! - Python through the installed package: adds uniffi's FFI and Python's asyncio.

// A benchmark: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/benches/common/mod.rs"]
mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use weft::{
    Repo, RepoConfig,
    access::{Edit, Path, Value},
};

fn count(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Per-change time of `changes` edits awaited one after another, as an app's handler would.
async fn rust_changes(repo: &Repo, changes: usize) -> Duration {
    let doc = repo.create().await.unwrap();
    let path = Path::parse("/n").unwrap();
    let start = Instant::now();
    for n in 0..changes {
        let edit = Edit::Put {
            path: path.clone(),
            value: Value::Int(n as i64),
        };
        doc.edit(vec![edit]).await.unwrap();
    }
    let per_change = start.elapsed() / changes as u32;
    assert_eq!(
        doc.get(&path).unwrap(),
        Some(Value::Int(changes as i64 - 1))
    );
    per_change
}

async fn rust_reads(repo: &Repo, reads: usize) -> Duration {
    let doc = repo.create().await.unwrap();
    let path = Path::parse("/n").unwrap();
    doc.edit(vec![Edit::Put {
        path: path.clone(),
        value: Value::Int(1),
    }])
    .await
    .unwrap();
    let start = Instant::now();
    for _ in 0..reads {
        std::hint::black_box(doc.get(&path).unwrap());
    }
    start.elapsed() / reads as u32
}

/// The same through weft-ffi's Rust types, polled by a single-threaded executor of our own
/// (as a foreign event loop polls them).
fn ffi_types_changes(changes: usize) -> Duration {
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    driver.block_on(async {
        let repo = weft_ffi::Repo::in_memory(None).unwrap();
        let doc = repo.create().await.unwrap();
        let start = Instant::now();
        for n in 0..changes {
            doc.put("/n".into(), weft_ffi::Value::Int { value: n as i64 })
                .await
                .unwrap();
        }
        start.elapsed() / changes as u32
    })
}

struct Python {
    version: String,
    interpreter: String,
    change_in_memory: Duration,
    change_sqlite: Duration,
    read: Duration,
}

fn python(changes: usize, reads: usize) -> Python {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let interpreter = std::env::var("WEFT_BENCH_PYTHON")
        .unwrap_or_else(|_| format!("{root}/bindings/python/.venv/bin/python"));
    let output = Command::new(&interpreter)
        .arg(format!("{root}/bindings/python/bench/ffi_cost.py"))
        .arg(changes.to_string())
        .arg(reads.to_string())
        .output()
        .unwrap_or_else(|error| {
            panic!("{interpreter}: {error} (run scripts/setup, then scripts/bench-ffi)")
        });
    assert!(
        output.status.success(),
        "the Python half failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let seconds = |key: &str| Duration::from_secs_f64(json[key].as_f64().unwrap());
    Python {
        version: json["version"].as_str().unwrap().to_owned(),
        interpreter: json["python"].as_str().unwrap().to_owned(),
        change_in_memory: seconds("change_in_memory_s"),
        change_sqlite: seconds("change_sqlite_s"),
        read: seconds("read_s"),
    }
}

fn micros(duration: Duration) -> String {
    format!("{:.2} µs", duration.as_secs_f64() * 1e6)
}

fn ratio(slow: Duration, fast: Duration) -> String {
    format!("{:.2}×", slow.as_secs_f64() / fast.as_secs_f64())
}

fn main() {
    let changes = count("WEFT_BENCH_CHANGES", 5_000);
    let reads = count("WEFT_BENCH_READS", 100_000);
    let runtime = common::runtime();
    let (memory, durable, read) = runtime.block_on(async {
        let memory = rust_changes(&Repo::in_memory(), changes).await;
        let dir = common::bench_dir();
        let repo = Repo::open_with(dir.path().join("bench.db"), RepoConfig::default())
            .await
            .unwrap();
        let durable = rust_changes(&repo, changes).await;
        repo.close().await.unwrap();
        (memory, durable, rust_reads(&Repo::in_memory(), reads).await)
    });
    let through_types = ffi_types_changes(changes);
    let python = python(changes, reads);
    assert!(
        python.version.ends_with("(release)"),
        "the Python package is a {} build: run scripts/bench-ffi, which installs a release build",
        python.version
    );

    println!(
        "FFI cost, {changes} changes awaited one by one, {reads} reads; Python {} with weft {}; machine: {}",
        python.interpreter,
        python.version,
        common::machine()
    );
    println!(
        "{:<38} {:>11} {:>14} {:>11} {:>14}",
        "operation", "Rust", "weft-ffi types", "Python", "Python / Rust"
    );
    println!(
        "{:<38} {:>11} {:>14} {:>11} {:>14}",
        "change, in-memory repo",
        micros(memory),
        micros(through_types),
        micros(python.change_in_memory),
        ratio(python.change_in_memory, memory)
    );
    println!(
        "{:<38} {:>11} {:>14} {:>11} {:>14}",
        "change, SQLite (synchronous=FULL)",
        micros(durable),
        "",
        micros(python.change_sqlite),
        ratio(python.change_sqlite, durable)
    );
    println!(
        "{:<38} {:>11} {:>14} {:>11} {:>14}",
        "read a value by path",
        micros(read),
        "",
        micros(python.read),
        ratio(python.read, read)
    );
}
