//! The relay binary's HTTP endpoints over real sockets on 127.0.0.1: `/healthz`, `/readyz`
//! and `/metrics` on the relay's port (or on a metrics address of their own), with figures
//! that follow what peers did; and a web page served beside the WebSocket endpoint (`--web`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "../../core/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::{eventually, online};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use weft::{
    Repo,
    automerge::{ROOT, transaction::Transactable},
    net::{ConnectionState, NetConfig},
};
use weft_relay::{auth::Grant, secret};

/// A plain HTTP request to `address` (host:port): the status code and the body.
async fn request(address: &str, method: &str, path: &str) -> (u16, String) {
    let (status, _, body) = exchange(address, method, path).await;
    (status, body)
}

/// A plain HTTP request: the status code, the head and the body.
async fn exchange(address: &str, method: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answered in time")
    .unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_lowercase(), body.to_owned())
}

/// The value of the sample named exactly `sample` (name and labels) in Prometheus text.
fn sample(metrics: &str, sample: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == sample).then(|| value.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_follow_what_peers_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (relay, url, _) = support::start_binary(&data, &[]);
    let address = url.trim_start_matches("ws://").to_owned();

    assert_eq!(
        request(&address, "GET", "/healthz").await,
        (200, "ok\n".to_owned())
    );
    assert_eq!(
        request(&address, "GET", "/readyz").await,
        (200, "ready\n".to_owned())
    );
    assert_eq!(request(&address, "GET", "/nothing").await.0, 404);
    assert_eq!(request(&address, "POST", "/metrics").await.0, 405);

    // A writer syncs three documents; a peer without a token is turned away.
    let secret = secret::read(&data.join(secret::SECRET_FILE)).unwrap();
    let token = support::token(&secret, Grant::everything(), Grant::everything(), 600);
    let alice = Repo::in_memory();
    let _alice = online(&alice, &format!("{url}/?token={token}")).await;
    for n in 0..3 {
        let doc = alice.create().await.unwrap();
        doc.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
    }
    let stranger = Repo::in_memory();
    let turned_away = stranger.dial(url.as_str(), NetConfig::default());
    tokio::time::timeout(
        Duration::from_secs(20),
        turned_away.wait_for(|s| matches!(s, ConnectionState::Refused { .. })),
    )
    .await
    .expect("refused in time");
    turned_away.stop().await;

    let metrics = |_: ()| async {
        let (status, body) = request(&address, "GET", "/metrics").await;
        assert_eq!(status, 200);
        body
    };
    eventually("the relay stored the three documents", || async {
        sample(&metrics(()).await, "weft_documents_stored") == Some(3.0)
    })
    .await;
    let text = metrics(()).await;
    let value = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    assert!(value(r#"weft_messages_total{direction="in",type="sync"}"#) >= 3.0);
    assert!(value(r#"weft_messages_total{direction="out",type="sync"}"#) >= 3.0);
    assert!(value(r#"weft_message_bytes_total{direction="in",type="join"}"#) > 0.0);
    assert!(value("weft_sync_apply_seconds_count") >= 3.0);
    assert!(value("weft_storage_commit_seconds_count") >= 3.0);
    // Alice's connection, and this request.
    assert!(value("weft_connections_open") >= 2.0);
    // Alice syncs her three (they stay loaded while she does).
    assert_eq!(value("weft_documents_loaded"), 3.0);
    // Counted once the refused connection is closed.
    eventually("the refusal is counted", || async {
        sample(
            &metrics(()).await,
            r#"weft_refused_total{reason="unauthorized"}"#,
        ) == Some(1.0)
    })
    .await;
    assert!(text.ends_with("# EOF\n"), "{text}");

    support::terminate(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_kept_on_an_address_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_address = {
        // A free port for the metrics listener.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let (relay, url, _) = support::start_binary(
        &dir.path().join("data"),
        &[
            "--anonymous",
            "read-write",
            "--metrics-listen",
            &metrics_address,
        ],
    );
    let address = url.trim_start_matches("ws://").to_owned();
    // The public port keeps health checks and has no metrics.
    assert_eq!(request(&address, "GET", "/healthz").await.0, 200);
    assert_eq!(request(&address, "GET", "/metrics").await.0, 404);
    let (status, body) = request(&metrics_address, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&body, "weft_documents_stored"), Some(0.0), "{body}");
    assert_eq!(request(&metrics_address, "GET", "/readyz").await.0, 200);
    support::terminate(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_is_served_beside_the_websocket_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page");
    std::fs::create_dir_all(page.join("assets")).unwrap();
    std::fs::write(
        page.join("index.html"),
        "<!doctype html><title>editor</title>",
    )
    .unwrap();
    std::fs::write(page.join("assets/app-1a2b.js"), "console.log('app')").unwrap();
    std::fs::write(page.join("assets/automerge.wasm"), b"\0asm").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "outside the page").unwrap();
    let web = page.to_str().unwrap();
    let (_relay, url, _) = support::start_binary(
        &dir.path().join("data"),
        &["--anonymous", "read-write", "--web", web],
    );
    let address = url.trim_start_matches("ws://");

    let (status, head, body) = exchange(address, "GET", "/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "<!doctype html><title>editor</title>")
    );
    assert!(head.contains("content-type: text/html"), "{head}");
    // The page's own routes get the page; assets their type, cached for good.
    assert_eq!(exchange(address, "GET", "/doc/abc").await.2, body);
    let (status, head, script) = exchange(address, "GET", "/assets/app-1a2b.js").await;
    assert_eq!((status, script.as_str()), (200, "console.log('app')"));
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(head.contains("immutable"), "{head}");
    let (_, head, _) = exchange(address, "GET", "/assets/automerge.wasm").await;
    assert!(head.contains("content-type: application/wasm"), "{head}");
    // Nothing outside the folder, nothing missing, health still answered.
    for path in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/missing.js",
    ] {
        assert_eq!(request(address, "GET", path).await.0, 404, "{path}");
    }
    assert_eq!(request(address, "GET", "/healthz").await.0, 200);

    // The same port still syncs.
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    let _a = online(&alice, &url).await;
    let _b = online(&bob, &url).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "typed", 1)).await.unwrap();
    let on_bob = common::find_eventually(&bob, doc.id()).await;
    eventually("bob has alice's change", || async {
        common::number(&on_bob, "typed") == Some(1)
    })
    .await;
}

#[test]
fn a_web_folder_without_a_page_stops_the_relay_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--anonymous",
            "read-write",
            "--web",
        ])
        .arg(dir.path())
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("has no index.html"), "{log}");
}
