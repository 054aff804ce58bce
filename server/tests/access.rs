//! Access control on weft-relay over real sockets on 127.0.0.1: the binary's generated
//! secret and `weft-relay token`; missing, wrong, expired and tampered tokens; a read-only
//! official JS client; 10,000 probes for random document ids.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "../../core/tests/common/mod.rs"]
mod common;
mod support;

use std::{process::Command, time::Duration};

use common::{eventually, find_eventually, js_peer::JsPeer, number, online};
use serde_json::json;
use tokio::{net::TcpListener, sync::oneshot};
use weft::{
    DocumentId, Error, Repo,
    automerge::{ROOT, transaction::Transactable},
    net::{ConnectionState, NetConfig},
};
use weft_relay::{RelayConfig, auth::Grant, run, secret};

/// Dials `url` and waits for the relay to turn the dialler away; returns why.
async fn refusal(url: &str) -> String {
    let repo = Repo::in_memory();
    let dialer = repo.dial(url, NetConfig::default());
    let state = tokio::time::timeout(
        Duration::from_secs(20),
        dialer.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Refused { .. } | ConnectionState::Offline { .. }
            )
        }),
    )
    .await
    .expect("refused in time");
    dialer.stop().await;
    match state {
        ConnectionState::Refused { reason } => reason,
        other => panic!("{other:?}"),
    }
}

/// `weft-relay token` with `args`: the token it prints.
fn mint_with_the_binary(data: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .arg("token")
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_is_secure_by_default_and_its_tokens_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (relay, url, log) = support::start_binary(&data, &[]);
    // No key configured: it made one, and said how to mint tokens.
    assert!(data.join(secret::SECRET_FILE).exists());
    assert!(
        log.iter().any(|l| l.contains("weft-relay token")),
        "{log:#?}"
    );

    // A writer with a token minted by the binary syncs.
    let writer_token = mint_with_the_binary(&data, &["--write", "*", "--subject", "alice"]);
    let alice = Repo::in_memory();
    let _alice = online(&alice, &format!("{url}/?token={writer_token}")).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();

    // Turned away, each with its reason: no token, a token signed with another key, an
    // expired one, and a reader's token whose signature was tampered with.
    assert!(
        refusal(&url)
            .await
            .contains("unauthorized: a token is required")
    );
    let secret = secret::read(&data.join(secret::SECRET_FILE)).unwrap();
    let foreign = support::token(&[7; 32], Grant::everything(), Grant::everything(), 3600);
    assert!(
        refusal(&format!("{url}/?token={foreign}"))
            .await
            .contains("unauthorized: invalid token")
    );
    let expired = support::token(&secret, Grant::everything(), Grant::everything(), -3600);
    assert!(
        refusal(&format!("{url}/?token={expired}"))
            .await
            .contains("unauthorized: token expired")
    );
    let reader_token = mint_with_the_binary(&data, &["--read", &doc.url().to_string()]);
    let mut tampered = reader_token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(
        refusal(&format!("{url}/?token={tampered}"))
            .await
            .contains("unauthorized: invalid token")
    );

    // None of that disturbed the writer, and the reader's own token works for its document.
    doc.change(|tx| tx.put(ROOT, "after", 2)).await.unwrap();
    let bob = Repo::in_memory();
    let _bob = online(&bob, &format!("{url}/?token={reader_token}")).await;
    let on_bob = find_eventually(&bob, doc.id()).await;
    eventually("the reader has the writer's changes", || async {
        number(&on_bob, "after") == Some(2)
    })
    .await;
    support::terminate(relay);
}

/// A relay in this process requiring tokens signed with the returned secret.
async fn relay_with_tokens(data: &std::path::Path) -> (String, Vec<u8>, oneshot::Sender<()>) {
    let (secret, _, _) = secret::read_or_create(data).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(run(listener, RelayConfig::new(data), async {
        let _ = stopped.await;
    }));
    (url, secret, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_js_client_receives_but_its_changes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (url, secret, _stop) = relay_with_tokens(&dir.path().join("relay")).await;
    let writer_token = support::token(&secret, Grant::default(), Grant::everything(), 3600);
    let reader_token = support::token(&secret, Grant::everything(), Grant::default(), 3600);
    let alice = Repo::in_memory();
    let _alice = online(&alice, &format!("{url}/?token={writer_token}")).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();

    let reader_url = format!("{url}/?token={reader_token}");
    let Some((mut js, _)) = JsPeer::spawn(&["ws-client", &reader_url], 0).await else {
        return;
    };
    let doc_url = doc.url().to_string();
    let read = js.command(json!({"cmd": "read", "url": doc_url})).await;
    assert_eq!(read["doc"]["title"], json!(1), "{read}");

    // The JS client changes its copy; the relay applies and passes on none of it.
    let changed = js
        .command(json!({"cmd": "change", "url": doc_url, "key": "forged", "value": 666}))
        .await;
    assert_eq!(changed["event"], "changed", "{changed}");
    // It still receives: a later change of alice's reaches it.
    doc.change(|tx| tx.put(ROOT, "after", 2)).await.unwrap();
    let read = json!({"cmd": "read", "url": doc_url});
    let mut heard = false;
    for _ in 0..200 {
        if js.try_command(&read).await["doc"]["after"] == json!(2) {
            heard = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(heard, "the read-only client keeps receiving");
    // A device that arrives now gets everything the relay has: alice's changes, not the
    // forged one.
    let carol = Repo::in_memory();
    let _carol = online(&carol, &format!("{url}/?token={writer_token}")).await;
    let on_carol = find_eventually(&carol, doc.id()).await;
    eventually("carol has alice's changes", || async {
        number(&on_carol, "after") == Some(2)
    })
    .await;
    assert_eq!(number(&on_carol, "forged"), None);
    assert_eq!(number(&doc, "forged"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_probes_for_document_ids_find_nothing_and_disturb_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let (url, secret, _stop) = relay_with_tokens(&dir.path().join("relay")).await;
    let writer_token = support::token(&secret, Grant::default(), Grant::everything(), 3600);
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    let _alice = online(&alice, &format!("{url}/?token={writer_token}")).await;
    let _bob = online(&bob, &format!("{url}/?token={writer_token}")).await;
    let private = alice.create().await.unwrap();
    private.change(|tx| tx.put(ROOT, "n", 0)).await.unwrap();
    let on_bob = find_eventually(&bob, private.id()).await;

    // Mallory may read one document (alice shared it with her); she probes alice's other
    // one and 10,000 random ids.
    let shared = alice.create().await.unwrap();
    shared.change(|tx| tx.put(ROOT, "shared", 1)).await.unwrap();
    let _ = find_eventually(&bob, shared.id()).await; // on the relay
    let probe_token = support::token(
        &secret,
        Grant::Documents(vec![shared.id().to_string()]),
        Grant::default(),
        3600,
    );
    let mallory = Repo::in_memory();
    let _mallory = online(&mallory, &format!("{url}/?token={probe_token}")).await;
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..10_000 {
        let mallory = mallory.clone();
        probes.spawn(async move { mallory.find(DocumentId::random()).await.map(|_| ()) });
    }
    // Meanwhile alice and bob keep syncing.
    for n in 1..=20 {
        private
            .change(move |tx| tx.put(ROOT, "n", n))
            .await
            .unwrap();
    }
    let forbidden = mallory.find(private.id()).await;
    assert!(
        matches!(forbidden, Err(Error::DocumentNotFound(id)) if id == private.id()),
        "{forbidden:?}"
    );
    let answered = tokio::time::timeout(Duration::from_secs(120), async {
        let mut answered = 0;
        while let Some(probe) = probes.join_next().await {
            // Answered as unknown, exactly as the forbidden one above.
            assert!(matches!(probe.unwrap(), Err(Error::DocumentNotFound(_))));
            answered += 1;
        }
        answered
    })
    .await
    .expect("every probe is answered");
    assert_eq!(answered, 10_000);
    // Her own token does work: the refusals above are her access, not a broken relay.
    let hers = find_eventually(&mallory, shared.id()).await;
    eventually("mallory reads what was shared with her", || async {
        number(&hers, "shared") == Some(1)
    })
    .await;
    eventually("bob kept up with alice", || async {
        number(&on_bob, "n") == Some(20)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_to_the_relay_binary_ends_that_connection_alone() {
    use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let limits = [
        "--anonymous",
        "read-write",
        "--max-message-bytes",
        "65536",
        "--handshake-timeout",
        "1",
    ];
    let (relay, url, _) = support::start_binary(&data, &limits);
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    let _alice = online(&alice, &url).await;
    let _bob = online(&bob, &url).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "n", 0)).await.unwrap();
    let on_bob = find_eventually(&bob, doc.id()).await;

    // A frame over the configured limit: closed with 1009 and the reason.
    let big = Message::Binary(vec![0u8; 100 * 1024].into());
    let (code, reason) = common::close_after(&url, vec![big]).await.unwrap();
    assert_eq!(code, CloseCode::Size);
    assert!(
        reason.contains("too big") && reason.contains("65536"),
        "{reason}"
    );
    // A text frame.
    let (code, _) = common::close_after(&url, vec![Message::text("{}")])
        .await
        .unwrap();
    assert_eq!(code, CloseCode::Unsupported);
    // Garbage CBOR: told why in an `error` message.
    let reply = common::first_reply(&url, vec![0xbf, 0xff, 0x61]).await;
    assert!(
        matches!(reply, Some(weft::wire::Message::Error { .. })),
        "{reply:?}"
    );
    // A handshake that never finishes: closed after the configured second.
    let started = std::time::Instant::now();
    assert!(common::close_after(&url, Vec::new()).await.is_some());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The honest peers never noticed, and nothing was lost.
    for n in 1..=5 {
        doc.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
    }
    eventually("bob still syncs", || async {
        number(&on_bob, "n") == Some(5)
    })
    .await;
    support::terminate(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_file_sets_limits_and_static_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        r#"
max-message-bytes = 65536

[[static-key]]
name = "ci"
key = "a-static-key-for-the-tests"
write = "*"
"#,
    )
    .unwrap();
    let flag = config.to_str().unwrap();
    let (relay, url, _) = support::start_binary(&dir.path().join("data"), &["--config", flag]);
    // The static key lets a device in; no key is still refused.
    let alice = Repo::in_memory();
    let _alice = online(&alice, &format!("{url}/?token=a-static-key-for-the-tests")).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "n", 1)).await.unwrap();
    assert!(refusal(&url).await.contains("a token is required"));
    // The file's message limit applies.
    let big = tokio_tungstenite::tungstenite::Message::Binary(vec![0u8; 100 * 1024].into());
    let (_, reason) = common::close_after(
        &format!("{url}/?token=a-static-key-for-the-tests"),
        vec![big],
    )
    .await
    .unwrap();
    assert!(reason.contains("65536"), "{reason}");
    support::terminate(relay);

    // A mistake in the file stops the relay with the reason, before it serves anything.
    std::fs::write(&config, "max-conections = 5\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .args(["--listen", "127.0.0.1:0", "--config", flag])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("max-conections"), "{said}");
}
