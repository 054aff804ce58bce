//! The app's connections: relays and peers it dials, and the address it accepts other
//! instances on; and their state in words for the status line.
//!
//! Every connection carries the open notebook only: the dialled side and accepted peers
//! may read and write that one document, whatever else the notes file holds. Peers (other
//! instances) prove they know the notebook's name with a token derived from it; one that
//! does not know it is refused before it gets anything.

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use weft::{
    DocumentId, Repo,
    net::{
        Authorize, ConnectionState, Dialer, NetConfig, Refused, Server, UpgradeRequest, peer_url,
        without_query,
    },
    sync::{Access, Scope},
};

use crate::notebook::{derive, hex};

/// One dialled address.
#[derive(Debug)]
struct Link {
    /// What to call it on screen (the URL without its token).
    label: String,
    dialer: Dialer,
    /// Found on the LAN (and forgotten when it leaves), not given by the user.
    discovered: bool,
}

/// Every connection of the app.
#[derive(Debug)]
pub(crate) struct Links {
    repo: Repo,
    access: Access,
    peer_token: String,
    dialled: Vec<Link>,
    listening: Option<(
        SocketAddr,
        oneshot::Sender<()>,
        JoinHandle<weft::Result<()>>,
    )>,
}

impl Links {
    /// No connections yet; those made will carry the notebook `notebook` (named `name`).
    pub(crate) fn new(repo: Repo, notebook: DocumentId, name: &str) -> Self {
        let only_it = || Scope::documents([notebook]);
        Self {
            repo,
            access: Access::new(only_it(), only_it()),
            peer_token: peer_token(name),
            dialled: Vec::new(),
            listening: None,
        }
    }

    /// Keeps a connection to a relay at `url` up (with the token it carries, if any).
    pub(crate) fn dial_relay(&mut self, url: &str) {
        self.dial(url.to_owned(), false);
    }

    /// Keeps a connection to another instance's `--listen` address up (`discovered` on the
    /// LAN, or given by the user), proving that this one knows the notebook's name. `url`
    /// must be valid ([`peer_url`]) and carry no token of its own.
    pub(crate) fn dial_peer(&mut self, url: &str, discovered: bool) -> Result<(), String> {
        if without_query(url) != url {
            return Err(format!(
                "{url}: a --peer address takes no query (instances show a token derived from \
                 the notebook's name)"
            ));
        }
        let with_token =
            peer_url(url, Some(&self.peer_token)).map_err(|error| error.to_string())?;
        self.dial(with_token, discovered);
        Ok(())
    }

    fn dial(&mut self, url: String, discovered: bool) {
        let label = without_query(&url).to_owned();
        if self.dialled.iter().any(|link| link.label == label) {
            return;
        }
        let dialer = self
            .repo
            .dial_with(url, NetConfig::default(), self.access.clone());
        self.dialled.push(Link {
            label,
            dialer,
            discovered,
        });
    }

    /// Stops dialling `url` if it was found on the LAN (an instance that left). The dialer
    /// stops once dropped, without holding up the caller (or the screen, which waits for
    /// this lock).
    pub(crate) fn forget_discovered(&mut self, url: &str) {
        let label = without_query(url);
        self.dialled
            .retain(|link| !(link.discovered && link.label == label));
    }

    /// Accepts other instances of the notebook on `address`; returns the address bound
    /// (its port, if 0 was asked for).
    pub(crate) async fn listen(&mut self, address: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(self.repo.clone()).authorize(Arc::new(KnowsTheNotebook {
            token: self.peer_token.clone(),
            access: self.access.clone(),
        }));
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
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

/// What instances of the notebook `name` show each other: anyone who knows the name can
/// work it out (the name is the secret), nobody else can.
fn peer_token(name: &str) -> String {
    hex(&derive("peer", name))
}

/// Accepts peers whose `?token=` shows they know the notebook's name, for that notebook
/// only.
#[derive(Debug)]
struct KnowsTheNotebook {
    token: String,
    access: Access,
}

impl Authorize for KnowsTheNotebook {
    fn authorize(&self, request: &UpgradeRequest) -> Result<Access, Refused> {
        let given = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="));
        if given == Some(self.token.as_str()) {
            Ok(self.access.clone())
        } else {
            // Sent as "unauthorized: …", which weft dialers take as a refusal to stop on.
            Err(Refused("this instance has another notebook".into()))
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
        ConnectionState::Offline { last_error, .. } => {
            format!("offline ({last_error}), retrying")
        }
        // The reason says it was refused ("refused by the peer: unauthorized: …").
        ConnectionState::Refused { reason } => reason.clone(),
        ConnectionState::Stopped => "stopped".into(),
        _ => "unknown".into(),
    }
}

/// A shared handle, for the LAN discovery task to add and remove links.
pub(crate) type SharedLinks = Arc<tokio::sync::Mutex<Links>>;
