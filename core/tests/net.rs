//! Repos on real WebSockets on 127.0.0.1: devices syncing directly, a dialler that comes
//! back after the listener went away, and hostile sockets that are cut off alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::time::Duration;

use common::{eventually, number};
use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use weft::{
    Repo, RepoConfig,
    automerge::{ROOT, transaction::Transactable},
    net::{Authorize, ConnectionState, NetConfig, Refused, UpgradeRequest, serve, serve_with},
    sync::Access,
    wire,
};

/// Serves `repo` on a fresh port; returns its URL and the trigger that stops serving.
async fn listen(repo: &Repo, config: NetConfig) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(repo.clone(), listener, config, async {
        let _ = stopped.await;
    }));
    (url, stop)
}

/// A repo on SQLite at `path` that serves documents only when asked, as a relay does.
async fn open_relay(path: &std::path::Path, mut config: RepoConfig) -> Repo {
    config.sync = config
        .sync
        .with_share_policy(std::sync::Arc::new(weft::sync::ServeOnRequest));
    Repo::open_with(path, config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_sync_directly_with_no_relay() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    let (url, _stop) = listen(&alice, NetConfig::default()).await;
    let dialer = bob.dial(url, NetConfig::default());
    dialer.wait_for(|s| *s == ConnectionState::Connected).await;

    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();
    let on_bob = bob.find(doc.id()).await.unwrap();
    eventually("bob has it", || async {
        number(&on_bob, "title") == Some(1)
    })
    .await;
    on_bob.change(|tx| tx.put(ROOT, "reply", 2)).await.unwrap();
    eventually("alice has bob's reply", || async {
        number(&doc, "reply") == Some(2)
    })
    .await;
    dialer.stop().await;
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_find_right_after_dial_waits_for_the_connection() {
    let alice = Repo::in_memory();
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();
    let (url, _stop) = listen(&alice, NetConfig::default()).await;

    // An app dials and looks its document up at once, before the socket is open.
    let bob = Repo::in_memory();
    let dialer = bob.dial(url, NetConfig::default());
    let on_bob = bob.find(doc.id()).await.expect("found once connected");
    eventually("bob has it", || async {
        number(&on_bob, "title") == Some(1)
    })
    .await;

    // With nobody to dial, an unknown document is refused at once, not after a wait.
    dialer.stop().await;
    let refused = std::time::Instant::now();
    assert!(bob.find(weft::DocumentId::random()).await.is_err());
    assert!(
        refused.elapsed() < Duration::from_secs(1),
        "{:?}",
        refused.elapsed()
    );
    bob.close().await.unwrap();
    alice.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_find_waiting_for_a_failed_dial_is_answered_at_once() {
    // A port nobody listens on: the attempt fails with "connection refused" at once.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let bob = Repo::in_memory();
    let dialer = bob.dial(format!("ws://{port}"), NetConfig::default());
    let asked = std::time::Instant::now();
    assert!(bob.find(weft::DocumentId::random()).await.is_err());
    // Not held for the 2 s a find gives a connection in progress.
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    dialer.stop().await;
    bob.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialler_reconnects_when_the_listener_comes_back() {
    let alice = Repo::in_memory();
    let bob = Repo::in_memory();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(
        alice.clone(),
        listener,
        NetConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let dialer = bob.dial(format!("ws://{address}"), NetConfig::default());
    dialer.wait_for(|s| *s == ConnectionState::Connected).await;

    // The listener goes away: the dialler reports why, and keeps trying.
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
    let offline = dialer
        .wait_for(|s| matches!(s, ConnectionState::Offline { .. }))
        .await;
    let ConnectionState::Offline { last_error, .. } = offline else {
        panic!()
    };
    assert!(!last_error.is_empty());

    // It comes back on the same address; edits made meanwhile sync.
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "while-apart", 3))
        .await
        .unwrap();
    let listener = TcpListener::bind(address).await.unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(
        alice.clone(),
        listener,
        NetConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    dialer.wait_for(|s| *s == ConnectionState::Connected).await;
    let on_bob = bob.find(doc.id()).await.unwrap();
    eventually("bob gets it", || async {
        number(&on_bob, "while-apart") == Some(3)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sockets_are_cut_off_alone() {
    let mut config = RepoConfig::default();
    config.sync.handshake_timeout_ms = 1_000;
    let alice = Repo::in_memory_with(config);
    let bob = Repo::in_memory();
    let net = NetConfig::default().with_max_message_bytes(64 * 1024);
    let (url, _stop) = listen(&alice, net).await;
    let dialer = bob.dial(url.clone(), NetConfig::default());
    dialer.wait_for(|s| *s == ConnectionState::Connected).await;
    let doc = alice.create().await.unwrap();
    let on_bob = bob.find(doc.id()).await.unwrap();

    // A text frame.
    let (code, reason) = common::close_after(&url, vec![Message::text("hello")])
        .await
        .unwrap();
    assert_eq!(code, CloseCode::Unsupported);
    assert!(reason.contains("text frames"), "{reason}");
    // A message over the size limit.
    let big = Message::Binary(vec![0u8; 100 * 1024].into());
    let (code, reason) = common::close_after(&url, vec![big]).await.unwrap();
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("too big"), "{reason}");
    // Garbage bytes: an `error` message, then the connection ends.
    let reply = common::first_reply(&url, vec![0xff, 0x00, 0x13]).await;
    assert!(
        matches!(reply, Some(wire::Message::Error { .. })),
        "{reply:?}"
    );
    // A peer that connects and never sends `join`: closed after the handshake timeout.
    assert!(common::close_after(&url, Vec::new()).await.is_some());

    // The honest peer never noticed.
    doc.change(|tx| tx.put(ROOT, "still", 1)).await.unwrap();
    eventually("bob still syncs", || async {
        number(&on_bob, "still") == Some(1)
    })
    .await;
    assert_eq!(dialer.state(), ConnectionState::Connected);
}

/// Lets in `?token=reader` read-only and `?token=writer` fully; refuses anything else.
/// Counts the upgrades it was asked about.
#[derive(Debug, Default)]
struct Tokens(std::sync::atomic::AtomicUsize);

impl Authorize for Tokens {
    fn authorize(&self, request: &UpgradeRequest) -> Result<Access, Refused> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match request.uri().query() {
            Some("token=writer") => Ok(Access::full()),
            Some("token=reader") => Ok(Access::read_only()),
            _ => Err(Refused("unknown token".to_owned())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_checks_credentials_before_a_peer_reaches_the_repo() {
    let relay = Repo::in_memory();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = oneshot::channel::<()>();
    let tokens = std::sync::Arc::new(Tokens::default());
    tokio::spawn(serve_with(
        relay.clone(),
        listener,
        NetConfig::default(),
        tokens.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let doc = relay.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();

    // A wrong token: turned away with the reason, and the dialler says why and stops
    // (the same token would be refused again).
    let stranger = Repo::in_memory();
    let refused = stranger.dial(format!("{url}/?token=guess"), NetConfig::default());
    let state = refused
        .wait_for(|s| {
            matches!(
                s,
                ConnectionState::Refused { .. } | ConnectionState::Offline { .. }
            )
        })
        .await;
    let ConnectionState::Refused { reason } = state else {
        panic!("{state:?}")
    };
    assert_eq!(reason, "refused by the peer: unauthorized: unknown token");
    // No further attempt (the first retry would come within 250 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(tokens.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(matches!(refused.state(), ConnectionState::Refused { .. }));
    assert!(stranger.find(doc.id()).await.is_err());
    refused.stop().await;

    // A reader gets the document, but its change never reaches the relay.
    let reader = Repo::in_memory();
    let dialer = reader.dial(format!("{url}/?token=reader"), NetConfig::default());
    let on_reader = reader.find(doc.id()).await.unwrap();
    eventually("the reader has it", || async {
        number(&on_reader, "title") == Some(1)
    })
    .await;
    on_reader
        .change(|tx| tx.put(ROOT, "forged", 2))
        .await
        .unwrap();
    // A writer's change does reach it, and the reader hears of it.
    let writer = Repo::in_memory();
    let writer_dialer = writer.dial(format!("{url}/?token=writer"), NetConfig::default());
    let on_writer = writer.find(doc.id()).await.unwrap();
    on_writer
        .change(|tx| tx.put(ROOT, "edit", 3))
        .await
        .unwrap();
    eventually("the reader hears the writer", || async {
        number(&on_reader, "edit") == Some(3)
    })
    .await;
    assert_eq!(number(&doc, "forged"), None);
    assert_eq!(number(&on_writer, "forged"), None);
    dialer.stop().await;
    writer_dialer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_holds_in_memory_only_the_documents_connected_peers_use() {
    let dir = tempfile::tempdir().unwrap();
    let relay = open_relay(&dir.path().join("relay.db"), RepoConfig::default()).await;
    let mut ids = Vec::new();
    for n in 0..50 {
        let doc = relay.create().await.unwrap();
        doc.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
        ids.push(doc.id());
    }
    assert_eq!(relay.loaded_documents(), 0, "stored, not held");

    let (url, _stop) = listen(&relay, NetConfig::default()).await;

    // A client syncs all 50: the relay holds them while it is connected...
    let client = Repo::in_memory();
    let dialer = client.dial(url.clone(), NetConfig::default());
    for (n, id) in ids.iter().enumerate() {
        let doc = client.find(*id).await.unwrap();
        eventually("synced", || async { number(&doc, "n") == Some(n as i64) }).await;
    }
    assert_eq!(relay.loaded_documents(), 50);
    // ...and lets them go when it leaves, but for one the relay's own app holds (a view
    // counts as a handle).
    let view = relay.find(ids[0]).await.unwrap().view_at(&[]).unwrap();
    dialer.stop().await;
    eventually("the relay unloaded the others", || async {
        relay.loaded_documents() == 1
    })
    .await;
    drop(view);
    eventually("and that one once let go", || async {
        relay.loaded_documents() == 0
    })
    .await;

    // Another client gets them back from storage; only its 5 are loaded.
    let other = Repo::in_memory();
    let _dialer = other.dial(url, NetConfig::default());
    for (n, id) in ids.iter().enumerate().take(5) {
        let doc = other.find(*id).await.unwrap();
        eventually("synced again", || async {
            number(&doc, "n") == Some(n as i64)
        })
        .await;
    }
    assert_eq!(relay.loaded_documents(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unfinished_handshakes_does_not_keep_a_client_out() {
    let relay = Repo::in_memory();
    let doc = relay.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", 1)).await.unwrap();
    // Room for 100 connections: 200 idle ones would fill it, were the oldest not closed.
    let config = NetConfig::default().with_max_connections(100, 16);
    let (url, _stop) = listen(&relay, config).await;
    let address = url.trim_start_matches("ws://").to_owned();

    // 200 connections that never say anything (not even HTTP), all open at once.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // A real client still gets in, within its first retries (idle connections become
    // evictable after a second) rather than after the 10 s handshake timeout.
    let started = std::time::Instant::now();
    let client = Repo::in_memory();
    let dialer = common::online(&client, &url).await;
    let found = client.find(doc.id()).await.unwrap();
    eventually("the client synced", || async {
        number(&found, "title") == Some(1)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The oldest idle ones were closed to make room: at most 16 may still be waiting.
    let mut closed = 0;
    for mut stream in idle {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(
            Duration::from_millis(20),
            tokio::io::AsyncReadExt::read(&mut stream, &mut byte),
        )
        .await;
        if matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    assert!(closed >= 200 - 16, "only {closed} closed");
    dialer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_and_the_others_keep_syncing() {
    let relay = Repo::in_memory();
    let doc = relay.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "n", 0)).await.unwrap();
    let (url, _stop) = listen(&relay, NetConfig::default().with_max_connections(2, 2)).await;
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    let _alice = common::online(&alice, &url).await;
    let _bob = common::online(&bob, &url).await;
    let (on_alice, on_bob) = (
        alice.find(doc.id()).await.unwrap(),
        bob.find(doc.id()).await.unwrap(),
    );
    // A third is turned away while two are connected.
    let carol = Repo::in_memory();
    let refused = carol.dial(url, NetConfig::default());
    let state = tokio::time::timeout(
        Duration::from_secs(10),
        refused.wait_for(|s| matches!(s, ConnectionState::Offline { .. })),
    )
    .await
    .unwrap();
    assert!(matches!(state, ConnectionState::Offline { .. }));
    refused.stop().await;
    on_alice.change(|tx| tx.put(ROOT, "n", 1)).await.unwrap();
    eventually("bob still syncs", || async {
        number(&on_bob, "n") == Some(1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_cut_off_after_bounded_buffering() {
    use weft::automerge::{
        Automerge, ScalarValue,
        sync::{State, SyncDoc},
    };
    let relay = Repo::in_memory();
    let mut rng = common::Rng(7);
    let mut ids = Vec::new();
    for _ in 0..30 {
        // 256 KiB that do not compress.
        let blob: Vec<u8> = (0..256 * 1024).map(|_| rng.next() as u8).collect();
        let doc = relay.create().await.unwrap();
        doc.change(move |tx| tx.put(ROOT, "blob", ScalarValue::Bytes(blob)))
            .await
            .unwrap();
        ids.push(doc.id());
    }
    // Room for 512 KiB; keepalive as default, so that a stalled write would be given up
    // only after 30 s: the end below comes from the bound.
    let config = NetConfig::default().with_max_queued_bytes(512 * 1024);
    let (url, _stop) = listen(&relay, config).await;
    let bob = Repo::in_memory();
    let _bob = common::online(&bob, &url).await;
    let on_bob = bob.find(ids[0]).await.unwrap();

    // A raw peer asks for all 30 documents (7.5 MiB) and never reads.
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let me = weft::PeerId::new("sluggish");
    let hello = wire::Message::Join {
        sender: me.clone(),
        metadata: None,
        supported_versions: Some(vec!["1".to_owned()]),
    };
    socket
        .send(Message::Binary(wire::encode(&hello).into()))
        .await
        .unwrap();
    let ask = Automerge::new()
        .generate_sync_message(&mut State::new())
        .unwrap()
        .encode();
    let asked = std::time::Instant::now();
    for id in &ids {
        let request = wire::Message::Request {
            sender: me.clone(),
            target: relay.peer_id().clone(),
            document: *id,
            data: ask.clone(),
        };
        socket
            .send(Message::Binary(wire::encode(&request).into()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Reading now: what was buffered, then the end, well short of all it asked for.
    let mut received = 0;
    let mut reason = None;
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Binary(bytes)) => received += bytes.len(),
                Ok(Message::Close(frame)) => {
                    reason = frame.map(|f| f.reason.to_string());
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection was not ended");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "ended by the stall timeout, not the bound: {:?}",
        asked.elapsed()
    );
    assert!(received < 30 * 256 * 1024, "it got everything: {received}");
    if let Some(reason) = reason {
        assert!(
            reason.contains("not reading") || reason.contains("stopped reading"),
            "{reason}"
        );
    }
    // Bob never noticed, and keeps syncing after the cut.
    let on_relay = relay.find(ids[0]).await.unwrap();
    on_relay
        .change(|tx| tx.put(ROOT, "after", 1))
        .await
        .unwrap();
    eventually("bob hears of a change after the cut", || async {
        number(&on_bob, "after") == Some(1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_message_rate_is_slowed_down_and_nothing_is_lost() {
    let relay = Repo::in_memory();
    let doc = relay.create().await.unwrap();
    // 20 messages a second after a burst of 10.
    let (url, _stop) = listen(&relay, NetConfig::default().with_message_rate(20, 10)).await;
    let bob = Repo::in_memory();
    let _bob = common::online(&bob, &url).await;
    let on_bob = bob.find(doc.id()).await.unwrap();
    let mut events = on_bob.subscribe();
    let heard = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = heard.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if matches!(event, weft::DocEvent::Ephemeral { .. }) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });

    // A raw peer joins, opens the document and sends 60 ephemeral messages at once.
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let me = weft::PeerId::new("chatty");
    let mut frames = vec![wire::Message::Join {
        sender: me.clone(),
        metadata: None,
        supported_versions: Some(vec!["1".to_owned()]),
    }];
    for count in 1..=60 {
        frames.push(wire::Message::Ephemeral {
            sender: me.clone(),
            target: relay.peer_id().clone(),
            document: doc.id(),
            session: "s".to_owned(),
            count,
            data: vec![0xa1, 0x61, 0x6e, 0x01],
        });
    }
    let started = std::time::Instant::now();
    for frame in &frames {
        socket
            .send(Message::Binary(wire::encode(frame).into()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
    // After one second: at most the burst and a second's worth (with slack), not all 60.
    let after_a_second = heard.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        after_a_second <= 35,
        "not slowed down: {after_a_second} after 1 s"
    );
    // Then all of them, in time: paced, never dropped.
    eventually("every message arrives", || async {
        heard.load(std::sync::atomic::Ordering::SeqCst) == 60
    })
    .await;
    // The paced peer's connection is still open: one more message gets through.
    let more = wire::Message::Ephemeral {
        sender: me.clone(),
        target: relay.peer_id().clone(),
        document: doc.id(),
        session: "s".to_owned(),
        count: 61,
        data: vec![0xa1, 0x61, 0x6e, 0x02],
    };
    socket
        .send(Message::Binary(wire::encode(&more).into()))
        .await
        .unwrap();
    eventually("the paced peer is still connected", || async {
        heard.load(std::sync::atomic::Ordering::SeqCst) == 61
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_documents_are_let_go_while_peers_stay_and_come_back_with_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RepoConfig::default();
    config.idle_unload = Some(Duration::from_millis(300));
    let relay = open_relay(&dir.path().join("relay.db"), config).await;
    let (url, _stop) = listen(&relay, NetConfig::default()).await;
    // Devices with storage: the relay keeps sync states for them, so a reloaded document
    // may find them in sync and hear nothing from them.
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    let _alice = common::online(&alice, &url).await;
    let _bob = common::online(&bob, &url).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "n", 1)).await.unwrap();
    let on_bob = common::find_eventually(&bob, doc.id()).await;
    eventually("bob has it", || async { number(&on_bob, "n") == Some(1) }).await;

    // Both stay connected and keep their handles; the relay lets the idle document go.
    eventually("the relay let the idle document go", || async {
        relay.loaded_documents() == 0
    })
    .await;

    // Presence still flows through it, without loading it.
    let mut events = on_bob.subscribe();
    doc.broadcast(vec![0xa1, 0x61, 0x63, 0x01]);
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            if let weft::DocEvent::Ephemeral { data, .. } = event {
                return data;
            }
        }
        Vec::new()
    })
    .await
    .expect("the ephemeral message reached bob");
    assert_eq!(heard, vec![0xa1, 0x61, 0x63, 0x01]);
    assert_eq!(relay.loaded_documents(), 0);

    // Loaded and let go again without any message from them (an offer, as a relay's
    // catch-up makes): they are still remembered.
    relay.offer(doc.id()).await.unwrap();
    eventually("let go after the offer", || async {
        relay.loaded_documents() == 0
    })
    .await;

    // A change loads it again, and reaches bob unasked: the relay remembered he syncs it.
    doc.change(|tx| tx.put(ROOT, "n", 2)).await.unwrap();
    eventually("alice's change reaches bob", || async {
        number(&on_bob, "n") == Some(2)
    })
    .await;
    // Idle again, then the other way round.
    eventually("let go again", || async { relay.loaded_documents() == 0 }).await;
    on_bob.change(|tx| tx.put(ROOT, "m", 3)).await.unwrap();
    eventually("bob's change reaches alice", || async {
        number(&doc, "m") == Some(3)
    })
    .await;
    relay.close().await.unwrap();
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_written_offline_and_closed_reach_the_relay_once_connected() {
    let dir = tempfile::tempdir().unwrap();
    let relay = open_relay(&dir.path().join("relay.db"), RepoConfig::default()).await;
    let (url, _stop) = listen(&relay, NetConfig::default()).await;
    let stored = |n: usize| {
        let relay = relay.clone();
        async move { relay.list().await.unwrap().len() == n }
    };

    // Offline: two documents written and closed, no handle left.
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let _was_online = alice.dial("ws://127.0.0.1:9", NetConfig::default()); // nobody there
    for n in 0..2 {
        let doc = alice.create().await.unwrap();
        doc.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
    }
    // Online: they reach the relay without the app opening them again.
    let _online = common::online(&alice, &url).await;
    eventually("the offline documents reach the relay", || stored(2)).await;

    // Written and closed right after dialling, while the connection is still being set up.
    for _ in 0..5 {
        let bob = Repo::in_memory();
        let before = relay.list().await.unwrap().len();
        let _dialer = bob.dial(url.clone(), NetConfig::default());
        let doc = bob.create().await.unwrap();
        doc.change(|tx| tx.put(ROOT, "n", 1)).await.unwrap();
        drop(doc);
        eventually(
            "a document closed during the handshake reaches the relay",
            || stored(before + 1),
        )
        .await;
    }
    alice.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_dials_a_relay_behind_tls_and_checks_its_certificate() {
    // A relay behind a TLS front (as behind Caddy or nginx), with a self-signed certificate.
    let relay = Repo::in_memory();
    let (url, _stop) = listen(&relay, NetConfig::default()).await;
    let front = common::tls_front::start(url.trim_start_matches("ws://").to_owned()).await;
    let secure_url = front.url.clone();

    // Trusting the certificate: it syncs.
    let alice = Repo::in_memory();
    let tls = weft::net::tls::trusting(front.certificate_pem.as_bytes()).unwrap();
    let dialer = alice.dial_tls(
        secure_url.as_str(),
        NetConfig::default(),
        Access::full(),
        tls,
    );
    dialer.wait_for(|s| *s == ConnectionState::Connected).await;
    let doc = alice.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "over", 1)).await.unwrap();
    let on_relay = common::find_eventually(&relay, doc.id()).await;
    eventually("the change went over TLS", || async {
        number(&on_relay, "over") == Some(1)
    })
    .await;

    // Not trusting it (the public roots only): refused, saying why.
    let bob = Repo::in_memory();
    let refused = bob.dial(secure_url.as_str(), NetConfig::default());
    let state = tokio::time::timeout(
        Duration::from_secs(20),
        refused.wait_for(|s| matches!(s, ConnectionState::Offline { .. })),
    )
    .await
    .expect("refused in time");
    let ConnectionState::Offline { last_error, .. } = state else {
        panic!("{state:?}")
    };
    assert!(
        last_error.to_lowercase().contains("certificate"),
        "{last_error}"
    );
    assert!(weft::net::tls::trusting(b"not a certificate").is_err());
}
