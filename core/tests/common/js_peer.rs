//! An official automerge-repo peer in a node process (`tests/js/bridge-peer.mjs`), joined
//! to weft repos through its stdio: each WebSocket connection of the JS side becomes a
//! [`Transport`], carrying the real frames of the official adapters.

use std::process::Stdio;

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::{Child, Command},
    sync::mpsc,
};
use weft::Transport;

const CONTROL: u8 = 255;

pub(crate) struct JsPeer {
    _child: Child,
    to_js: mpsc::UnboundedSender<(u8, Vec<u8>)>,
    events: mpsc::UnboundedReceiver<Value>,
    /// Events the peer sent unasked (ephemeral messages), kept for `next_unasked`.
    unasked: std::collections::VecDeque<Value>,
    /// Its "ready" event (with its URL).
    pub(crate) ready: Value,
}

impl JsPeer {
    /// Starts the bridge in `mode` ("server" with `channels` connections, or "client") and
    /// returns a transport per connection; `None` if the JS rig is not installed.
    pub(crate) async fn start(mode: &str, channels: u8) -> Option<(Self, Vec<Transport>)> {
        Self::spawn(&[mode, &channels.to_string()], channels).await
    }

    /// Starts the bridge with these arguments, piping `channels` connections.
    pub(crate) async fn spawn(args: &[&str], channels: u8) -> Option<(Self, Vec<Transport>)> {
        let js = super::js_rig()?;
        let mut child = Command::new("node")
            .arg("bridge-peer.mjs")
            .args(args)
            .current_dir(js)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (to_js, mut outbox) = mpsc::unbounded_channel::<(u8, Vec<u8>)>();
        tokio::spawn(async move {
            while let Some((channel, payload)) = outbox.recv().await {
                let mut frame = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
                frame.push(channel);
                frame.extend(payload);
                if stdin.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
        let (event_tx, events) = mpsc::unbounded_channel();
        let mut inboxes = Vec::new();
        let mut transports = Vec::new();
        for channel in 0..channels {
            let (weft_out, mut from_weft) = mpsc::unbounded_channel::<Vec<u8>>();
            let (to_weft, weft_in) = mpsc::unbounded_channel();
            let to_js = to_js.clone();
            tokio::spawn(async move {
                while let Some(frame) = from_weft.recv().await {
                    let _ = to_js.send((channel, frame));
                }
            });
            inboxes.push(to_weft);
            transports.push(Transport::from_channels(weft_out, weft_in));
        }
        tokio::spawn(async move {
            loop {
                let mut header = [0u8; 4];
                if stdout.read_exact(&mut header).await.is_err() {
                    return;
                }
                let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
                if stdout.read_exact(&mut body).await.is_err() {
                    return;
                }
                let payload = body.split_off(1);
                match body[0] {
                    CONTROL => {
                        let _ = event_tx.send(serde_json::from_slice(&payload).unwrap());
                    }
                    channel => {
                        let _ = inboxes[usize::from(channel)].send(payload);
                    }
                }
            }
        });
        let mut peer = Self {
            _child: child,
            to_js,
            events,
            unasked: std::collections::VecDeque::new(),
            ready: Value::Null,
        };
        peer.ready = peer.next_event().await;
        assert_eq!(peer.ready["event"], "ready");
        Some((peer, transports))
    }

    async fn next_event(&mut self) -> Value {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.events.recv())
            .await
            .expect("the JS peer answers within 30 s")
            .expect("the JS peer is running")
    }

    /// The next answer to a command (unasked events are kept aside).
    async fn next_answer(&mut self) -> Value {
        loop {
            let event = self.next_event().await;
            if event["event"] == "ephemeral" {
                self.unasked.push_back(event);
            } else {
                return event;
            }
        }
    }

    /// The next event the peer sent unasked (an ephemeral message it received).
    pub(crate) async fn next_unasked(&mut self) -> Value {
        match self.unasked.pop_front() {
            Some(event) => event,
            None => self.next_event().await,
        }
    }

    /// Sends a command to the JS repo and returns its answer, which may be an error
    /// (`{"event": "error", ...}`).
    pub(crate) async fn try_command(&mut self, command: &Value) -> Value {
        self.to_js
            .send((CONTROL, command.to_string().into_bytes()))
            .unwrap();
        self.next_answer().await
    }

    /// Sends a command to the JS repo and returns its answer; fails on an error.
    pub(crate) async fn command(&mut self, command: Value) -> Value {
        let answer = self.try_command(&command).await;
        assert_ne!(answer["event"], "error", "{command} failed: {answer}");
        answer
    }
}
