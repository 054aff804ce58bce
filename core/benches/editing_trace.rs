//! The automerge-perf editing trace (259,778 edits of a LaTeX paper) replayed through
//! `DocHandle::change`, one commit per 100 edits, against raw `automerge::AutoCommit` doing
//! the same commits in the same run; then the bytes weft stores and the time to load the
//! document back from SQLite against `Automerge::load` of the same bytes.
//!
//! `cargo bench -p weft --bench editing_trace`. Targets (issue): replay ≤ 1.25× raw; stored
//! bytes ≤ 1.1× `save()`; load ≤ 1.5× `Automerge::load`.

// A benchmark: a failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

mod common;

use common::trace::{self, EDITS_PER_COMMIT, Edit, apply, load_trace};

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use weft::{
    Repo, RepoConfig,
    automerge::{AutoCommit, Automerge, ObjId, ObjType, ROOT, ReadDoc, transaction::Transactable},
    store::Synchronous,
};

const LOAD_SAMPLES: usize = 5;
/// Changes in flight in the pipelined replay (an editor that keeps applying keystrokes
/// while earlier changes are being written).
const PIPELINE: usize = 32;

fn replay_raw(edits: &[Edit]) -> (Duration, AutoCommit, ObjId) {
    let start = Instant::now();
    let (doc, text) = trace::replay_raw(edits);
    (start.elapsed(), doc, text)
}

struct WeftRun {
    replay: Duration,
    stored_after_replay: u64,
    stored_at_rest: u64,
    text: String,
    load: Duration,
    saved: Vec<u8>,
}

fn replay_weft(
    runtime: &tokio::runtime::Runtime,
    edits: &Arc<Vec<Edit>>,
    sync: Synchronous,
    in_flight: usize,
) -> WeftRun {
    let dir = common::bench_dir();
    let path = dir.path().join("trace.db");
    let mut config = RepoConfig::default();
    config.sqlite.synchronous = sync;
    runtime.block_on(async {
        let repo = Repo::open_with(&path, config.clone()).await.unwrap();
        let start = Instant::now();
        let doc = repo.create().await.unwrap();
        let text = doc
            .change(|tx| tx.put_object(ROOT, "text", ObjType::Text))
            .await
            .unwrap()
            .value;
        // `change` queues the change when called, so changes apply in call order; up to
        // `in_flight` of them are awaited later (1: each is awaited before the next).
        let mut pending = std::collections::VecDeque::new();
        for first in (0..edits.len()).step_by(EDITS_PER_COMMIT) {
            let (edits, text) = (edits.clone(), text.clone());
            pending.push_back(doc.change(move |tx| {
                let last = (first + EDITS_PER_COMMIT).min(edits.len());
                apply(tx, &text, &edits[first..last]);
                Ok(())
            }));
            if pending.len() >= in_flight {
                pending.pop_front().unwrap().await.unwrap();
            }
        }
        for change in pending {
            change.await.unwrap();
        }
        let replay = start.elapsed();
        let stored_after_replay = repo.list().await.unwrap()[0].stored_bytes();
        let id = doc.id();
        drop(doc);
        repo.close().await.unwrap(); // waits for background compaction
        let repo = Repo::open_with(&path, config.clone()).await.unwrap();
        let stored_at_rest = repo.list().await.unwrap()[0].stored_bytes();
        let mut loads = Vec::new();
        let mut result = None;
        for _ in 0..LOAD_SAMPLES {
            let start = Instant::now();
            let doc = repo.find(id).await.unwrap();
            loads.push(start.elapsed());
            let t = text.clone();
            result = Some((
                doc.with_doc(|d| d.text(&t).unwrap()),
                doc.export().await.unwrap(),
            ));
            // Dropping the last handle unloads the document, so the next find loads again.
        }
        let (text, saved) = result.unwrap();
        repo.close().await.unwrap();
        WeftRun {
            replay,
            stored_after_replay,
            stored_at_rest,
            text,
            load: common::median(loads),
            saved,
        }
    })
}

fn raw_load(bytes: &[u8]) -> Duration {
    let samples = (0..LOAD_SAMPLES)
        .map(|_| {
            let start = Instant::now();
            let doc = Automerge::load(bytes).unwrap();
            let elapsed = start.elapsed();
            assert!(!doc.get_heads().is_empty());
            elapsed
        })
        .collect();
    common::median(samples)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list of tests; there are none.
    }
    let edits = Arc::new(load_trace());
    let inserts = edits.iter().filter(|e| !e.insert.is_empty()).count();
    println!(
        "editing trace: {} edits ({inserts} inserts, {} deletes), one commit per {EDITS_PER_COMMIT}; machine: {}",
        edits.len(),
        edits.len() - inserts,
        common::machine()
    );
    let runtime = common::runtime();

    let (raw_time, mut raw_doc, raw_text) = replay_raw(&edits);
    let expected = raw_doc.text(&raw_text).unwrap();
    let raw_save = raw_doc.save();
    println!(
        "  raw AutoCommit replay:            {:>8.0} ms (baseline); text {} chars; save() {} bytes",
        common::millis(raw_time),
        expected.chars().count(),
        raw_save.len()
    );

    for (sync, in_flight) in [
        (Synchronous::Full, 1),
        (Synchronous::Full, PIPELINE),
        (Synchronous::Normal, 1),
    ] {
        let run = replay_weft(&runtime, &edits, sync, in_flight);
        assert_eq!(run.text, expected, "weft's replay must give the same text");
        let save_len = run.saved.len() as f64;
        let load_raw = raw_load(&run.saved);
        let mode = if in_flight == 1 {
            "each change awaited before the next".to_owned()
        } else {
            format!("up to {in_flight} changes in flight")
        };
        println!("  weft, synchronous={sync:?}, {mode}:");
        println!(
            "    replay through DocHandle::change: {:>8.0} ms = {:.2}x raw",
            common::millis(run.replay),
            run.replay.as_secs_f64() / raw_time.as_secs_f64()
        );
        println!(
            "    stored bytes: {} right after the replay = {:.2}x save(); {} at rest (after \
             compaction) = {:.2}x save() ({} bytes)",
            run.stored_after_replay,
            run.stored_after_replay as f64 / save_len,
            run.stored_at_rest,
            run.stored_at_rest as f64 / save_len,
            run.saved.len()
        );
        println!(
            "    load from SQLite (Repo::find):    {:>8.1} ms = {:.2}x Automerge::load of the same bytes ({:.1} ms)",
            common::millis(run.load),
            run.load.as_secs_f64() / load_raw.as_secs_f64(),
            common::millis(load_raw)
        );
    }
}
