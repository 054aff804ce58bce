//! weft-relay and the official automerge-repo 2.5.6 over real WebSockets on 127.0.0.1: JS
//! clients through weft-relay, and weft devices through the official JS server
//! (`tests/js/bridge-peer.mjs` in its `ws-client` / `ws-server` modes). Needs node and the
//! packages in `tests/js` (the README's test command installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{
    bs58_heads, eventually, find_eventually, js_peer::JsPeer, number, online, sorted_heads,
};
use serde_json::json;
use tokio::{net::TcpListener, sync::oneshot};
use weft::{
    AutomergeUrl, DocEvent, DocumentId, Repo,
    automerge::{ROOT, transaction::Transactable},
};
use weft_relay::{
    RelayConfig,
    auth::{Claims, Grant, mint},
    run, secret,
};

/// Keeps reading a document in JS until `done` holds for the answer.
async fn js_read_until(
    js: &mut JsPeer,
    url: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let read = json!({"cmd": "read", "url": url});
    for _ in 0..300 {
        let answer = js.try_command(&read).await;
        if done(&answer) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Starts a relay in `dir` that requires tokens (no anonymous access), and returns its URL
/// with a token that may write everything: the official JS client can present a token only
/// in the URL.
async fn relay_with_token(dir: &std::path::Path) -> (String, oneshot::Sender<()>) {
    let data = dir.join("relay");
    let (secret, _, _) = secret::read_or_create(&data).unwrap();
    let claims = Claims {
        sub: "interop".to_owned(),
        exp: jsonwebtoken::get_current_timestamp() + 3600,
        read: Grant::default(),
        write: Grant::everything(),
        relay: false,
    };
    let token = mint(&secret, &claims).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/?token={token}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(run(listener, RelayConfig::new(data), async {
        let _ = stopped.await;
    }));
    (url, stop)
}

/// An official JS client and a weft device, both connected to a relay that requires tokens.
struct JsClientAndDevice {
    js: JsPeer,
    device: Repo,
    _dialer: weft::net::Dialer,
    _stop: oneshot::Sender<()>,
}

impl JsClientAndDevice {
    /// `None` where node is missing (outside the README's test command).
    async fn start(dir: &std::path::Path) -> Option<Self> {
        let (url, stop) = relay_with_token(dir).await;
        let (js, _) = JsPeer::spawn(&["ws-client", &url], 0).await?;
        let device = Repo::in_memory();
        let dialer = online(&device, &url).await;
        Some(Self {
            js,
            device,
            _dialer: dialer,
            _stop: stop,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_js_clients_sync_through_weft_relay() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut world) = JsClientAndDevice::start(dir.path()).await else {
        return;
    };
    let (js, device) = (&mut world.js, &world.device);

    // Made in JS, read by weft.
    let created = js
        .command(json!({"cmd": "create", "value": {"n": 1}}))
        .await;
    let js_url = created["url"].as_str().unwrap().to_owned();
    let id = js_url.parse::<AutomergeUrl>().unwrap().document_id();
    let shared = find_eventually(device, id).await;
    eventually("weft reads the JS document", || async {
        number(&shared, "n") == Some(1)
    })
    .await;

    // Made in weft, read by JS.
    let made = device.create().await.unwrap();
    made.change(|tx| tx.put(ROOT, "made", 7)).await.unwrap();
    let answer = js_read_until(
        js,
        &made.url().to_string(),
        "JS reads weft's document",
        |a| a["doc"]["made"] == json!(7),
    )
    .await;
    assert_eq!(sorted_heads(&answer), bs58_heads(&made));

    // Concurrent edits from both sides converge.
    js.command(json!({"cmd": "change", "url": js_url, "key": "js-side", "value": 2}))
        .await;
    shared
        .change(|tx| tx.put(ROOT, "rust-side", 3))
        .await
        .unwrap();
    eventually("weft sees the JS edit", || async {
        number(&shared, "js-side") == Some(2)
    })
    .await;
    let answer = js_read_until(js, &js_url, "JS converges", |a| {
        a["doc"]["rust-side"] == json!(3) && sorted_heads(a) == bs58_heads(&shared)
    })
    .await;
    assert_eq!(answer["doc"]["js-side"], json!(2));

    // Ephemeral messages both ways.
    let mut events = shared.subscribe();
    js.command(json!({"cmd": "broadcast", "url": js_url, "message": {"cursor": 3}}))
        .await;
    let from_js = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            DocEvent::Ephemeral { from, data } => break (from, data),
            _ => continue,
        }
    };
    assert_eq!(from_js.0.as_str(), "js-client");
    assert!(
        from_js.1.windows(6).any(|w| w == b"cursor"),
        "{:02x?}",
        from_js.1
    );
    // CBOR for {"cursor": 7}, as JS apps send it.
    shared.broadcast([&[0xa1, 0x66][..], b"cursor", &[0x07]].concat());
    let heard = tokio::time::timeout(Duration::from_secs(20), js.next_unasked())
        .await
        .unwrap();
    assert_eq!(heard["message"], json!({"cursor": 7}), "{heard}");
    assert_eq!(heard["senderId"], json!(device.peer_id().as_str()));

    // A JS client asking for a document nobody has is told so within a second.
    let missing = js.command(json!({"cmd": "missing"})).await;
    assert_eq!(missing["event"], "unavailable", "{missing}");
    assert!(missing["ms"].as_u64().unwrap() < 1000, "{missing}");
}

/// A JS client that asks the relay for a document no device has uploaded yet hears it is
/// unavailable, and automerge-repo then asks again only when it reconnects: the relay must
/// send the document when it arrives, as the official JS server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_client_that_asked_too_early_gets_the_document_when_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut world) = JsClientAndDevice::start(dir.path()).await else {
        return;
    };
    let (js, device) = (&mut world.js, &world.device);

    let id = DocumentId::random();
    let early_url = AutomergeUrl::from(id).to_string();
    let early = js
        .try_command(&json!({"cmd": "read", "url": early_url}))
        .await;
    assert_eq!(early["event"], json!("error"), "nobody has it yet: {early}");
    assert!(
        early["message"].as_str().unwrap().contains("unavailable"),
        "{early}"
    );

    device
        .create_with_id(id, |tx| tx.put(ROOT, "late", 1))
        .await
        .unwrap();
    js_read_until(js, &early_url, "JS gets the late document", |a| {
        a["doc"]["late"] == json!(1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_devices_sync_through_the_official_js_server_over_websockets() {
    let Some((mut js, _)) = JsPeer::spawn(&["ws-server"], 0).await else {
        return;
    };
    let url = js.ready["url"].as_str().unwrap().to_owned();
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    let _a = online(&alice, &url).await;
    let _b = online(&bob, &url).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();
    let on_bob = find_eventually(&bob, doc.id()).await;
    eventually("bob has it", || async {
        number(&on_bob, "title") == Some(1)
    })
    .await;
    on_bob.change(|tx| tx.put(ROOT, "reply", 2)).await.unwrap();
    eventually("alice has the reply", || async {
        number(&doc, "reply") == Some(2)
    })
    .await;
    let answer = js_read_until(
        &mut js,
        &doc.url().to_string(),
        "the JS server has both",
        |a| a["doc"]["reply"] == json!(2),
    )
    .await;
    assert_eq!(answer["doc"]["title"], json!(1));
}
