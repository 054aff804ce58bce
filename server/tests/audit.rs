//! The audit trail through a real relay process: devices sync through `weft-relay` with
//! tokens of their own; `weft-relay docs history` then shows, from the relay's database,
//! the author each change claims and the token subject whose connection delivered it, so a
//! device claiming another user's name is seen.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "../../core/tests/common/mod.rs"]
mod common;
mod support;

use std::{path::Path, process::Command};

use common::{eventually, online};
use support::{claims, start_binary, terminate};
use weft::{
    ChangeOptions, Repo, RepoConfig,
    automerge::{ROOT, transaction::Transactable},
};
use weft_relay::{
    auth::{Grant, mint},
    secret,
};

fn history(data: &Path, id: &str, json: bool) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft-relay"));
    command.args(["docs", "history", id, "--data"]).arg(data);
    if json {
        command.arg("--json");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn device(dir: &Path, name: &str, author: &str) -> Repo {
    let mut config = RepoConfig::default();
    config.author = Some(author.to_owned());
    Repo::open_with(dir.join(format!("{name}.sqlite")), config)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_shows_who_delivered_each_change_and_a_forged_author() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let (key, _, _) = secret::read_or_create(&data).unwrap();
    let (relay, url, _) = start_binary(&data, &[]);
    let token_for = |user: &str| {
        let mut claims = claims(Grant::default(), Grant::everything(), 3600);
        claims.sub = user.to_owned();
        mint(&key, &claims).unwrap()
    };
    let ana = device(dir.path(), "ana", "ana").await;
    // Bo's device claims to be ana, with bo's own token.
    let bo = device(dir.path(), "bo", "ana").await;
    let _ana_link = online(&ana, &format!("{url}/?token={}", token_for("ana"))).await;
    let _bo_link = online(&bo, &format!("{url}/?token={}", token_for("bo"))).await;

    let doc = ana
        .create_with(|tx| tx.put(ROOT, "amount", 100).map(|_| ()))
        .await
        .unwrap();
    doc.change_with(ChangeOptions::message("approved"), |tx| {
        tx.put(ROOT, "approved", true)
    })
    .await
    .unwrap();
    let on_bo = common::find_eventually(&bo, doc.id()).await;
    on_bo
        .change(|tx| tx.put(ROOT, "amount", 1_000_000))
        .await
        .unwrap();
    eventually("ana gets the forged change", || async {
        common::number(&doc, "amount") == Some(1_000_000)
    })
    .await;
    let id = doc.id().to_string();
    drop((doc, on_bo));
    bo.close().await.unwrap();
    ana.close().await.unwrap();
    terminate(relay);

    // From the relay's database, after it stopped: newest first.
    let lines: Vec<serde_json::Value> = history(&data, &id, true)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let seen: Vec<(&str, &str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["author"].as_str().unwrap(),
                l["delivered_by"].as_str().unwrap(),
                l["disputed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ana", "bo", true),
            ("ana", "ana", false),
            ("ana", "ana", false)
        ]
    );
    assert_eq!(lines[1]["message"], "approved");
    assert!(
        lines
            .iter()
            .all(|l| l["received_at_ms"].as_i64().unwrap() > 0)
    );
    let text = history(&data, &id, false);
    let first = text.lines().next().unwrap();
    assert!(
        first.contains("author=ana  delivered-by=bo")
            && first.contains("the author it claims did not deliver it"),
        "{text}"
    );
    assert!(text.contains("\"approved\""), "{text}");
}
