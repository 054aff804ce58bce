//! Relays replicating each other: every document both ways, over ordinary connections.
//!
//! A relay dials its upstreams (`--upstream`) with its token and grants them
//! [`Access::replica`]; a relay that dials in presents a token with the `relay` claim,
//! which grants the same. Either way, once such a peer is connected:
//! - [`RelayPolicy`] offers it every document that gets loaded (a client's edit on one
//!   relay reaches the others at once; a document a client asks for and this relay lacks
//!   is asked of them);
//! - a catch-up pass offers every stored document once ([`Repo::offer`]), a bounded number
//!   at a time: each is loaded, synced with the replicas by automerge's protocol, and let
//!   go as soon as they have all of it. Sync states are saved per relay storage id, so
//!   after a reconnect a document both sides already share costs one message each way.
//! - documents loaded for clients are let go once idle like any other
//!   ([`RepoConfig::idle_unload`](weft::RepoConfig)), replica links or not.
//!
//! Loops (A to B to C to A) are harmless: automerge's sync is idempotent and never resends
//! what the other side has.

use std::{collections::HashSet, sync::Arc};

use tokio::task::JoinSet;

use weft::{
    DocumentId, Repo,
    net::{Dialer, NetConfig},
    sync::{Access, ConnectionId, PeerInfo, SharePolicy},
};

/// How many documents a catch-up pass keeps loaded at once (beyond what peers use).
const CATCH_UP_AT_ONCE: usize = 64;

/// Serve documents to clients only when asked (as the official sync server does); offer
/// every document to peers that replicate this relay.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayPolicy;

impl SharePolicy for RelayPolicy {
    fn announce(&self, peer: &PeerInfo, _: DocumentId) -> bool {
        peer.access.is_replica()
    }

    fn access(&self, _: &PeerInfo, _: DocumentId) -> bool {
        true
    }

    /// Replicas are caught up by [`catch_up_replicas`]; clients are offered nothing unasked.
    fn offers_unasked(&self) -> bool {
        false
    }
}

/// Dials each upstream relay and keeps the connection up, granting it replica access;
/// `wss://` ones trust the public web's authorities, or `tls` if given. Changes pulled from
/// an upstream are recorded as delivered by `relay:<its address>` (the URL without its
/// query, so no token).
pub fn dial_upstreams(
    repo: &Repo,
    upstreams: &[String],
    config: NetConfig,
    tls: Option<&Arc<weft::net::tls::rustls::ClientConfig>>,
) -> Vec<Dialer> {
    upstreams
        .iter()
        .map(|url| {
            let address = url.split(['?', '#']).next().unwrap_or(url);
            let access = Access::full()
                .replica()
                .for_user(format!("relay:{address}"));
            match tls {
                Some(tls) => repo.dial_tls(url.as_str(), config, access, tls.clone()),
                None => repo.dial_with(url.as_str(), config, access),
            }
        })
        .collect()
}

/// Runs a catch-up pass for every replica peer that connects (each on its own task), until
/// the repo closes.
pub async fn catch_up_replicas(repo: Repo) {
    let mut peers = repo.peers();
    let mut seen: HashSet<ConnectionId> = HashSet::new();
    loop {
        let replicas: Vec<PeerInfo> = peers
            .borrow_and_update()
            .iter()
            .filter(|peer| peer.access.is_replica())
            .cloned()
            .collect();
        seen.retain(|connection| replicas.iter().any(|p| p.connection == *connection));
        for peer in replicas {
            if seen.insert(peer.connection) {
                tokio::spawn(catch_up(repo.clone(), peer));
            }
        }
        if peers.changed().await.is_err() || repo.is_closed() {
            return;
        }
    }
}

/// Offers every stored document once, [`CATCH_UP_AT_ONCE`] at a time, so that the sync
/// protocol brings `peer` up to date (and this relay, from what `peer` has).
async fn catch_up(repo: Repo, peer: PeerInfo) {
    let started = std::time::Instant::now();
    let documents = match repo.list().await {
        Ok(documents) => documents,
        Err(error) => {
            tracing::warn!(%error, "replication: listing documents failed");
            return;
        }
    };
    let total = documents.len();
    tracing::info!(peer = %peer.peer_id, documents = total, "replication: catching up a relay");
    let mut offers = JoinSet::new();
    for (done, meta) in documents.into_iter().enumerate() {
        if offers.len() >= CATCH_UP_AT_ONCE {
            offers.join_next().await;
        }
        if repo.is_closed() || !still_connected(&repo, &peer) {
            tracing::info!(peer = %peer.peer_id, done, of = total, "replication: the relay left before catching up");
            return;
        }
        let repo = repo.clone();
        offers.spawn(async move {
            if let Err(error) = repo.offer(meta.id).await {
                tracing::debug!(document = %meta.id, %error, "replication: offering failed");
            }
        });
        if (done + 1) % 1000 == 0 {
            tracing::info!(peer = %peer.peer_id, done = done + 1, of = total, "replication: catching up");
        }
    }
    while offers.join_next().await.is_some() {}
    tracing::info!(peer = %peer.peer_id, documents = total, took = ?started.elapsed(), "replication: caught up");
}

fn still_connected(repo: &Repo, peer: &PeerInfo) -> bool {
    repo.peers()
        .borrow()
        .iter()
        .any(|p| p.connection == peer.connection)
}

/// The relay's share policy, for the repo's configuration.
pub fn policy() -> Arc<dyn SharePolicy> {
    Arc::new(RelayPolicy)
}
