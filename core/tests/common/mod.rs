//! Helpers shared by integration tests (each test binary uses what it needs).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod js_peer;
pub(crate) mod pump;
pub(crate) mod tls_front;

use std::{
    future::Future,
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

/// Runs `tests/js/<script>` with node, `input` as JSON on its stdin, and returns its JSON
/// stdout; or `None` (with a note) if node or the npm packages are missing. The README's
/// test command installs them and sets `WEFT_REQUIRE_JS=1`, which turns their absence into
/// a failure instead of a skip.
pub(crate) fn run_node(script: &str, input: &Value) -> Option<Value> {
    let js = js_rig()?;
    let child = Command::new("node")
        .arg(script)
        .current_dir(&js)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            assert!(
                !js_required(),
                "node is required but could not start: {error}"
            );
            eprintln!("skipped: node is not available ({error})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{script} failed");
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// Waits for `condition`, polling; fails after 30 s (the exchanges take milliseconds; the
/// bound only keeps a broken run from hanging).
pub(crate) async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..1500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// An integer at `key` in the root of a document, if there is one.
pub(crate) fn number(doc: &weft::DocHandle, key: &str) -> Option<i64> {
    use weft::automerge::{ROOT, ReadDoc, ScalarValue, Value as AmValue};
    doc.with_doc(|d| match d.get(ROOT, key).ok().flatten() {
        Some((AmValue::Scalar(v), _)) => match v.as_ref() {
            ScalarValue::Int(n) => Some(*n),
            _ => None,
        },
        _ => None,
    })
}

/// Dials `url` from `repo` and waits until connected.
pub(crate) async fn online(repo: &weft::Repo, url: &str) -> weft::net::Dialer {
    use weft::net::{ConnectionState, NetConfig};
    let dialer = repo.dial(url, NetConfig::default());
    dialer.wait_for(|s| *s == ConnectionState::Connected).await;
    dialer
}

/// Finds a document, asking again until it has reached the peers (30 s at most).
pub(crate) async fn find_eventually(repo: &weft::Repo, id: weft::DocumentId) -> weft::DocHandle {
    for _ in 0..1500 {
        if let Ok(doc) = repo.find(id).await {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} was never found");
}

/// A document's heads as automerge-repo writes them (bs58check), sorted.
pub(crate) fn bs58_heads(doc: &weft::DocHandle) -> Vec<String> {
    let url = doc.url().with_heads(&doc.heads()).to_string();
    let mut heads: Vec<String> = url
        .split_once('#')
        .map(|(_, h)| h.split('|').map(String::from).collect())
        .unwrap_or_default();
    heads.sort();
    heads
}

/// The `heads` of a JS answer, sorted.
pub(crate) fn sorted_heads(answer: &Value) -> Vec<String> {
    let mut heads: Vec<String> = serde_json::from_value(answer["heads"].clone()).unwrap();
    heads.sort();
    heads
}

/// Whether the JS tests must run (`WEFT_REQUIRE_JS=1`, set by the README's test command)
/// rather than skip when node or the packages are missing.
pub(crate) fn js_required() -> bool {
    std::env::var("WEFT_REQUIRE_JS").is_ok_and(|v| v == "1")
}

/// The JS rig's folder (`tests/js`) if its packages are installed; else `None` with a note
/// (or a failure when the JS tests are required).
pub(crate) fn js_rig() -> Option<PathBuf> {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/js");
    if js.join("node_modules/@automerge/automerge-repo").exists() {
        return Some(js);
    }
    assert!(
        !js_required(),
        "tests/js/node_modules is missing: run scripts/setup"
    );
    eprintln!("skipped: the JS packages are not installed (run scripts/test)");
    None
}

/// A small CBOR map with text keys, written by hand to make frames the encoder never writes.
pub(crate) fn cbor_map(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = vec![0xa0 | entries.len() as u8];
    for (key, value) in entries {
        out.extend(text(key));
        out.extend_from_slice(value);
    }
    out
}

/// A CBOR text string of under 256 bytes.
pub(crate) fn text(s: &str) -> Vec<u8> {
    let len = u8::try_from(s.len()).expect("a short string");
    let mut out = if len < 24 {
        vec![0x60 | len]
    } else {
        vec![0x78, len]
    };
    out.extend_from_slice(s.as_bytes());
    out
}

/// splitmix64: small and seedable, for seeded test schedules.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The close frame (code, reason) a raw client gets after sending `frames`.
pub(crate) async fn close_after(url: &str, frames: Vec<Message>) -> Option<(CloseCode, String)> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for frame in frames {
        if socket.send(frame).await.is_err() {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return Some((frame.code, frame.reason.to_string()));
            }
            Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the connection was not closed within 20 s"),
        }
    }
}

/// The first message a raw client gets back after sending `bytes` as one binary frame,
/// decoded (`None` if the connection closed first or the reply is not a message).
pub(crate) async fn first_reply(url: &str, bytes: Vec<u8>) -> Option<weft::wire::Message> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::Binary(bytes.into())).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), socket.next())
        .await
        .expect("a reply within 20 s");
    match reply {
        Some(Ok(Message::Binary(bytes))) => weft::wire::decode(&bytes).ok().flatten(),
        _ => None,
    }
}
