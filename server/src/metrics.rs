//! The relay's metrics, in Prometheus' text format at `/metrics`.
//!
//! weft reports what happens through its [`Observer`] hook; this keeps the figures in a
//! `prometheus-client` registry. Counters and histograms are updated as things happen;
//! the document gauges are read from the repo when scraped.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use weft::{
    Repo,
    observe::{Direction, Observer, Refusal},
};

/// A metric's labels: a few static names and values.
type Labels<const N: usize> = [(&'static str, &'static str); N];

/// Every metric of the relay, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    messages: Family<Labels<2>, Counter>,
    bytes: Family<Labels<2>, Counter>,
    sync_apply: Histogram,
    storage_commit: Histogram,
    connections_open: Gauge,
    connections: Counter,
    refused: Family<Labels<1>, Counter>,
    documents_loaded: Gauge,
    documents_stored: Gauge,
    /// The stored count and when it was read: counting is a scan of the database, so
    /// scrapes and readiness probes (unauthenticated) share one count a few seconds old.
    stored: tokio::sync::Mutex<Option<(Instant, u64)>>,
}

/// How old a stored count may be.
const STORED_COUNT_TTL: Duration = Duration::from_secs(5);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, registered under the `weft_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weft");
        let metrics = Self {
            messages: Family::default(),
            bytes: Family::default(),
            // 100 µs to ~6.5 s: an apply of a small change to a whole-document load.
            sync_apply: Histogram::new(exponential_buckets(0.000_1, 2.0, 17)),
            // 100 µs to ~6.5 s: a group commit with fsync is a few milliseconds on SSDs.
            storage_commit: Histogram::new(exponential_buckets(0.000_1, 2.0, 17)),
            connections_open: Gauge::default(),
            connections: Counter::default(),
            refused: Family::default(),
            documents_loaded: Gauge::default(),
            documents_stored: Gauge::default(),
            stored: tokio::sync::Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register(
            "messages",
            "automerge-repo messages, by direction (in, out) and type",
            metrics.messages.clone(),
        );
        registry.register(
            "message_bytes",
            "Bytes of automerge-repo messages, by direction (in, out) and type",
            metrics.bytes.clone(),
        );
        registry.register(
            "sync_apply_seconds",
            "Time from a sync message's arrival to its changes applied to the document",
            metrics.sync_apply.clone(),
        );
        registry.register(
            "storage_commit_seconds",
            "Time from a storage write's submission to its commit in SQLite",
            metrics.storage_commit.clone(),
        );
        registry.register(
            "connections_open",
            "Connections open now (WebSocket peers, and HTTP requests being served)",
            metrics.connections_open.clone(),
        );
        registry.register(
            "connections",
            "Connections accepted",
            metrics.connections.clone(),
        );
        registry.register(
            "refused",
            "Connections turned away or cut, by reason",
            metrics.refused.clone(),
        );
        registry.register(
            "documents_loaded",
            "Documents in memory (in use by connected peers)",
            metrics.documents_loaded.clone(),
        );
        registry.register(
            "documents_stored",
            "Documents in the database",
            metrics.documents_stored.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// How many documents `repo` stores: counted at most once every few seconds, one count
    /// at a time, however many ask. An error says why storage did not answer (in 2 s).
    pub async fn stored_documents(&self, repo: &Repo) -> Result<u64, String> {
        let mut cached = self.stored.lock().await;
        if let Some((at, count)) = *cached
            && at.elapsed() < STORED_COUNT_TTL
        {
            return Ok(count);
        }
        match tokio::time::timeout(Duration::from_secs(2), repo.stored_documents()).await {
            Ok(Ok(count)) => {
                *cached = Some((Instant::now(), count));
                Ok(count)
            }
            Ok(Err(error)) => Err(format!("storage unavailable: {error}")),
            Err(_) => Err("storage did not answer in 2 s".to_owned()),
        }
    }

    /// The metrics in Prometheus' text format, with the document gauges read from `repo`
    /// (the stored count only if storage answers).
    pub async fn render(&self, repo: &Repo) -> String {
        self.documents_loaded
            .set(i64::try_from(repo.loaded_documents()).unwrap_or(i64::MAX));
        match self.stored_documents(repo).await {
            Ok(stored) => {
                self.documents_stored
                    .set(i64::try_from(stored).unwrap_or(i64::MAX));
            }
            Err(error) => tracing::warn!(%error, "counting stored documents failed"),
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// The hook to give weft ([`weft::RepoConfig::observer`]).
    pub fn observer(self: &Arc<Self>) -> Arc<dyn Observer> {
        self.clone()
    }
}

impl Observer for Metrics {
    fn message(&self, direction: Direction, kind: &'static str, bytes: usize) {
        let labels = [("direction", direction.as_str()), ("type", kind)];
        self.messages.get_or_create(&labels).inc();
        self.bytes.get_or_create(&labels).inc_by(bytes as u64);
    }

    fn sync_applied(&self, took: Duration) {
        self.sync_apply.observe(took.as_secs_f64());
    }

    fn storage_committed(&self, took: Duration) {
        self.storage_commit.observe(took.as_secs_f64());
    }

    fn connection(&self, open: bool) {
        if open {
            self.connections.inc();
            self.connections_open.inc();
        } else {
            self.connections_open.dec();
        }
    }

    fn refused(&self, reason: Refusal) {
        self.refused
            .get_or_create(&[("reason", reason.as_str())])
            .inc();
    }
}
