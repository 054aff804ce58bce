//! [`RepoConfig`]: how a repo stores and compacts documents.

use std::{sync::Arc, time::Duration};

use automerge::TextEncoding;

use crate::{
    PeerId,
    observe::{Observer, Unobserved},
    store::SqliteOptions,
    sync::SyncConfig,
};

/// When a document's incremental chunks are folded into a new snapshot.
///
/// A compaction saves the whole document (`Automerge::save`, compressed) and deletes the
/// chunks it replaces, in one transaction. It runs in the background after a change, never
/// delaying the change's acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CompactionPolicy {
    /// Compact once the incremental chunks hold more than this share of the snapshot's size.
    /// Default: 1.0 (the incrementals outgrew the snapshot), as automerge-repo does.
    pub ratio: f64,
    /// Never compact before the incremental chunks reach this many bytes, so that small
    /// documents are not rewritten on every change. Default: 1024.
    pub min_incremental_bytes: u64,
    /// When a document is unloaded (no handle or view left) or the repo closed, compact if
    /// the incremental chunks hold more than this share of the snapshot's size, so documents
    /// at rest stay within this overhead of `Automerge::save` and load from one snapshot.
    /// Default: 0.05.
    pub idle_ratio: f64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            ratio: 1.0,
            min_incremental_bytes: 1024,
            idle_ratio: 0.05,
        }
    }
}

impl CompactionPolicy {
    /// Whether a document stored as these sizes should be compacted.
    pub fn should_compact(&self, snapshot_bytes: u64, incremental_bytes: u64) -> bool {
        incremental_bytes >= self.min_incremental_bytes
            && incremental_bytes as f64 >= snapshot_bytes as f64 * self.ratio
    }

    /// Whether a document being unloaded, stored as these sizes, should be compacted.
    pub fn should_compact_idle(&self, snapshot_bytes: u64, incremental_bytes: u64) -> bool {
        incremental_bytes > 0 && incremental_bytes as f64 > snapshot_bytes as f64 * self.idle_ratio
    }
}

/// Configuration of a [`Repo`](crate::Repo).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RepoConfig {
    /// SQLite options (durability level, batching); ignored by in-memory repos.
    pub sqlite: SqliteOptions,
    /// When documents are compacted.
    pub compaction: CompactionPolicy,
    /// Events a slow subscriber may fall behind before it gets
    /// [`DocEvent::Lagged`](crate::DocEvent::Lagged). Default: 256.
    pub event_capacity: usize,
    /// How the repo syncs with peers: its peer id (random by default), share policy
    /// (offer every open document, a device's policy), limits and timeouts. Its
    /// `storage_id` is filled in from the storage; an in-memory repo has none, which tells
    /// peers it keeps nothing (so they keep no sync state for it).
    pub sync: SyncConfig,
    /// Where measurements go (messages, sync and commit latencies, connections): nowhere by
    /// default. See [`observe`](crate::observe).
    pub observer: Arc<dyn Observer>,
    /// How long a document no handle holds may stay loaded with no message about it while
    /// connected peers still sync it (60 s; `None`: for as long as they are connected).
    /// It is then let go and loaded again when a message comes; the peers that synced it
    /// are offered it again then, and its ephemeral messages still reach them meanwhile.
    /// This keeps a relay's memory to what is active, not to all its clients ever opened.
    pub idle_unload: Option<Duration>,
    /// The unit text positions and lengths count in (splices, `length`, marks):
    /// [`TextEncoding::UnicodeCodePoint`] by default, as Rust's `chars` and Python's `str`;
    /// [`TextEncoding::Utf16CodeUnit`] for Kotlin, Java, JavaScript and Swift's `utf16`;
    /// `Utf8CodeUnit` for byte offsets. These change only how positions are counted on this
    /// replica, never the document or what peers see. Not `GraphemeCluster`: automerge then
    /// stores a whole grapheme per text element, so this replica's text and positions no
    /// longer match its peers' (whose elements are code points).
    pub text_encoding: TextEncoding,
    /// Who makes this repo's changes: a user id (an account name, an email), recorded on
    /// every local change as automerge's author and shown in each document's history.
    /// `None` (the default): changes name no author. It is what this device claims; a
    /// relay that checks tokens records who actually delivered each change (see the
    /// relay's audit).
    pub author: Option<String>,
}

impl Default for RepoConfig {
    fn default() -> Self {
        Self {
            sqlite: SqliteOptions::default(),
            compaction: CompactionPolicy::default(),
            event_capacity: 256,
            sync: SyncConfig::new(PeerId::random(), None),
            observer: Arc::new(Unobserved),
            idle_unload: Some(Duration::from_secs(60)),
            text_encoding: TextEncoding::UnicodeCodePoint,
            author: None,
        }
    }
}
