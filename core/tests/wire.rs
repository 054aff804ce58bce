//! The wire codec against frames the official automerge-repo 2.5.6 packages put on a real
//! WebSocket (`fixtures/wire-frames.json`, made by `tests/js/make-wire-fixtures.mjs`), and
//! weft's encodings decoded by automerge-repo's own decoder (`tests/js/decode-frames.mjs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::path::PathBuf;

use serde_json::{Map, Value, json};
use weft::{
    DocumentId, PeerId, StorageId,
    automerge::ChangeHash,
    wire::{self, DecodeError, Limits, Message, PeerMetadata, RemoteHeads},
};

fn fixtures() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire-frames.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixtures' JSON view of a decoded frame, with JS `undefined` (an absent field) dropped.
fn without_undefined(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| **v != json!({"$undefined": true}))
                .map(|(k, v)| (k.clone(), without_undefined(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_undefined).collect()),
        other => other.clone(),
    }
}

fn bs58_head(head: &ChangeHash) -> String {
    // The bs58check text of a head is what a heads-pinned URL carries.
    let url = weft::AutomergeUrl::new(DocumentId::from_bytes([0; 16])).with_heads(&[*head]);
    url.to_string().split('#').nth(1).unwrap().to_owned()
}

/// The same JSON view of a decoded message, built from weft's values.
fn view(message: &Message) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(message.type_name()));
    let metadata = |md: &PeerMetadata| {
        let mut v = json!({"isEphemeral": md.is_ephemeral});
        if let Some(id) = &md.storage_id {
            v["storageId"] = json!(id.as_str());
        }
        v
    };
    let bytes = |b: &[u8]| json!({"$bytes": hex::encode(b)});
    match message {
        Message::Join {
            sender,
            metadata: md,
            supported_versions,
        } => {
            m.insert("senderId".into(), json!(sender.as_str()));
            if let Some(md) = md {
                m.insert("peerMetadata".into(), metadata(md));
            }
            if let Some(v) = supported_versions {
                m.insert("supportedProtocolVersions".into(), json!(v));
            }
        }
        Message::Peer {
            sender,
            target,
            metadata: md,
            selected_version,
        } => {
            m.insert("senderId".into(), json!(sender.as_str()));
            m.insert("targetId".into(), json!(target.as_str()));
            if let Some(md) = md {
                m.insert("peerMetadata".into(), metadata(md));
            }
            m.insert("selectedProtocolVersion".into(), json!(selected_version));
        }
        Message::Error {
            sender,
            target,
            message,
        } => {
            if let Some(s) = sender {
                m.insert("senderId".into(), json!(s.as_str()));
            }
            if let Some(t) = target {
                m.insert("targetId".into(), json!(t.as_str()));
            }
            m.insert("message".into(), json!(message));
        }
        Message::Request {
            sender,
            target,
            document,
            data,
        }
        | Message::Sync {
            sender,
            target,
            document,
            data,
        } => {
            m.insert("senderId".into(), json!(sender.as_str()));
            m.insert("targetId".into(), json!(target.as_str()));
            m.insert("documentId".into(), json!(document.to_string()));
            m.insert("data".into(), bytes(data));
        }
        Message::DocUnavailable {
            sender,
            target,
            document,
        } => {
            m.insert("senderId".into(), json!(sender.as_str()));
            m.insert("targetId".into(), json!(target.as_str()));
            m.insert("documentId".into(), json!(document.to_string()));
        }
        Message::Ephemeral {
            sender,
            target,
            document,
            session,
            count,
            data,
        } => {
            m.insert("senderId".into(), json!(sender.as_str()));
            m.insert("targetId".into(), json!(target.as_str()));
            m.insert("documentId".into(), json!(document.to_string()));
            m.insert("sessionId".into(), json!(session));
            m.insert("count".into(), json!(count));
            m.insert("data".into(), bytes(data));
        }
        Message::RemoteSubscriptionChange {
            sender,
            target,
            add,
            remove,
        } => {
            m.insert("senderId".into(), json!(sender.as_str()));
            m.insert("targetId".into(), json!(target.as_str()));
            let ids =
                |ids: &[StorageId]| json!(ids.iter().map(StorageId::as_str).collect::<Vec<_>>());
            m.insert("add".into(), ids(add));
            if !remove.is_empty() {
                m.insert("remove".into(), ids(remove));
            }
        }
        Message::RemoteHeadsChanged {
            sender,
            target,
            document,
            new_heads,
        } => {
            m.insert("senderId".into(), json!(sender.as_str()));
            m.insert("targetId".into(), json!(target.as_str()));
            m.insert("documentId".into(), json!(document.to_string()));
            let heads: Map<String, Value> = new_heads
                .iter()
                .map(|(storage, RemoteHeads { heads, timestamp })| {
                    let heads: Vec<String> = heads.iter().map(bs58_head).collect();
                    (
                        storage.as_str().to_owned(),
                        json!({"heads": heads, "timestamp": timestamp}),
                    )
                })
                .collect();
            m.insert("newHeads".into(), Value::Object(heads));
        }
        Message::Leave { sender } => {
            m.insert("senderId".into(), json!(sender.as_str()));
        }
    }
    Value::Object(m)
}

#[test]
fn frames_from_automerge_repo_decode_to_the_values_it_sent() {
    let fixtures = fixtures();
    let mut kinds: Vec<&str> = Vec::new();
    for frame in &fixtures {
        let name = frame["name"].as_str().unwrap();
        let bytes = hex::decode(frame["hex"].as_str().unwrap()).unwrap();
        let message = wire::decode(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: decoded as an unknown type"));
        let mut expected = without_undefined(&frame["decoded"]);
        // A `remove` that JS sent as undefined is an empty list to weft.
        if let Some(obj) = expected.as_object_mut()
            && obj.get("type") == Some(&json!("remote-subscription-change"))
            && !obj.contains_key("remove")
        {
            obj.remove("remove");
        }
        assert_eq!(view(&message), expected, "{name}");
        kinds.push(message.type_name());
    }
    for kind in [
        "join",
        "peer",
        "error",
        "request",
        "sync",
        "doc-unavailable",
        "ephemeral",
        "remote-subscription-change",
        "remote-heads-changed",
    ] {
        assert!(kinds.contains(&kind), "no fixture of type {kind}");
    }
}

#[test]
fn the_fixtures_hold_what_cbor_x_really_sends() {
    // So that the test above covers the leniencies it is meant to: non-minimal map headers,
    // `undefined`, and float64 timestamps.
    let fixtures = fixtures();
    let hex_of = |name: &str| {
        fixtures.iter().find(|f| f["name"] == name).unwrap()["hex"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for frame in &fixtures {
        // Every frame is a map with a 16-bit length header, even for a few keys.
        assert!(
            frame["hex"].as_str().unwrap().starts_with("b900"),
            "{}",
            frame["name"]
        );
    }
    // bob's join: "storageId" then undefined.
    assert!(hex_of("join-2").contains(&format!("{}f7", hex::encode("\x69storageId"))));
    // The timestamp key, then a float64.
    let heads = hex_of("remote-heads-changed-2");
    assert!(
        heads.contains(&format!("{}fb", hex::encode("\x69timestamp"))),
        "{heads}"
    );
    let Some(Message::RemoteHeadsChanged { new_heads, .. }) =
        wire::decode(&hex::decode(&heads).unwrap()).unwrap()
    else {
        panic!()
    };
    let expected = fixtures
        .iter()
        .find(|f| f["name"] == "remote-heads-changed-2")
        .unwrap()["decoded"]["newHeads"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["timestamp"]
        .as_u64()
        .unwrap();
    assert_eq!(new_heads[0].1.timestamp, expected);
}

fn samples() -> Vec<Message> {
    let document = DocumentId::random();
    let (a, b) = (PeerId::new("alice"), PeerId::new("relay"));
    let storage = StorageId::random();
    vec![
        Message::Join {
            sender: a.clone(),
            metadata: Some(PeerMetadata {
                storage_id: Some(storage.clone()),
                is_ephemeral: false,
            }),
            supported_versions: Some(vec!["1".into()]),
        },
        Message::Peer {
            sender: b.clone(),
            target: a.clone(),
            metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
            selected_version: "1".into(),
        },
        Message::Error {
            sender: Some(b.clone()),
            target: Some(a.clone()),
            message: "no".into(),
        },
        Message::Request {
            sender: a.clone(),
            target: b.clone(),
            document,
            data: vec![0x42, 0, 0, 1, 0, 0, 0, 2, 2, 0x84],
        },
        Message::Sync {
            sender: a.clone(),
            target: b.clone(),
            document,
            data: vec![0x43; 300],
        },
        Message::DocUnavailable {
            sender: b.clone(),
            target: a.clone(),
            document,
        },
        Message::Ephemeral {
            sender: a.clone(),
            target: b.clone(),
            document,
            session: "s1".into(),
            count: 7,
            data: vec![0xa1, 0x61, 0x78, 0x01],
        },
        Message::RemoteSubscriptionChange {
            sender: a.clone(),
            target: b.clone(),
            add: vec![storage.clone()],
            remove: vec![StorageId::random()],
        },
        Message::RemoteHeadsChanged {
            sender: b.clone(),
            target: a.clone(),
            document,
            new_heads: vec![(
                storage,
                RemoteHeads {
                    heads: vec![ChangeHash([9; 32])],
                    timestamp: 1_795_468_603_641,
                },
            )],
        },
    ]
}

#[test]
fn every_message_survives_encode_then_decode() {
    for message in samples().into_iter().chain([Message::Leave {
        sender: PeerId::new("x"),
    }]) {
        let bytes = wire::encode(&message);
        assert_eq!(wire::decode(&bytes).unwrap(), Some(message));
    }
}

#[test]
fn automerge_repo_decodes_what_weft_encodes() {
    let messages = samples();
    let frames: Vec<String> = messages
        .iter()
        .map(|m| hex::encode(wire::encode(m)))
        .collect();
    let Some(results) = common::run_node("decode-frames.mjs", &json!(frames)) else {
        return;
    };
    for (message, result) in messages.iter().zip(results.as_array().unwrap()) {
        assert_eq!(result["ok"], json!(true), "{message:?}: {result}");
        assert_eq!(result["decoded"], view(message), "{message:?}");
        let is_repo_message = !matches!(
            message,
            Message::Join { .. } | Message::Peer { .. } | Message::Error { .. }
        );
        assert_eq!(
            result["isRepoMessage"],
            json!(is_repo_message),
            "{message:?}"
        );
    }
}

#[test]
fn unknown_types_are_ignored_and_unknown_keys_skipped() {
    let unknown = common::cbor_map(&[
        ("type", &common::text("x-weft-auth")),
        ("senderId", &common::text("a")),
    ]);
    assert_eq!(wire::decode(&unknown).unwrap(), None);
    // An unknown key holding nested values, and the spec's `metadata` spelling.
    let join = common::cbor_map(&[
        ("type", &common::text("join")),
        ("extra", &[0x82, 0xa1, 0x61, 0x6b, 0x80, 0xf6]),
        ("senderId", &common::text("a")),
        (
            "metadata",
            &[
                0xa1, 0x6b, b'i', b's', b'E', b'p', b'h', b'e', b'm', b'e', b'r', b'a', b'l', 0xf5,
            ],
        ),
    ]);
    let Some(Message::Join {
        sender,
        metadata,
        supported_versions,
    }) = wire::decode(&join).unwrap()
    else {
        panic!()
    };
    assert_eq!(sender, PeerId::new("a"));
    assert_eq!(
        metadata,
        Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true
        })
    );
    assert_eq!(supported_versions, None);
}

#[test]
fn indefinite_maps_and_raw_byte_document_ids_are_accepted() {
    let document = DocumentId::random();
    let mut bytes = vec![0xbf];
    for (key, value) in [
        ("type", common::text("doc-unavailable")),
        ("senderId", common::text("a")),
        ("targetId", common::text("b")),
        ("documentId", [&[0x50][..], document.as_bytes()].concat()),
    ] {
        bytes.extend(common::text(key));
        bytes.extend(value);
    }
    bytes.push(0xff);
    assert_eq!(
        wire::decode(&bytes).unwrap(),
        Some(Message::DocUnavailable {
            sender: "a".into(),
            target: "b".into(),
            document
        })
    );
}

#[test]
fn bad_frames_are_refused_with_a_reason() {
    let sync = wire::encode(&samples()[4]);
    type Case = (&'static str, Vec<u8>, fn(&DecodeError) -> bool);
    let cases: Vec<Case> = vec![
        ("empty", vec![], |e| matches!(e, DecodeError::Cbor(_))),
        ("truncated", sync[..sync.len() - 5].to_vec(), |e| {
            matches!(e, DecodeError::Cbor(_))
        }),
        ("trailing bytes", [&sync[..], &[0]].concat(), |e| {
            matches!(e, DecodeError::Cbor(_))
        }),
        ("not a map", vec![0x83, 1, 2, 3], |e| {
            matches!(e, DecodeError::NotAMessage(_))
        }),
        (
            "no type",
            common::cbor_map(&[("senderId", &common::text("a"))]),
            |e| matches!(e, DecodeError::NotAMessage(_)),
        ),
        (
            "sync without documentId",
            common::cbor_map(&[
                ("type", &common::text("sync")),
                ("senderId", &common::text("a")),
                ("targetId", &common::text("b")),
                ("data", &[0x41, 0x42]),
            ]),
            |e| {
                matches!(
                    e,
                    DecodeError::MissingField {
                        field: "documentId",
                        ..
                    }
                )
            },
        ),
        (
            "malformed documentId",
            common::cbor_map(&[
                ("type", &common::text("doc-unavailable")),
                ("senderId", &common::text("a")),
                ("targetId", &common::text("b")),
                ("documentId", &common::text("not-an-id")),
            ]),
            |e| matches!(e, DecodeError::InvalidDocumentId(_)),
        ),
        (
            "count that is not an integer",
            common::cbor_map(&[
                ("type", &common::text("ephemeral")),
                ("count", &[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
            ]),
            |e| matches!(e, DecodeError::InvalidField { field: "count", .. }),
        ),
        (
            // An array declaring 2^64-1 entries in 20 bytes: refused before reserving anything.
            "lying array length",
            common::cbor_map(&[
                ("type", &common::text("join")),
                (
                    "supportedProtocolVersions",
                    &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                ),
            ]),
            |e| matches!(e, DecodeError::Cbor(_)),
        ),
        (
            "byte string longer than the frame",
            common::cbor_map(&[
                ("type", &common::text("sync")),
                ("data", &[0x5a, 0x7f, 0xff, 0xff, 0xff]),
            ]),
            |e| matches!(e, DecodeError::Cbor(_)),
        ),
        (
            "nested too deeply",
            common::cbor_map(&[
                ("type", &common::text("join")),
                ("x", &[[0x81u8; 40].as_slice(), &[0]].concat()),
            ]),
            |e| matches!(e, DecodeError::TooDeep { .. }),
        ),
    ];
    for (name, bytes, expected) in cases {
        let error = wire::decode(&bytes).expect_err(name);
        assert!(expected(&error), "{name}: {error:?}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn oversized_messages_are_refused_before_decoding() {
    let limits = Limits::DEFAULT.with_max_message_bytes(100);
    let big = wire::encode(&samples()[4]); // 300 bytes of data
    assert!(matches!(
        wire::decode_with(&big, &limits),
        Err(DecodeError::TooLarge { len, limit: 100 }) if len == big.len()
    ));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = wire::decode(&bytes);
        }

        #[test]
        fn mutated_real_frames_never_panic(
            index in 0usize..16,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let fixtures = fixtures();
            let mut bytes = hex::decode(fixtures[index % fixtures.len()]["hex"].as_str().unwrap()).unwrap();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = wire::decode(&bytes);
        }
    }
}
