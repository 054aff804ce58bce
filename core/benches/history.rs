//! Reading a long history: the automerge-perf editing trace made into one change per edit
//! (259,778 changes, each stamped with a time), stored in SQLite through weft; then, in the
//! same run, weft's history reads against what automerge offers for the same question:
//! - the last 100 changes: `DocHandle::history(None, 100)` against automerge's
//!   `get_changes` (and its cheaper `get_changes_meta`) keeping the last 100;
//! - the document at the middle of its history: `DocHandle::view_at(heads)` reading the
//!   text there (`text_at`), and `DocHandle::view_at_time`, against `fork_at(heads)` plus
//!   reading the fork's text.
//!
//! `cargo bench -p weft --bench history` (a few minutes: building the document is most).

// A benchmark: a failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{machine, median, millis, runtime, trace::load_trace};
use weft::{
    Repo,
    automerge::{
        AutoCommit, Automerge, ChangeHash, ObjType, ROOT, ReadDoc,
        transaction::{CommitOptions, Transactable},
    },
};

const SAMPLES: usize = 7;
/// The first change's time; each edit is a second later.
const START: i64 = 1_700_000_000;

fn sample<T>(mut run: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(SAMPLES);
    let mut last = None;
    for _ in 0..SAMPLES {
        let start = Instant::now();
        last = Some(run());
        times.push(start.elapsed());
    }
    (median(times), last.unwrap())
}

fn main() {
    println!("history — {}", machine());
    let edits = load_trace();
    let build = Instant::now();
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
    doc.commit_with(CommitOptions::default().with_time(START));
    for (i, edit) in edits.iter().enumerate() {
        doc.splice_text(&text, edit.position, edit.delete, &edit.insert)
            .unwrap();
        doc.commit_with(CommitOptions::default().with_time(START + 1 + i as i64));
    }
    let bytes = doc.save();
    let doc: Automerge = Automerge::load(&bytes).unwrap();
    let metas = doc.get_changes_meta(&[]);
    println!(
        "  document: {} changes, {} KiB saved, built in {:.1} s",
        metas.len(),
        bytes.len() / 1024,
        build.elapsed().as_secs_f64()
    );
    let middle = metas.len() / 2;
    let middle_heads: Vec<ChangeHash> = vec![metas[middle].hash];
    let middle_time = metas[middle].timestamp;
    drop(metas);

    let runtime = runtime();
    let dir = common::bench_dir();
    let (repo, handle) = runtime.block_on(async {
        let repo = Repo::open(dir.path().join("history.db")).await.unwrap();
        let handle = repo.import(bytes.clone()).await.unwrap();
        (repo, handle)
    });

    // The last 100 changes.
    let (automerge_full, last) = sample(|| {
        let changes = doc.get_changes(&[]);
        changes[changes.len() - 100..]
            .iter()
            .map(|c| c.hash())
            .collect::<Vec<_>>()
    });
    let (automerge_meta, _) = sample(|| {
        let metas = doc.get_changes_meta(&[]);
        metas[metas.len() - 100..]
            .iter()
            .map(|m| m.hash)
            .collect::<Vec<_>>()
    });
    let (weft_page, page) = sample(|| runtime.block_on(handle.history(None, 100)).unwrap().changes);
    let mut listed: Vec<ChangeHash> = page.iter().map(|c| c.hash).collect();
    listed.reverse();
    assert_eq!(listed, last, "the same 100 changes");
    println!("  last 100 changes:");
    println!(
        "    automerge get_changes + last 100     {:>9.2} ms",
        millis(automerge_full)
    );
    println!(
        "    automerge get_changes_meta + last 100 {:>8.2} ms",
        millis(automerge_meta)
    );
    println!(
        "    weft DocHandle::history(None, 100)   {:>9.3} ms  ({:.4}× get_changes, {:.4}× get_changes_meta)",
        millis(weft_page),
        weft_page.as_secs_f64() / automerge_full.as_secs_f64(),
        weft_page.as_secs_f64() / automerge_meta.as_secs_f64()
    );

    // The document at the middle of its history.
    let (fork, forked) = sample(|| {
        let fork = doc.fork_at(&middle_heads).unwrap();
        let (_, text) = fork.get(ROOT, "text").unwrap().unwrap();
        fork.text(&text).unwrap()
    });
    let (view, viewed) = sample(|| {
        runtime.block_on(async {
            let view = handle.view_at(&middle_heads).unwrap();
            let text = handle.with_doc(|d| d.get(ROOT, "text").unwrap().unwrap().1);
            view.text(&text).await.unwrap()
        })
    });
    let (by_time, timed) = sample(|| {
        runtime.block_on(async {
            let view = handle.view_at_time(middle_time).await.unwrap();
            let text = handle.with_doc(|d| d.get(ROOT, "text").unwrap().unwrap().1);
            view.text(&text).await.unwrap()
        })
    });
    assert_eq!(viewed, forked, "the same text at the middle");
    assert_eq!(
        timed, forked,
        "the time of the middle change gives the same state"
    );
    println!(
        "  the document at the middle of its history ({} chars):",
        forked.chars().count()
    );
    println!(
        "    automerge fork_at + text             {:>9.2} ms",
        millis(fork)
    );
    println!(
        "    weft view_at(heads) + text           {:>9.2} ms  ({:.4}× fork_at)",
        millis(view),
        view.as_secs_f64() / fork.as_secs_f64()
    );
    println!(
        "    weft view_at_time(t) + text          {:>9.2} ms  ({:.4}× fork_at)",
        millis(by_time),
        by_time.as_secs_f64() / fork.as_secs_f64()
    );
    drop(handle);
    runtime.block_on(repo.close()).unwrap();
}
