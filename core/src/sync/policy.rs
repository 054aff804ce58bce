//! Share policies: which documents a replica offers to which peers, and which it serves.

use std::fmt;

use super::types::PeerInfo;
use crate::DocumentId;

/// Decides, per peer and document, whether to offer the document unasked and whether to
/// serve it when asked.
///
/// Peer ids are not authenticated (anyone can claim any id), so a policy that trusts them is
/// only as strong as the transport's authentication.
pub trait SharePolicy: Send + Sync + fmt::Debug {
    /// Whether to start syncing `document` with `peer` without being asked ("announce").
    fn announce(&self, peer: &PeerInfo, document: DocumentId) -> bool;
    /// Whether `peer` may sync `document` when it asks for it by id. A denied peer is told
    /// `doc-unavailable` and its data is ignored.
    fn access(&self, peer: &PeerInfo, document: DocumentId) -> bool;

    /// Whether documents let go while no peer could be offered them (written offline) are
    /// offered to the next peer that can be: yes for a device (the default), no for a
    /// relay, which offers nothing unasked to clients (and catches its replicas up itself).
    fn offers_unasked(&self) -> bool {
        true
    }
}

/// Offer every open document to every peer and serve every request: what a device does with
/// its relay (automerge-repo's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnnounceAll;

impl SharePolicy for AnnounceAll {
    fn announce(&self, _: &PeerInfo, _: DocumentId) -> bool {
        true
    }
    fn access(&self, _: &PeerInfo, _: DocumentId) -> bool {
        true
    }
}

/// Offer nothing; serve a document only to a peer that asks for it by id: what a relay does
/// (the official sync server's `sharePolicy: false`), so that no peer learns the ids of
/// documents it was not given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOnRequest;

impl SharePolicy for ServeOnRequest {
    fn announce(&self, _: &PeerInfo, _: DocumentId) -> bool {
        false
    }
    fn access(&self, _: &PeerInfo, _: DocumentId) -> bool {
        true
    }
    fn offers_unasked(&self) -> bool {
        false
    }
}
