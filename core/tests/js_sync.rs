//! weft and the official automerge-repo 2.5.6 as peers, over the frames the official
//! WebSocket adapters really send (piped through `tests/js/bridge-peer.mjs`): weft devices
//! syncing through the official server, and the official client syncing with a weft relay.
//! Needs node and the packages in `tests/js` (the README's test command installs them and
//! makes their absence a failure).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::{sync::Arc, time::Duration};

use common::{bs58_heads, eventually, js_peer::JsPeer, sorted_heads};
use serde_json::{Value, json};
use weft::{
    AutomergeUrl, DocHandle, Repo, RepoConfig, Role,
    automerge::{ROOT, ReadDoc, ScalarValue, Value as AmValue, transaction::Transactable},
    sync::ServeOnRequest,
};

/// Repeats a command to the JS peer until its answer satisfies `done`.
async fn js_until(peer: &mut JsPeer, command: Value, what: &str, done: impl Fn(&Value) -> bool) {
    for _ in 0..600 {
        // An error (the document not there yet) is an answer that is not done.
        if done(&peer.try_command(&command).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn number(doc: &DocHandle, key: &str) -> Option<f64> {
    doc.with_doc(|d| match d.get(ROOT, key).ok().flatten() {
        Some((AmValue::Scalar(v), _)) => match v.as_ref() {
            ScalarValue::Int(n) => Some(*n as f64),
            ScalarValue::Uint(n) => Some(*n as f64),
            ScalarValue::F64(n) => Some(*n),
            _ => None,
        },
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_devices_sync_through_the_official_js_server() {
    let Some((mut server, mut channels)) = JsPeer::start("server", 2).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    let bob_channel = channels.pop().unwrap();
    alice
        .connect(channels.pop().unwrap(), Role::Dial)
        .await
        .unwrap();
    bob.connect(bob_channel, Role::Dial).await.unwrap();

    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();
    let url = doc.url().to_string();
    // Alice offered it; the JS server has it, with the same heads.
    let heads = bs58_heads(&doc);
    js_until(
        &mut server,
        json!({"cmd": "read", "url": url}),
        "the JS server has it",
        |a| a["doc"]["title"] == json!(1) && sorted_heads(a) == heads,
    )
    .await;
    // Bob finds it through the JS server, edits it, and alice sees the edit.
    let on_bob = bob.find(doc.id()).await.unwrap();
    eventually("bob has it", || async {
        number(&on_bob, "title") == Some(1.0)
    })
    .await;
    on_bob.change(|tx| tx.put(ROOT, "reply", 2)).await.unwrap();
    eventually("alice sees bob's reply", || async {
        number(&doc, "reply") == Some(2.0)
    })
    .await;
    // And the JS side edits too.
    server
        .command(json!({"cmd": "change", "url": url, "key": "js", "value": 3}))
        .await;
    eventually("both see the JS edit", || async {
        number(&doc, "js") == Some(3.0) && number(&on_bob, "js") == Some(3.0)
    })
    .await;
    eventually("everyone converges", || async {
        doc.heads() == on_bob.heads()
    })
    .await;
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_js_client_syncs_with_a_weft_relay() {
    let Some((mut client, mut channels)) = JsPeer::start("client", 1).await else {
        return;
    };
    let mut config = RepoConfig::default();
    config.sync = config.sync.with_share_policy(Arc::new(ServeOnRequest));
    let dir = tempfile::tempdir().unwrap();
    let relay = Repo::open_with(dir.path().join("relay.db"), config)
        .await
        .unwrap();
    relay
        .connect(channels.pop().unwrap(), Role::Accept)
        .await
        .unwrap();

    // The JS client creates a document; it offers it to weft, which stores it.
    let created = client
        .command(json!({"cmd": "create", "value": {"title": "from js", "n": 1}}))
        .await;
    let url: AutomergeUrl = created["url"].as_str().unwrap().parse().unwrap();
    let id = url.document_id();
    eventually("the weft relay stores it", || async {
        relay.list().await.unwrap().iter().any(|meta| meta.id == id)
    })
    .await;
    let on_relay = relay.find(id).await.unwrap();
    eventually("the relay has its content", || async {
        number(&on_relay, "n") == Some(1.0)
    })
    .await;

    // An edit on the weft side reaches the JS client.
    on_relay
        .change(|tx| tx.put(ROOT, "from-weft", 5))
        .await
        .unwrap();
    let read = json!({"cmd": "read", "url": url.to_string()});
    js_until(&mut client, read, "the JS client sees weft's edit", |a| {
        a["doc"]["from-weft"] == json!(5)
    })
    .await;

    // A document made on the weft side is served to the JS client when it asks by id.
    let made_here = relay.create().await.unwrap();
    made_here
        .change(|tx| tx.put(ROOT, "made", 7))
        .await
        .unwrap();
    let answer = client
        .command(json!({"cmd": "read", "url": made_here.url().to_string()}))
        .await;
    assert_eq!(answer["doc"]["made"], json!(7), "{answer}");
    assert_eq!(sorted_heads(&answer), bs58_heads(&made_here));
    relay.close().await.unwrap();
}
