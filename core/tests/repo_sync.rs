//! Repos syncing through the engine over in-memory transports: real SQLite files, real
//! automerge sync messages, the same code the network layer drives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::{sync::Arc, time::Duration};

use common::{Rng, eventually, number};
use weft::{
    ChangeOrigin, DocEvent, DocHandle, DocumentId, Error, Repo, RepoConfig, Role, Transport,
    automerge::{ROOT, transaction::Transactable},
    sync::ServeOnRequest,
};

async fn put(doc: &DocHandle, key: &'static str, value: i64) {
    doc.change(move |tx| tx.put(ROOT, key, value))
        .await
        .unwrap();
}

/// Joins two repos; `dialer` dials `listener`.
async fn join(dialer: &Repo, listener: &Repo) {
    let (a, b) = Transport::pair();
    listener.connect(a, Role::Accept).await.unwrap();
    dialer.connect(b, Role::Dial).await.unwrap();
}

/// Waits until a document offered to the relay is in its storage.
async fn relay_stores(relay: &Repo, id: DocumentId) {
    eventually("the relay stores the document", || async {
        relay.list().await.unwrap().iter().any(|meta| meta.id == id)
    })
    .await;
}

fn relay_config() -> RepoConfig {
    let mut config = RepoConfig::default();
    config.sync = config.sync.with_share_policy(Arc::new(ServeOnRequest));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_repos_in_one_process_sync_through_an_in_memory_channel() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    join(&bob, &alice).await;

    let doc = alice.create().await.unwrap();
    put(&doc, "title", 1).await;
    let on_bob = bob.find(doc.id()).await.unwrap();
    eventually("bob has the title", || async {
        number(&on_bob, "title") == Some(1)
    })
    .await;

    // Bob's change reaches alice's subscribers, marked as coming from bob.
    let mut events = doc.subscribe();
    put(&on_bob, "reply", 2).await;
    let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .unwrap()
        .unwrap();
    let DocEvent::Changed(change) = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        change.origin,
        ChangeOrigin::Remote {
            peer: bob.peer_id().clone()
        }
    );
    assert!(!change.patches.is_empty());
    assert_eq!(number(&doc, "reply"), Some(2));
    assert_eq!(doc.heads(), on_bob.heads());

    // What bob received is in his SQLite file: it loads with no peer.
    let id = doc.id();
    drop((doc, on_bob));
    alice.close().await.unwrap();
    bob.close().await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    let reloaded = bob.find(id).await.unwrap();
    assert_eq!(
        (number(&reloaded, "title"), number(&reloaded, "reply")),
        (Some(1), Some(2))
    );
    bob.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sync_through_a_relay_that_serves_only_what_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = relay_config();
    // A find answered by the timeout would take a minute: the answer must come at once.
    config.sync.request_timeout_ms = 60_000;
    let relay = Repo::open_with(dir.path().join("relay.db"), config)
        .await
        .unwrap();
    let alice = Repo::in_memory();
    let bob = Repo::in_memory();
    join(&alice, &relay).await;
    join(&bob, &relay).await;

    let doc = alice.create().await.unwrap();
    put(&doc, "title", 7).await;
    // Alice offers her document; the relay stores it.
    eventually("the relay stores alice's document", || async {
        relay
            .list()
            .await
            .unwrap()
            .iter()
            .any(|meta| meta.id == doc.id())
    })
    .await;
    let on_bob = bob.find(doc.id()).await.unwrap();
    eventually("bob has it", || async {
        number(&on_bob, "title") == Some(7)
    })
    .await;

    // Live both ways through the relay.
    put(&on_bob, "from-bob", 8).await;
    eventually("alice sees bob's change", || async {
        number(&doc, "from-bob") == Some(8)
    })
    .await;

    let started = tokio::time::Instant::now();
    let missing = bob.find(DocumentId::random()).await;
    assert!(
        matches!(missing, Err(Error::DocumentNotFound(_))),
        "{missing:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered by the timeout, not the relay"
    );
    for repo in [alice, bob, relay] {
        repo.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_states_are_kept_in_sqlite_per_peer_storage() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = relay_config();
    config.sync.sync_state_save_interval_ms = 0;
    let relay_path = dir.path().join("relay.db");
    let relay = Repo::open_with(&relay_path, config).await.unwrap();
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    join(&alice, &relay).await;
    let doc = alice.create().await.unwrap();
    put(&doc, "title", 1).await;
    eventually("the relay stores the document", || async {
        relay
            .list()
            .await
            .unwrap()
            .iter()
            .any(|meta| meta.id == doc.id())
    })
    .await;
    let id = doc.id();
    drop(doc);
    alice.close().await.unwrap();
    relay.close().await.unwrap();

    let db = rusqlite::Connection::open(&relay_path).unwrap();
    let peers: Vec<String> = db
        .prepare("SELECT peer FROM sync_states WHERE document_id = ?1")
        .unwrap()
        .query_map([id.as_bytes().as_slice()], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(peers, vec![alice.storage_id().to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_garbage_is_cut_off_and_the_others_carry_on() {
    use weft::wire::{self, Message};
    let dir = tempfile::tempdir().unwrap();
    let relay = Repo::open_with(dir.path().join("relay.db"), relay_config())
        .await
        .unwrap();
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    join(&alice, &relay).await;
    join(&bob, &relay).await;
    let doc = alice.create().await.unwrap();
    put(&doc, "title", 1).await;
    relay_stores(&relay, doc.id()).await;
    let on_bob = bob.find(doc.id()).await.unwrap();

    // Mallory speaks raw frames: a valid join, then bytes that are not CBOR.
    let (relay_out, mut from_relay) = tokio::sync::mpsc::unbounded_channel();
    let (to_relay, relay_in) = tokio::sync::mpsc::unbounded_channel();
    relay
        .connect(Transport::from_channels(relay_out, relay_in), Role::Accept)
        .await
        .unwrap();
    to_relay
        .send(wire::encode(&Message::Join {
            sender: "mallory".into(),
            metadata: None,
            supported_versions: Some(vec!["1".into()]),
        }))
        .unwrap();
    to_relay.send(vec![0xff, 0x00, 0x13]).unwrap();
    let mut replies = Vec::new();
    // The relay ends her stream once it has sent its error: `None`, not a timeout.
    loop {
        match tokio::time::timeout(Duration::from_secs(20), from_relay.recv()).await {
            Ok(Some(frame)) => replies.push(wire::decode(&frame).unwrap().unwrap()),
            Ok(None) => break,
            Err(_) => panic!("the relay did not close mallory's connection: {replies:?}"),
        }
    }
    assert!(
        matches!(replies.first(), Some(Message::Peer { .. })),
        "{replies:?}"
    );
    assert!(
        matches!(replies.last(), Some(Message::Error { .. })),
        "{replies:?}"
    );
    // The relay closed her connection (her stream ended above) and serves the others.
    put(&doc, "after", 2).await;
    eventually("bob still syncs", || async {
        number(&on_bob, "after") == Some(2)
    })
    .await;
    for repo in [alice, bob, relay] {
        repo.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_empty_document_can_be_found_by_peers() {
    // automerge-repo gives a new document a first (empty) change; without it peers would
    // take the document for one its creator does not have.
    let relay = Repo::in_memory_with(relay_config());
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    join(&alice, &relay).await;
    join(&bob, &relay).await;
    let doc = alice.create().await.unwrap();
    assert_eq!(doc.heads().len(), 1);
    eventually("the relay has it", || async {
        relay.find(doc.id()).await.is_ok()
    })
    .await;
    let on_bob = bob.find(doc.id()).await.unwrap();
    assert_eq!(on_bob.heads(), doc.heads());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restarted_from_its_sqlite_file_resyncs_with_its_devices() {
    let dir = tempfile::tempdir().unwrap();
    let relay_path = dir.path().join("relay.db");
    let relay = Repo::open_with(&relay_path, relay_config()).await.unwrap();
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    join(&alice, &relay).await;
    join(&bob, &relay).await;
    let doc = alice.create().await.unwrap();
    put(&doc, "title", 1).await;
    relay_stores(&relay, doc.id()).await;
    let on_bob = bob.find(doc.id()).await.unwrap();

    // The relay goes away; both devices keep editing offline.
    relay.close().await.unwrap();
    drop(relay);
    put(&doc, "offline-alice", 2).await;
    put(&on_bob, "offline-bob", 3).await;

    // It comes back from its file; the devices dial it again.
    let relay = Repo::open_with(&relay_path, relay_config()).await.unwrap();
    join(&alice, &relay).await;
    join(&bob, &relay).await;
    eventually("both devices converge", || async {
        number(&doc, "offline-bob") == Some(3) && number(&on_bob, "offline-alice") == Some(2)
    })
    .await;
    assert_eq!(doc.heads(), on_bob.heads());
    for repo in [alice, bob, relay] {
        repo.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_payloads_reach_the_other_devices_subscribers() {
    let relay = Repo::in_memory_with(relay_config());
    let (alice, bob) = (Repo::in_memory(), Repo::in_memory());
    join(&alice, &relay).await;
    join(&bob, &relay).await;
    let doc = alice.create().await.unwrap();
    eventually("the relay has it", || async {
        relay.find(doc.id()).await.is_ok()
    })
    .await;
    let on_bob = bob.find(doc.id()).await.unwrap();
    let mut events = on_bob.subscribe();
    // Twice: the second (a higher count in alice's session) must not be taken for a repeat.
    for payload in [vec![0xa1, 0x61, 0x78, 0x01], vec![0xa1, 0x61, 0x78, 0x02]] {
        doc.broadcast(payload.clone());
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .unwrap()
            .unwrap();
        let DocEvent::Ephemeral { from, data } = event else {
            panic!("{event:?}")
        };
        assert_eq!((&from, data), (alice.peer_id(), payload));
    }
}

/// Devices and a relay on SQLite files, through a seeded schedule of edits, dropped
/// connections and restarts (close and reopen from the file), then reconnected: every
/// document ends the same everywhere and holds every acknowledged edit. The schedule is
/// seeded (`WEFT_SEED`); thread timing is not, so this complements the deterministic
/// simulation of the engine by driving the repo's own threads and SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repos_on_sqlite_converge_through_disconnects_and_restarts() {
    let seed = std::env::var("WEFT_SEED").map_or(7, |s| s.parse().unwrap());
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(format!("{name}.db"));
    let relay_path = path("relay");
    let mut relay = Repo::open_with(&relay_path, relay_config()).await.unwrap();
    let names = ["ann", "ben", "cat"];
    let mut devices = Vec::new();
    for name in names {
        let repo = Repo::open(path(name)).await.unwrap();
        join(&repo, &relay).await;
        devices.push(repo);
    }
    // Two documents, made by ann, known to everyone by id.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let doc = devices[0].create().await.unwrap();
        ids.push(doc.id());
    }
    for id in &ids {
        relay_stores(&relay, *id).await;
    }
    let mut acknowledged: Vec<(DocumentId, String, i64)> = Vec::new();
    for step in 0..60 {
        let device = rng.below(3) as usize;
        match rng.below(10) {
            0 => {
                // A restart: close and reopen from the file, then dial the relay again.
                devices[device].close().await.unwrap();
                devices[device] = Repo::open(path(names[device])).await.unwrap();
                join(&devices[device], &relay).await;
            }
            1 => {
                // The relay restarts; everyone dials it again.
                relay.close().await.unwrap();
                relay = Repo::open_with(&relay_path, relay_config()).await.unwrap();
                for repo in &devices {
                    join(repo, &relay).await;
                }
            }
            _ => {
                let id = ids[rng.below(2) as usize];
                // A device finds the document locally or through the relay; if the relay
                // has not got it yet, it edits another time.
                let Ok(doc) = devices[device].find(id).await else {
                    continue;
                };
                let key = format!("{}-{step}", names[device]);
                let value = step as i64;
                let written = key.clone();
                doc.change(move |tx| tx.put(ROOT, written.as_str(), value))
                    .await
                    .unwrap();
                acknowledged.push((id, key, value));
            }
        }
    }
    assert!(
        acknowledged.len() >= 20,
        "only {} edits (seed {seed})",
        acknowledged.len()
    );
    // Everyone reconnected (a restart above already did; join again to be sure each device
    // has a live connection to the current relay).
    for repo in &devices {
        join(repo, &relay).await;
    }
    for id in &ids {
        let handles: Vec<DocHandle> = {
            let mut handles = Vec::new();
            for repo in &devices {
                handles.push(repo.find(*id).await.unwrap());
            }
            handles
        };
        eventually("every device has the same heads", || async {
            handles.iter().all(|h| h.heads() == handles[0].heads())
        })
        .await;
        for (doc, key, value) in &acknowledged {
            if doc == id {
                for (handle, name) in handles.iter().zip(names) {
                    assert_eq!(
                        number(handle, key),
                        Some(*value),
                        "{name} lacks {key} (seed {seed})"
                    );
                }
            }
        }
    }
    for repo in devices.into_iter().chain([relay]) {
        repo.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_that_created_one_id_offline_merge_when_they_meet() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Repo::open(dir.path().join("alice.db")).await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    let id = DocumentId::random();

    // Each creates the document on its own, never having met, with keys of its own.
    let on_alice = alice
        .create_with_id(id, |tx| tx.put(ROOT, "from alice", 1).map(|_| ()))
        .await
        .unwrap();
    let on_bob = bob
        .create_with_id(id, |tx| tx.put(ROOT, "from bob", 2).map(|_| ()))
        .await
        .unwrap();
    assert_eq!(on_alice.id(), id);

    // Again, here: refused, whether loaded or only stored; the first is untouched.
    let again = alice.create_with_id(id, |_| Ok(())).await;
    assert!(
        matches!(again, Err(Error::DocumentExists(found)) if found == id),
        "{again:?}"
    );
    drop(on_bob);
    bob.close().await.unwrap();
    let bob = Repo::open(dir.path().join("bob.db")).await.unwrap();
    let again = bob.create_with_id(id, |_| Ok(())).await;
    assert!(
        matches!(again, Err(Error::DocumentExists(found)) if found == id),
        "{again:?}"
    );
    let on_bob = bob.find(id).await.unwrap();
    assert_eq!(number(&on_bob, "from bob"), Some(2));

    join(&bob, &alice).await;
    for (who, doc) in [("alice", &on_alice), ("bob", &on_bob)] {
        eventually(&format!("{who} has both keys"), || async {
            (number(doc, "from alice"), number(doc, "from bob")) == (Some(1), Some(2))
        })
        .await;
    }
    assert_eq!(on_alice.heads(), on_bob.heads());

    // A deleted id is not created again behind the app's back.
    let other = alice.create().await.unwrap().id();
    alice.delete(other).await.unwrap();
    let recreated = alice.create_with_id(other, |_| Ok(())).await;
    assert!(
        matches!(recreated, Err(Error::DocumentDeleted(found)) if found == other),
        "{recreated:?}"
    );
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_asked_of_peers_in_vain_can_then_be_created_under_its_id() {
    let alice = Repo::in_memory();
    let bob = Repo::in_memory();
    join(&alice, &bob).await;
    let id = DocumentId::random();

    // Nobody has it: the find fails, and the sync driver keeps asking for it.
    let missing = alice.find(id).await;
    assert!(
        matches!(missing, Err(Error::DocumentNotFound(_))),
        "{missing:?}"
    );

    // So the app creates it; it is the one the driver syncs: bob gets it on asking.
    let created = alice
        .create_with_id(id, |tx| tx.put(ROOT, "made", 1).map(|_| ()))
        .await
        .unwrap();
    let on_bob = common::find_eventually(&bob, id).await;
    eventually("bob has alice's first change", || async {
        number(&on_bob, "made") == Some(1)
    })
    .await;
    // And what alice writes next reaches bob (one document, not a second copy).
    put(&created, "later", 2).await;
    eventually("bob has alice's next change", || async {
        number(&on_bob, "later") == Some(2)
    })
    .await;

    // Created again while it is loaded: refused, and nothing changed.
    let again = alice
        .create_with_id(id, |tx| tx.put(ROOT, "made", 9).map(|_| ()))
        .await;
    assert!(matches!(again, Err(Error::DocumentExists(_))), "{again:?}");
    assert_eq!(number(&created, "made"), Some(1));
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

/// automerge-repo peers ask for a document once per connection: one that was told it is
/// unavailable is sent it when it arrives, even if another peer's request loaded the
/// relay's placeholder (and let it go) in between.
#[tokio::test]
async fn peers_that_asked_for_a_missing_document_are_sent_it_when_it_arrives() {
    let relay = Repo::in_memory_with(relay_config());
    let (first, second, device) = (Repo::in_memory(), Repo::in_memory(), Repo::in_memory());
    for repo in [&first, &second, &device] {
        join(repo, &relay).await;
    }
    let id = DocumentId::random();
    assert!(matches!(
        first.find(id).await,
        Err(Error::DocumentNotFound(_))
    ));
    assert!(matches!(
        second.find(id).await,
        Err(Error::DocumentNotFound(_))
    ));
    device
        .create_with_id(id, |tx| tx.put(ROOT, "late", 1).map(drop))
        .await
        .unwrap();
    for (name, repo) in [("the first", &first), ("the second", &second)] {
        eventually(&format!("{name} asker is sent the document"), || async {
            repo.list().await.unwrap().iter().any(|meta| meta.id == id)
        })
        .await;
    }
}
