//! The admin subcommands (`weft-relay docs …`) on a relay's real database: list, export as
//! automerge bytes and JSON, import, compact, verify, and a clear error for an unknown
//! document.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::{path::Path, process::Command};

use weft::{
    Repo, RepoConfig,
    automerge::{Automerge, ROOT, ReadDoc, transaction::Transactable},
};

/// `weft-relay docs <args> --data <data>`: exit code, stdout, stderr.
fn docs(data: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .arg("docs")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_subcommands_list_export_import_compact_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A relay's database with two documents, one changed many times (many chunks).
    // Never compacted by the repo itself, so that `compact` has something to do.
    let mut config = RepoConfig::default();
    config.compaction.ratio = f64::INFINITY;
    config.compaction.idle_ratio = f64::INFINITY;
    let repo = Repo::open_with(data.join("weft.db"), config).await.unwrap();
    let note = repo.create().await.unwrap();
    note.change(|tx| tx.put(ROOT, "title", "groceries"))
        .await
        .unwrap();
    let busy = repo.create().await.unwrap();
    for n in 0..20 {
        busy.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
    }
    let (note_id, busy_id) = (note.id().to_string(), busy.id().to_string());
    drop((note, busy));
    repo.close().await.unwrap();

    let (code, listed, _) = docs(&data, &["list"]);
    assert_eq!(code, 0);
    assert!(
        listed.contains(&note_id) && listed.contains(&busy_id),
        "{listed}"
    );
    let (_, json_lines, _) = docs(&data, &["list", "--json"]);
    let entries: Vec<serde_json::Value> = json_lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["bytes"].as_u64().unwrap() > 0));

    // JSON export shows the current state; automerge export loads in automerge.
    let (code, json, _) = docs(&data, &["export", &note_id, "--format", "json"]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["title"], "groceries");
    let file = dir.path().join("busy.automerge");
    let (code, _, _) = docs(
        &data,
        &["export", &busy_id, "--out", file.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    let loaded = Automerge::load(&std::fs::read(&file).unwrap()).unwrap();
    assert!(loaded.get(ROOT, "n").unwrap().is_some());

    // Import it back as a new document.
    let (code, imported, _) = docs(&data, &["import", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{imported}");
    let new_id = imported.trim().to_owned();
    let (_, listed, _) = docs(&data, &["list"]);
    assert!(
        listed.contains(&new_id) && listed.lines().count() == 3,
        "{listed}"
    );

    // Compact everything into single snapshots (the busy one is in many chunks), then
    // verify.
    let chunks = |lines: &str| -> Vec<u64> {
        lines
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["chunks"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let (_, before, _) = docs(&data, &["list", "--json"]);
    assert!(chunks(&before).iter().any(|&c| c > 1), "{before}");
    let (code, _, said) = docs(&data, &["compact", "--all"]);
    assert_eq!(code, 0, "{said}");
    let (_, after, _) = docs(&data, &["list", "--json"]);
    assert!(chunks(&after).iter().all(|&c| c == 1), "{after}");
    let (code, verified, _) = docs(&data, &["verify"]);
    assert_eq!(code, 0);
    assert!(
        verified.contains("3 documents load; 0 damaged"),
        "{verified}"
    );

    // Unknown documents and missing databases are clear errors.
    let unknown = weft::DocumentId::random().to_string();
    let (code, _, said) = docs(&data, &["export", &unknown]);
    assert_eq!(code, 1);
    assert!(said.contains(&unknown), "{said}");
    let (code, _, said) = docs(&dir.path().join("nowhere"), &["list"]);
    assert_eq!(code, 1);
    assert!(said.contains("no relay database"), "{said}");

    // Importing seeds a new relay: the database is created, and the document is listed.
    let seeded = dir.path().join("new-relay");
    let exported = dir.path().join("exported.automerge");
    let (code, _, said) = docs(
        &data,
        &[
            "export",
            &first_listed(&data),
            "--out",
            exported.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{said}");
    let (code, id, said) = docs(&seeded, &["import", exported.to_str().unwrap()]);
    assert_eq!(code, 0, "{said}");
    let (_, listed, _) = docs(&seeded, &["list"]);
    assert!(listed.starts_with(id.trim()), "{listed}");
}

/// The id of a document `weft-relay docs list` shows for `data`.
fn first_listed(data: &Path) -> String {
    let (_, listed, _) = docs(data, &["list"]);
    listed
        .split_whitespace()
        .next()
        .expect("a document")
        .to_owned()
}
