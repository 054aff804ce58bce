//! The app's connections: relays and peers it dials, and the address it accepts other
//! instances on; and their state in words for the status line.

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use weft::{
    Repo,
    net::{ConnectionState, Dialer, NetConfig, without_query},
};

/// One dialled address.
#[derive(Debug)]
struct Link {
    /// What to call it on screen (the URL without its token).
    label: String,
    dialer: Dialer,
}

/// Every connection of the app.
#[derive(Debug)]
pub(crate) struct Links {
    repo: Repo,
    dialled: Vec<Link>,
    listening: Option<(
        SocketAddr,
        oneshot::Sender<()>,
        JoinHandle<weft::Result<()>>,
    )>,
}

impl Links {
    /// No connections yet.
    pub(crate) fn new(repo: Repo) -> Self {
        Self {
            repo,
            dialled: Vec::new(),
            listening: None,
        }
    }

    /// Keeps a connection to `url` (a relay, or another instance's `--listen` address) up.
    pub(crate) fn dial(&mut self, url: &str) {
        if self.is_dialling(url) {
            return;
        }
        let dialer = self.repo.dial(url, NetConfig::default());
        self.dialled.push(Link {
            label: without_query(url).to_owned(),
            dialer,
        });
    }

    /// Whether `url` is dialled already.
    pub(crate) fn is_dialling(&self, url: &str) -> bool {
        let label = without_query(url);
        self.dialled.iter().any(|link| link.label == label)
    }

    /// Accepts other instances on `address`; returns the address bound (its port, if 0 was
    /// asked for).
    pub(crate) async fn listen(&mut self, address: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let repo = self.repo.clone();
        let task = tokio::spawn(async move {
            weft::net::serve(repo, listener, NetConfig::default(), async {
                let _ = stopped.await;
            })
            .await
        });
        self.listening = Some((bound, stop, task));
        Ok(bound)
    }

    /// The state of every connection, in words, for the status line.
    pub(crate) fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .dialled
            .iter()
            .map(|link| format!("{}: {}", link.label, state_in_words(&link.dialer.state())))
            .collect();
        if let Some((address, _, _)) = &self.listening {
            let peers = self.repo.peers().borrow().len();
            lines.push(format!("listening on {address} ({peers} connected in all)"));
        }
        if lines.is_empty() {
            lines.push("no relay or peer: notes stay on this device".into());
        }
        lines
    }

    /// Closes every connection (the repo stays open, to finish its writes).
    pub(crate) async fn stop(self) {
        for link in self.dialled {
            link.dialer.stop().await;
        }
        if let Some((_, stop, task)) = self.listening {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// A connection state as the status line says it.
pub(crate) fn state_in_words(state: &ConnectionState) -> String {
    match state {
        ConnectionState::Connecting { attempt } if *attempt > 1 => {
            format!("connecting (attempt {attempt})")
        }
        ConnectionState::Connecting { .. } => "connecting".into(),
        ConnectionState::Connected => "connected".into(),
        ConnectionState::Offline { last_error, .. } => format!("offline ({last_error}), retrying"),
        ConnectionState::Refused { reason } => format!("refused: {reason}"),
        ConnectionState::Stopped => "stopped".into(),
        _ => "unknown".into(),
    }
}

/// A shared handle, for the LAN discovery task to add links.
pub(crate) type SharedLinks = Arc<tokio::sync::Mutex<Links>>;
