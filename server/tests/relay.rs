//! weft-relay with devices on real WebSockets on 127.0.0.1: in-process through `run`, and
//! as the binary, stopped by SIGTERM and started again on the same data.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "../../core/tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;

use common::{eventually, find_eventually, number, online};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use weft::{
    Repo,
    automerge::{ROOT, transaction::Transactable},
};
use weft_relay::{RelayConfig, RelayError, auth::Anonymous, run};

/// A relay in this process on a fresh port: its URL, its stop trigger and its task.
async fn start_relay(
    data: &Path,
) -> (
    String,
    oneshot::Sender<()>,
    JoinHandle<Result<(), RelayError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let config = RelayConfig::new(data).with_anonymous(Some(Anonymous::ReadWrite));
    let task = tokio::spawn(run(listener, config, async {
        let _ = stopped.await;
    }));
    (url, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_converge_after_offline_edits_and_a_relay_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let (url, stop, relay) = start_relay(&data).await;
    let mut devices = Vec::new();
    for name in ["ann", "ben", "cat"] {
        devices.push(
            Repo::open(dir.path().join(format!("{name}.db")))
                .await
                .unwrap(),
        );
    }
    let mut dialers = Vec::new();
    for device in &devices {
        dialers.push(online(device, &url).await);
    }
    let doc = devices[0].create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();
    let mut handles = vec![doc.clone()];
    for device in &devices[1..] {
        handles.push(find_eventually(device, doc.id()).await);
    }

    // Everyone goes offline and edits; the relay restarts meanwhile.
    for dialer in dialers.drain(..) {
        dialer.stop().await;
    }
    for (i, handle) in handles.iter().enumerate() {
        let key = format!("offline-{i}");
        handle
            .change(move |tx| tx.put(ROOT, key.as_str(), 10))
            .await
            .unwrap();
    }
    stop.send(()).unwrap();
    relay.await.unwrap().unwrap();
    let (url, _stop, _relay) = start_relay(&data).await;

    for device in &devices {
        dialers.push(online(device, &url).await);
    }
    eventually("all three converge", || async {
        handles.iter().all(|h| h.heads() == handles[0].heads())
            && (0..3).all(|i| number(&handles[0], &format!("offline-{i}")) == Some(10))
    })
    .await;
}

fn start_binary(data: &Path) -> (support::RelayProcess, String) {
    let (child, url, _) = support::start_binary(data, &["--anonymous", "read-write"]);
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stops_cleanly_on_sigterm_and_keeps_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (relay, url) = start_binary(&data);
    let alice = Repo::in_memory();
    let dialer = online(&alice, &url).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "kept", 42)).await.unwrap();
    // The relay has it once another device can find it.
    let bob = Repo::in_memory();
    let bob_dialer = online(&bob, &url).await;
    eventually("the relay has it", || async {
        bob.find(doc.id()).await.is_ok()
    })
    .await;
    drop((bob_dialer, dialer));

    support::terminate(relay);

    // Started again on the same data, it serves the document to a new device.
    let (mut relay, url) = start_binary(&data);
    let carol = Repo::in_memory();
    let _dialer = online(&carol, &url).await;
    let found = find_eventually(&carol, doc.id()).await;
    eventually("with its content", || async {
        number(&found, "kept") == Some(42)
    })
    .await;
    relay.kill().unwrap();
    relay.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_killed_mid_sync_restarts_and_everything_converges() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut relay, url) = start_binary(&data);
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let dialer = online(&alice, &url).await;
    let doc = alice.create().await.unwrap();
    // Alice writes steadily; the relay is killed (SIGKILL) in the middle of the stream.
    for i in 0..300 {
        let key = format!("k{i}");
        doc.change(move |tx| tx.put(ROOT, key.as_str(), i))
            .await
            .unwrap();
        if i == 150 {
            relay.kill().unwrap(); // SIGKILL
            relay.wait().unwrap();
        }
    }
    dialer.stop().await;

    // Restarted on the same data; alice and a new device come back.
    let (mut relay, url) = start_binary(&data);
    let _alice = online(&alice, &url).await;
    let bob = Repo::in_memory();
    let _bob = online(&bob, &url).await;
    let on_bob = find_eventually(&bob, doc.id()).await;
    eventually("bob has every change alice made", || async {
        on_bob.heads() == doc.heads() && number(&on_bob, "k299") == Some(299)
    })
    .await;
    assert!((0..300).all(|i| number(&on_bob, &format!("k{i}")) == Some(i)));
    relay.kill().unwrap();
    relay.wait().unwrap();
    alice.close().await.unwrap();
}

#[test]
fn the_binary_logs_json_lines_on_request() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut relay = std::process::Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--data"])
        .arg(dir.path().join("data"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(relay.stderr.take().unwrap()).lines();
    // Every line is one JSON object; the listening line carries the address as a field.
    let listening = loop {
        let line = lines.next().expect("it logs").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if entry["fields"]["message"] == "relay listening" {
            break entry;
        }
    };
    assert!(
        listening["fields"]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{listening}"
    );
    assert_eq!(listening["level"], "INFO");
    std::thread::spawn(move || lines.for_each(drop));
    support::terminate(support::RelayProcess(relay));
}
