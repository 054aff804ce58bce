//! The sync engine's protocol, scenario by scenario: replicas and a relay joined by the
//! lossless test pump (`common/pump.rs`), and an outside end that speaks raw frames.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::sync::Arc;

use common::pump::{OUTSIDE, Pump};
use weft::{
    DocumentId, PeerId, StorageId,
    automerge::sync,
    automerge::{Automerge, AutomergeError, ROOT, ReadDoc, Value, transaction::Transactable},
    sync::{Access, Input, LocalChange, Notification, Scope, ServeOnRequest, SyncConfig},
    wire::{self, Message, PeerMetadata},
};

fn config(name: &str) -> SyncConfig {
    SyncConfig::new(
        PeerId::new(name),
        Some(StorageId::new(format!("storage-{name}"))),
    )
    .deterministic(format!("{name}-session"), name.len() as u64)
}

fn device(pump: &mut Pump, name: &str) -> usize {
    pump.add(config(name))
}

fn relay(pump: &mut Pump, name: &str) -> usize {
    pump.add(config(name).with_share_policy(Arc::new(ServeOnRequest)))
}

fn put(pump: &mut Pump, node: usize, document: DocumentId, key: &str, value: i64) {
    let key = key.to_owned();
    let change = LocalChange::new(move |tx| {
        tx.put(ROOT, key.as_str(), value)?;
        Ok(())
    });
    pump.input(node, Input::Change { document, change });
    pump.run();
}

fn create(pump: &mut Pump, node: usize) -> DocumentId {
    let document = DocumentId::random();
    pump.input(node, Input::Create { document });
    pump.run();
    put(pump, node, document, "title", 1);
    document
}

fn doc(pump: &Pump, node: usize, document: DocumentId) -> &Automerge {
    pump.nodes[node]
        .engine
        .document(document)
        .expect("the document is loaded")
}

fn value(pump: &Pump, node: usize, document: DocumentId, key: &str) -> Option<i64> {
    let doc = pump.nodes[node].engine.document(document)?;
    match doc.get(ROOT, key).unwrap()? {
        (Value::Scalar(v), _) => v.as_i64(),
        _ => None,
    }
}

fn open(pump: &mut Pump, node: usize, document: DocumentId) {
    pump.input(node, Input::Open { document });
    pump.run();
}

/// Messages a node sent on a link, decoded.
fn sent(pump: &Pump, link: usize, end: usize) -> Vec<Message> {
    pump.wire_log
        .iter()
        .filter(|(l, e, _)| *l == link && *e == end)
        .map(|(_, _, bytes)| wire::decode(bytes).unwrap().unwrap())
        .collect()
}

/// Alice and bob, each linked to a relay, sharing a document made by alice.
fn trio() -> (Pump, usize, usize, usize, DocumentId) {
    let mut pump = Pump::default();
    let (alice, relay, bob) = (
        device(&mut pump, "alice"),
        relay(&mut pump, "relay"),
        device(&mut pump, "bob"),
    );
    pump.connect(alice, relay);
    pump.connect(bob, relay);
    let document = create(&mut pump, alice);
    open(&mut pump, bob, document);
    (pump, alice, relay, bob, document)
}

#[test]
fn devices_sync_a_document_through_a_relay_both_ways() {
    let (mut pump, alice, relay, bob, document) = trio();
    assert_eq!(value(&pump, bob, document, "title"), Some(1));
    put(&mut pump, bob, document, "from-bob", 2);
    assert_eq!(value(&pump, alice, document, "from-bob"), Some(2));
    assert_eq!(
        doc(&pump, alice, document).get_heads(),
        doc(&pump, bob, document).get_heads()
    );
    assert_eq!(
        doc(&pump, relay, document).get_heads(),
        doc(&pump, bob, document).get_heads()
    );
    // Alice heard of it as a remote change from the relay, and everyone stored it.
    assert!(pump.nodes[alice].notes.iter().any(|n| matches!(
        n,
        Notification::RemoteChange { document: d, from, .. } if *d == document && from.as_str() == "relay"
    )));
    assert!(pump.nodes[relay].store.docs.contains_key(&document));
}

#[test]
fn a_device_offers_its_documents_but_a_relay_serves_only_what_is_asked_for() {
    let mut pump = Pump::default();
    let (alice, relay, bob) = (
        device(&mut pump, "alice"),
        relay(&mut pump, "relay"),
        device(&mut pump, "bob"),
    );
    let document = create(&mut pump, alice);
    // Alice offers her open document as soon as she connects.
    pump.connect(alice, relay);
    assert_eq!(value(&pump, relay, document, "title"), Some(1));
    // Bob connects; the relay holds the document but says nothing of it.
    let bob_link = pump.connect(bob, relay);
    assert!(
        sent(&pump, bob_link, 1)
            .iter()
            .all(|m| m.document().is_none()),
        "{:?}",
        sent(&pump, bob_link, 1)
    );
    assert!(pump.nodes[bob].engine.document(document).is_none());
    // Asked by id, it serves it.
    open(&mut pump, bob, document);
    assert_eq!(value(&pump, bob, document, "title"), Some(1));
}

#[test]
fn asking_for_a_document_nobody_has_is_answered_at_once() {
    let mut pump = Pump::default();
    let (alice, relay) = (device(&mut pump, "alice"), relay(&mut pump, "relay"));
    pump.connect(alice, relay);
    let missing = DocumentId::random();
    open(&mut pump, alice, missing);
    // No time passed: the relay answered as soon as its storage said it has nothing.
    assert!(
        pump.nodes[alice]
            .notes
            .contains(&Notification::DocumentUnavailable { document: missing })
    );
    let to_alice = sent(&pump, 0, 1);
    assert!(
        to_alice
            .iter()
            .any(|m| matches!(m, Message::DocUnavailable { document, .. } if *document == missing))
    );
}

#[test]
fn a_relay_asks_its_upstream_before_answering_unavailable() {
    let mut pump = Pump::default();
    // `edge` offers documents to its upstream (a device-like policy towards it).
    let (alice, edge, upstream) = (
        device(&mut pump, "alice"),
        device(&mut pump, "edge"),
        relay(&mut pump, "upstream"),
    );
    pump.connect(alice, edge);
    pump.connect(edge, upstream);
    let missing = DocumentId::random();
    open(&mut pump, alice, missing);
    assert!(
        pump.nodes[alice]
            .notes
            .contains(&Notification::DocumentUnavailable { document: missing })
    );
    // And a document only the upstream has reaches alice through the edge.
    let carol = device(&mut pump, "carol");
    pump.connect(carol, upstream);
    let document = create(&mut pump, carol);
    open(&mut pump, alice, document);
    assert_eq!(value(&pump, alice, document, "title"), Some(1));
}

fn join(sender: &str, versions: Option<Vec<&str>>) -> Vec<u8> {
    wire::encode(&Message::Join {
        sender: PeerId::new(sender),
        metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
        }),
        supported_versions: versions.map(|v| v.into_iter().map(String::from).collect()),
    })
}

#[test]
fn the_handshake_negotiates_version_1_and_refuses_others() {
    let mut pump = Pump::default();
    let relay = relay(&mut pump, "relay");
    // An old peer without a version list is taken as version 1, as the JS server does.
    let old = pump.connect(OUTSIDE, relay);
    pump.inject(old, join("old", None));
    let Message::Peer {
        selected_version,
        target,
        metadata,
        ..
    } = &pump.outside_inbox[&old][0]
    else {
        panic!("{:?}", pump.outside_inbox[&old])
    };
    assert_eq!((selected_version.as_str(), target.as_str()), ("1", "old"));
    assert_eq!(
        metadata.as_ref().unwrap().storage_id,
        Some(StorageId::new("storage-relay"))
    );
    // A peer that speaks only version 2 is told so and disconnected.
    let future = pump.connect(OUTSIDE, relay);
    pump.inject(future, join("future", Some(vec!["2"])));
    let Message::Error { message, .. } = &pump.outside_inbox[&future][0] else {
        panic!()
    };
    assert!(
        message.contains("unsupported protocol version"),
        "{message}"
    );
    assert!(pump.closed.iter().any(|(link, _)| *link == future));
    assert!(!pump.closed.iter().any(|(link, _)| *link == old));
}

#[test]
fn a_dialler_refuses_a_version_it_did_not_offer() {
    let mut pump = Pump::default();
    let alice = device(&mut pump, "alice");
    // Alice dials the outside end, which answers with version 2.
    let link = pump.connect(alice, OUTSIDE);
    assert!(matches!(pump.outside_inbox[&link][0], Message::Join { .. }));
    pump.inject(
        link,
        wire::encode(&Message::Peer {
            sender: PeerId::new("server"),
            target: PeerId::new("alice"),
            metadata: None,
            selected_version: "2".into(),
        }),
    );
    assert!(
        pump.closed
            .iter()
            .any(|(l, reason)| *l == link && reason.contains("version"))
    );
}

/// A document id that is not one: 20 bytes in bs58check.
const BAD_ID: &str = "1111111111111111111114oLvT2";

#[test]
fn bad_input_ends_that_peer_alone() {
    let (mut pump, alice, relay, bob, document) = trio();
    let valid_sync = |data: Vec<u8>| {
        wire::encode(&Message::Sync {
            sender: PeerId::new("mallory"),
            target: PeerId::new("relay"),
            document,
            data,
        })
    };
    let malformed_id = common::cbor_map(&[
        ("type", &common::text("sync")),
        ("senderId", &common::text("mallory")),
        ("targetId", &common::text("relay")),
        ("documentId", &common::text(BAD_ID)),
        ("data", &[0x41, 0x42]),
    ]);
    let cases: Vec<(&str, bool, Vec<u8>, &str)> = vec![
        (
            "a sync message for a malformed document id",
            true,
            malformed_id,
            "documentId",
        ),
        (
            "garbage automerge sync bytes",
            true,
            valid_sync(vec![0x42, 0xff, 0xff, 0x00]),
            "sync message",
        ),
        (
            "a message before join",
            false,
            valid_sync(automerge_sync_message()),
            "before the handshake",
        ),
        (
            "a second join",
            true,
            join("mallory", Some(vec!["1"])),
            "already set up",
        ),
        (
            "bytes that are not CBOR",
            true,
            vec![0xff, 0x00, 0x13],
            "CBOR",
        ),
    ];
    for (name, joined, bytes, expected) in cases {
        let link = pump.connect(OUTSIDE, relay);
        if joined {
            pump.inject(link, join("mallory", Some(vec!["1"])));
        }
        pump.inject(link, bytes);
        let inbox = &pump.outside_inbox[&link];
        let Some(Message::Error { message, .. }) = inbox.last() else {
            panic!("{name}: no error sent: {inbox:?}")
        };
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            pump.closed.iter().any(|(l, _)| *l == link),
            "{name}: not closed"
        );
        let failed = pump.nodes[relay].notes.iter().any(|n| {
            matches!(n, Notification::PeerFailed { connection, .. }
                if *connection == pump.links[link].ends[1].1)
        });
        assert!(failed, "{name}: no PeerFailed for this connection");
        // The others are undisturbed: a change still goes from alice to bob.
        put(&mut pump, alice, document, name, 7);
        assert_eq!(value(&pump, bob, document, name), Some(7), "{name}");
    }
}

/// A valid automerge sync message (the first message of an empty document).
/// A `request` from an empty outside peer ("friend") for `document`.
fn automerge_request(document: DocumentId) -> Vec<u8> {
    wire::encode(&Message::Request {
        sender: PeerId::new("friend"),
        target: PeerId::new("relay"),
        document,
        data: automerge_sync_message(),
    })
}

fn automerge_sync_message() -> Vec<u8> {
    use weft::automerge::sync::{State, SyncDoc};
    Automerge::new()
        .generate_sync_message(&mut State::new())
        .unwrap()
        .encode()
}

#[test]
fn unknown_message_types_are_ignored() {
    let mut pump = Pump::default();
    let relay = relay(&mut pump, "relay");
    let link = pump.connect(OUTSIDE, relay);
    pump.inject(link, join("js", Some(vec!["1"])));
    pump.inject(
        link,
        common::cbor_map(&[
            ("type", &common::text("x-future")),
            ("senderId", &common::text("js")),
        ]),
    );
    assert!(pump.closed.is_empty());
    assert_eq!(pump.outside_inbox[&link].len(), 1); // just the `peer` reply
}

#[test]
fn ephemeral_messages_reach_every_peer_once_with_their_origin() {
    let mut pump = Pump::default();
    let (alice, relay, bob, carol) = (
        device(&mut pump, "alice"),
        relay(&mut pump, "relay"),
        device(&mut pump, "bob"),
        device(&mut pump, "carol"),
    );
    pump.connect(alice, relay);
    pump.connect(bob, relay);
    pump.connect(carol, relay);
    // Alice and bob also meet directly: bob hears alice twice over, and must report it once.
    pump.connect(alice, bob);
    let (first, second) = (create(&mut pump, alice), create(&mut pump, alice));
    for document in [first, second] {
        open(&mut pump, bob, document);
        open(&mut pump, carol, document);
    }
    // Several messages on one document, then one on another: the count runs per session,
    // so the last one must not look like an old one.
    for (document, payload) in [(first, 1u8), (first, 2), (first, 3), (second, 4)] {
        pump.input(
            alice,
            Input::Broadcast {
                document,
                data: vec![payload],
            },
        );
        pump.run();
    }
    for node in [bob, carol] {
        let heard: Vec<_> = pump.nodes[node]
            .notes
            .iter()
            .filter_map(|n| match n {
                Notification::Ephemeral {
                    from,
                    data,
                    document,
                } => Some((from.as_str(), data.clone(), *document)),
                _ => None,
            })
            .collect();
        assert_eq!(
            heard,
            vec![
                ("alice", vec![1], first),
                ("alice", vec![2], first),
                ("alice", vec![3], first),
                ("alice", vec![4], second),
            ],
            "node {node}"
        );
    }
    assert!(
        !pump.nodes[alice]
            .notes
            .iter()
            .any(|n| matches!(n, Notification::Ephemeral { .. }))
    );
}

#[test]
fn a_relay_gossips_heads_to_subscribers_of_a_storage() {
    let mut pump = Pump::default();
    let (alice, relay) = (device(&mut pump, "alice"), relay(&mut pump, "relay"));
    pump.connect(alice, relay);
    let document = create(&mut pump, alice);
    // A JS-like peer syncs the document and subscribes to alice's storage.
    let js = pump.connect(OUTSIDE, relay);
    pump.inject(js, join("js", Some(vec!["1"])));
    pump.inject(
        js,
        wire::encode(&Message::Request {
            sender: PeerId::new("js"),
            target: PeerId::new("relay"),
            document,
            data: automerge_sync_message(),
        }),
    );
    pump.inject(
        js,
        wire::encode(&Message::RemoteSubscriptionChange {
            sender: PeerId::new("js"),
            target: PeerId::new("relay"),
            add: vec![StorageId::new("storage-alice")],
            remove: vec![],
        }),
    );
    pump.now = 1_795_000_000_000;
    put(&mut pump, alice, document, "gossip", 1);
    let heads = doc(&pump, alice, document).get_heads();
    let gossip: Vec<_> = pump.outside_inbox[&js]
        .iter()
        .filter_map(|m| match m {
            Message::RemoteHeadsChanged {
                document: d,
                new_heads,
                ..
            } if *d == document => Some(new_heads.clone()),
            _ => None,
        })
        .collect();
    let last = gossip.last().expect("remote-heads-changed sent");
    assert_eq!(last[0].0, StorageId::new("storage-alice"));
    assert_eq!(last[0].1.heads, heads);
    assert_eq!(last[0].1.timestamp, 1_795_000_000_000);
}

#[test]
fn remote_changes_are_stored_before_they_are_forwarded() {
    let (mut pump, alice, relay, bob, document) = trio();
    // A slow disk on the relay: alice's change is applied there but goes no further.
    pump.nodes[relay].hold_storage = true;
    put(&mut pump, alice, document, "slow", 1);
    assert_eq!(value(&pump, relay, document, "slow"), Some(1));
    assert_eq!(value(&pump, bob, document, "slow"), None);
    pump.release_storage(relay);
    assert_eq!(value(&pump, bob, document, "slow"), Some(1));
    // A failing disk: nothing goes further until a retry stores it.
    pump.nodes[relay].fail_writes = true;
    put(&mut pump, alice, document, "failing", 2);
    pump.advance(5_000);
    assert_eq!(value(&pump, bob, document, "failing"), None);
    pump.nodes[relay].fail_writes = false;
    pump.advance(5_000);
    assert_eq!(value(&pump, bob, document, "failing"), Some(2));
    assert!(
        pump.nodes[relay]
            .notes
            .iter()
            .any(|n| matches!(n, Notification::Stored { .. }))
    );
}

/// Alice and bob, directly linked (bob dials), sharing a document made by alice.
fn pair() -> (Pump, usize, usize, usize, DocumentId) {
    let mut pump = Pump::default();
    let (alice, bob) = (device(&mut pump, "alice"), device(&mut pump, "bob"));
    let link = pump.connect(bob, alice);
    let document = create(&mut pump, alice);
    open(&mut pump, bob, document);
    (pump, alice, bob, link, document)
}

#[test]
fn a_reconnect_after_1000_changes_sends_little_more_than_the_changes() {
    let (mut pump, alice, bob, link, document) = pair();
    pump.disconnect(link);
    let before = doc(&pump, bob, document).get_heads();
    for i in 0..1000 {
        put(&mut pump, bob, document, &format!("k{i}"), i);
    }
    let missing: usize = doc(&pump, bob, document)
        .get_changes(&before)
        .iter()
        .map(|change| change.raw_bytes().len())
        .sum();
    // Both restart: what they know of each other comes from their stores.
    assert!(
        pump.nodes[alice]
            .store
            .sync_states
            .contains_key(&(document, StorageId::new("storage-bob")))
    );
    pump.restart(alice);
    pump.restart(bob);
    open(&mut pump, alice, document);
    open(&mut pump, bob, document);
    let sent_before = pump.wire_log.len();
    let link = pump.connect(bob, alice);
    let exchanged: usize = pump.wire_log[sent_before..]
        .iter()
        .filter(|(l, _, _)| *l == link)
        .map(|(_, _, bytes)| bytes.len())
        .sum();
    assert_eq!(value(&pump, alice, document, "k999"), Some(999));
    assert_eq!(
        doc(&pump, alice, document).get_heads(),
        doc(&pump, bob, document).get_heads()
    );
    let bound = missing * 13 / 10 + 1024;
    eprintln!(
        "reconnect: {exchanged} bytes exchanged for {missing} bytes of missing changes (bound {bound})"
    );
    assert!(exchanged <= bound, "{exchanged} > {bound}");
}

#[test]
fn an_empty_peer_gets_the_whole_compressed_document_in_the_first_round() {
    let mut pump = Pump::default();
    let (alice, bob) = (device(&mut pump, "alice"), device(&mut pump, "bob"));
    let document = create(&mut pump, alice);
    for i in 0..2000 {
        put(&mut pump, alice, document, &format!("k{}", i % 50), i);
    }
    let saved = doc(&pump, alice, document).save().len();
    let link = pump.connect(bob, alice);
    open(&mut pump, bob, document);
    assert_eq!(value(&pump, bob, document, "k49"), Some(1999));
    // Alice's frames to bob after the handshake (the first is `peer`).
    let to_bob: Vec<usize> = pump
        .wire_log
        .iter()
        .filter(|(l, end, _)| *l == link && *end == 1)
        .skip(1)
        .map(|(_, _, bytes)| bytes.len())
        .collect();
    let total: usize = to_bob.iter().sum();
    eprintln!(
        "first sync: {total} bytes in {:?} messages; save() is {saved} bytes",
        to_bob
    );
    assert!(total * 10 <= saved * 11, "{total} > 1.1 x {saved}");
}

/// Mallory may read and write only `hers`; the relay holds a document of alice's too.
fn relay_with_a_limited_peer() -> (Pump, usize, usize, usize, DocumentId, usize) {
    let mut pump = Pump::default();
    let (alice, relay, mallory) = (
        device(&mut pump, "alice"),
        relay(&mut pump, "relay"),
        device(&mut pump, "mallory"),
    );
    pump.connect(alice, relay);
    let private = create(&mut pump, alice);
    let hers = DocumentId::random();
    let link = pump.connect_with(
        mallory,
        relay,
        Access::new(Scope::none(), Scope::documents([hers])),
    );
    (pump, alice, relay, mallory, private, link)
}

#[test]
fn a_document_a_peer_may_not_read_is_answered_exactly_like_an_unknown_one() {
    let (mut pump, alice, relay, mallory, private, link) = relay_with_a_limited_peer();
    let unknown = DocumentId::random();
    open(&mut pump, mallory, private);
    open(&mut pump, mallory, unknown);
    let answers = sent(&pump, link, 1);
    // The same message, field for field, but for the id asked about.
    let as_unknown = |m: &Message, asked: DocumentId| match m {
        Message::DocUnavailable {
            sender,
            target,
            document,
        } if *document == asked => Some((sender.clone(), target.clone())),
        _ => None,
    };
    let forbidden: Vec<_> = answers
        .iter()
        .filter_map(|m| as_unknown(m, private))
        .collect();
    let missing: Vec<_> = answers
        .iter()
        .filter_map(|m| as_unknown(m, unknown))
        .collect();
    assert_eq!(forbidden.len(), 1, "{answers:?}");
    assert_eq!(forbidden, missing);
    assert_eq!(
        answers
            .iter()
            .filter(|m| m.document() == Some(private))
            .count(),
        1,
        "nothing else about it: {answers:?}"
    );
    assert_eq!(value(&pump, mallory, private, "title"), None);

    // A raw peer with the same access sends presence and heads gossip about it anyway:
    // the relay passes on none of it, and reports none of it.
    let raw = pump.connect_with(
        OUTSIDE,
        relay,
        Access::new(Scope::none(), Scope::documents([DocumentId::random()])),
    );
    pump.inject(raw, join("intruder", Some(vec!["1"])));
    let ephemeral = |sender: &str, count: u64| {
        wire::encode(&Message::Ephemeral {
            sender: PeerId::new(sender),
            target: PeerId::new("relay"),
            document: private,
            session: "s".to_owned(),
            count,
            data: vec![1],
        })
    };
    pump.inject(raw, ephemeral("intruder", 1));
    pump.inject(
        raw,
        wire::encode(&Message::RemoteHeadsChanged {
            sender: PeerId::new("intruder"),
            target: PeerId::new("relay"),
            document: private,
            new_heads: vec![(
                StorageId::new("storage-relay"),
                wire::RemoteHeads {
                    heads: Vec::new(),
                    timestamp: 1,
                },
            )],
        }),
    );
    let heard = |pump: &Pump, node: usize| {
        pump.nodes[node].notes.iter().any(|n| {
            matches!(
                n,
                Notification::Ephemeral { .. } | Notification::RemoteHeads { .. }
            )
        })
    };
    assert!(!heard(&pump, alice) && !heard(&pump, relay));
    // The same from a peer that may read it does arrive: the check above can fail.
    let allowed = pump.connect(OUTSIDE, relay);
    pump.inject(allowed, join("friend", Some(vec!["1"])));
    pump.inject(allowed, automerge_request(private));
    pump.inject(allowed, ephemeral("friend", 1));
    assert!(heard(&pump, alice));
}

#[test]
fn changes_from_a_read_only_peer_are_refused_and_it_keeps_receiving() {
    let mut pump = Pump::default();
    let (alice, relay, reader) = (
        device(&mut pump, "alice"),
        relay(&mut pump, "relay"),
        device(&mut pump, "reader"),
    );
    pump.connect(alice, relay);
    let document = create(&mut pump, alice);
    pump.connect_with(reader, relay, Access::read_only());
    open(&mut pump, reader, document);
    assert_eq!(value(&pump, reader, document, "title"), Some(1));

    // A weft reader writes: the relay's read-only sync state tells its automerge not to
    // send (and the relay would not apply); the pump settling shows they do not argue.
    put(&mut pump, reader, document, "forged", 1);
    assert_eq!(value(&pump, relay, document, "forged"), None);
    assert_eq!(value(&pump, alice, document, "forged"), None);
    // It still hears alice's changes.
    put(&mut pump, alice, document, "after", 7);
    assert_eq!(value(&pump, reader, document, "after"), Some(7));

    // A peer that sends changes anyway (an older automerge ignores the flag): nothing is
    // applied, stored or forwarded, and it is told why once, however often it tries.
    let outside = pump.connect_with(OUTSIDE, relay, Access::read_only());
    pump.inject(outside, join("writer", Some(vec!["1"])));
    for n in 0..3 {
        let mut forged = doc(&pump, relay, document).fork();
        forged
            .transact::<_, _, AutomergeError>(|tx| {
                tx.put(ROOT, "forged", n)?;
                Ok(())
            })
            .unwrap();
        let change = forged.get_last_local_change().unwrap().raw_bytes().to_vec();
        let message = sync::Message {
            heads: forged.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: vec![change].into(),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        pump.inject(
            outside,
            wire::encode(&Message::Sync {
                sender: PeerId::new("writer"),
                target: PeerId::new("relay"),
                document,
                data: message.encode(),
            }),
        );
    }
    assert_eq!(value(&pump, relay, document, "forged"), None);
    assert_eq!(value(&pump, alice, document, "forged"), None);
    let errors: Vec<_> = pump.outside_inbox[&outside]
        .iter()
        .filter_map(|m| match m {
            Message::Error { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("may read the document but not write it"),
        "{errors:?}"
    );
    assert!(!pump.closed.iter().any(|(link, _)| *link == outside));
}
