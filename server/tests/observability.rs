//! The relay binary's HTTP endpoints over real sockets on 127.0.0.1: `/healthz`, `/readyz`
//! and `/metrics` on the relay's port (or on a metrics address of their own), with figures
//! that follow what peers did.

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
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
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
