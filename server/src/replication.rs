//! Relays replicating each other: every document both ways, over ordinary connections.
//!
//! A relay dials its upstreams (`--upstream`) with its token and grants them
//! [`Access::replica`]; a relay that dials in presents a token with the `relay` claim,
//! which grants the same. Either way, once such a peer is connected:
//! - [`RelayPolicy`] offers it every document that gets loaded (a client's edit on one
//!   relay reaches the others at once; a document a client asks for and this relay lacks
//!   is asked of them);
//! - a catch-up pass loads every stored document once, a bounded number at a time, so that
//!   automerge's sync protocol sends the peer what it lacks. Sync states are saved per
//!   relay storage id, so after a reconnect a document both sides already share costs one
//!   message each way. Documents are let go again once synced.
//!
//! Loops (A to B to C to A) are harmless: automerge's sync is idempotent and never resends
//! what the other side has.

use std::{collections::HashSet, sync::Arc, time::Duration};

use weft::{
    DocumentId, Repo,
    net::{Dialer, NetConfig},
    sync::{Access, ConnectionId, PeerInfo, SharePolicy},
};

/// How many documents a catch-up pass keeps loaded at once (beyond what peers use).
const CATCH_UP_LOADED: usize = 64;

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
}

/// Dials each upstream relay and keeps the connection up, granting it replica access.
pub fn dial_upstreams(repo: &Repo, upstreams: &[String], config: NetConfig) -> Vec<Dialer> {
    upstreams
        .iter()
        .map(|url| repo.dial_with(url.as_str(), config, Access::full().replica()))
        .collect()
}

/// Runs a catch-up pass for every replica peer that connects, until the repo closes.
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
                catch_up(&repo, &peer).await;
            }
        }
        if peers.changed().await.is_err() || repo.is_closed() {
            return;
        }
    }
}

/// Loads every stored document once, so that the sync protocol brings `peer` up to date.
async fn catch_up(repo: &Repo, peer: &PeerInfo) {
    let started = std::time::Instant::now();
    let documents = match repo.list().await {
        Ok(documents) => documents,
        Err(error) => {
            tracing::warn!(%error, "replication: listing documents failed");
            return;
        }
    };
    tracing::info!(peer = %peer.peer_id, documents = documents.len(), "replication: catching up a relay");
    let base = repo.loaded_documents();
    for (done, meta) in documents.iter().enumerate() {
        // Bounded memory: wait for earlier documents to finish syncing and be let go.
        while repo.loaded_documents() > base + CATCH_UP_LOADED && !repo.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if repo.is_closed() || !still_connected(repo, peer) {
            tracing::info!(peer = %peer.peer_id, done, of = documents.len(), "replication: the relay left before catching up");
            return;
        }
        // Loading is what offers it: the handle is not needed afterwards.
        if let Err(error) = repo.find(meta.id).await {
            tracing::warn!(document = %meta.id, %error, "replication: loading failed");
        }
        if (done + 1) % 1000 == 0 {
            tracing::info!(peer = %peer.peer_id, done = done + 1, of = documents.len(), "replication: catching up");
        }
    }
    tracing::info!(peer = %peer.peer_id, documents = documents.len(), took = ?started.elapsed(), "replication: caught up");
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
