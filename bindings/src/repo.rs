//! [`Repo`]: documents kept on the device, and the connections that sync them.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use weft::{
    AutomergeUrl, RepoConfig,
    automerge::TextEncoding,
    net::{NetConfig, peer_url, without_query},
};

use crate::{
    Connection, Document, PeerServer, WeftError,
    runtime::{lock, run, runtime},
};

/// The unit text positions and lengths count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TextUnit {
    /// Unicode code points: Python `str` indexes, Swift `String.unicodeScalars`, Rust
    /// `chars`. The default.
    UnicodeCodePoint,
    /// UTF-16 code units: Kotlin and Java `String` indexes, JavaScript, Swift `String.utf16`
    /// and `NSString`/`NSRange`.
    Utf16CodeUnit,
    /// UTF-8 bytes.
    Utf8CodeUnit,
}

/// How a repo is set up; every field is optional.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct RepoOptions {
    /// The unit of text positions (default: Unicode code points).
    #[uniffi(default = None)]
    pub text_unit: Option<TextUnit>,
    /// The id this repo gives peers (default: random for each opening).
    #[uniffi(default = None)]
    pub peer_id: Option<String>,
    /// Who makes this repo's changes (a user id), recorded on each change and shown in
    /// `Document.history` (default: none).
    #[uniffi(default = None)]
    pub author: Option<String>,
}

impl RepoOptions {
    fn config(self) -> RepoConfig {
        let mut config = RepoConfig::default();
        if let Some(unit) = self.text_unit {
            config.text_encoding = match unit {
                TextUnit::UnicodeCodePoint => TextEncoding::UnicodeCodePoint,
                TextUnit::Utf16CodeUnit => TextEncoding::Utf16CodeUnit,
                TextUnit::Utf8CodeUnit => TextEncoding::Utf8CodeUnit,
            };
        }
        if let Some(peer_id) = self.peer_id {
            config.sync.peer_id = weft::PeerId::new(peer_id);
        }
        config.author = self.author;
        config
    }
}

/// A stored document, as `Repo.list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DocumentInfo {
    /// The document's id.
    pub id: String,
    /// Its `automerge:` URL.
    pub url: String,
    /// When it was first stored here, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When a change to it was last stored.
    pub updated_at_ms: i64,
    /// Bytes it takes in storage.
    pub stored_bytes: u64,
}

/// Documents kept on this device (in SQLite, or in memory), usable with or without a
/// network, and the connections that sync them.
///
/// Connections and peer servers belong to the repo: they run until `disconnect`, `close`
/// or the repo's `close`, whether or not the host keeps their objects.
#[derive(Debug, uniffi::Object)]
pub struct Repo {
    pub(crate) inner: weft::Repo,
    connections: Mutex<Vec<Arc<Connection>>>,
    servers: Mutex<Vec<Arc<PeerServer>>>,
    /// Set first by `shutdown`; checked under the lists' locks before adding to them, so
    /// nothing added escapes the shutdown.
    shutting_down: AtomicBool,
}

impl Repo {
    fn ensure_open(&self) -> Result<(), WeftError> {
        if self.shutting_down.load(Ordering::Acquire) || self.inner.is_closed() {
            return Err(closed());
        }
        Ok(())
    }

    fn new(inner: weft::Repo) -> Arc<Self> {
        Arc::new(Self {
            inner,
            connections: Mutex::default(),
            servers: Mutex::default(),
            shutting_down: AtomicBool::new(false),
        })
    }
}

#[uniffi::export]
impl Repo {
    /// Opens (or creates) the repo stored in the SQLite file at `path`.
    #[uniffi::constructor(default(options = None))]
    pub async fn open(path: String, options: Option<RepoOptions>) -> Result<Arc<Self>, WeftError> {
        let config = options.unwrap_or_default().config();
        run(async move { Ok(Self::new(weft::Repo::open_with(&path, config).await?)) }).await
    }

    /// A repo that keeps its documents in memory only (they are gone when it is dropped;
    /// peers still sync with it).
    #[uniffi::constructor(default(options = None))]
    pub fn in_memory(options: Option<RepoOptions>) -> Result<Arc<Self>, WeftError> {
        let _runtime = runtime()?.enter();
        Ok(Self::new(weft::Repo::in_memory_with(
            options.unwrap_or_default().config(),
        )))
    }

    /// The id this repo gives peers.
    pub fn peer_id(&self) -> String {
        self.inner.peer_id().to_string()
    }

    /// Creates an empty document, stored before this returns.
    pub async fn create(&self) -> Result<Arc<Document>, WeftError> {
        let repo = self.inner.clone();
        run(async move { Ok(Document::new(repo.create().await?)) }).await
    }

    /// Finds a document by id or `automerge:` URL: stored here, or asked of connected
    /// peers. Raises `DocumentNotFound` if neither has it, and `InvalidDocumentId` for text
    /// that is not an id or URL.
    pub async fn find(&self, id_or_url: String) -> Result<Arc<Document>, WeftError> {
        let id = AutomergeUrl::parse_document_id(&id_or_url)?;
        let repo = self.inner.clone();
        run(async move { Ok(Document::new(repo.find(id).await?)) }).await
    }

    /// Imports automerge bytes (from `Document.export` or any automerge implementation) as
    /// a new document.
    pub async fn import_document(&self, bytes: Vec<u8>) -> Result<Arc<Document>, WeftError> {
        let repo = self.inner.clone();
        run(async move { Ok(Document::new(repo.import(bytes).await?)) }).await
    }

    /// The documents stored here.
    pub async fn list(&self) -> Result<Vec<DocumentInfo>, WeftError> {
        let repo = self.inner.clone();
        run(async move {
            Ok(repo
                .list()
                .await?
                .into_iter()
                .map(|meta| DocumentInfo {
                    id: meta.id.to_string(),
                    url: AutomergeUrl::new(meta.id).to_string(),
                    created_at_ms: meta.created_at,
                    updated_at_ms: meta.updated_at,
                    stored_bytes: meta.stored_bytes(),
                })
                .collect())
        })
        .await
    }

    /// Deletes a document from this repo's storage (peers keep their copies).
    pub async fn delete(&self, id_or_url: String) -> Result<(), WeftError> {
        let id = AutomergeUrl::parse_document_id(&id_or_url)?;
        let repo = self.inner.clone();
        run(async move { Ok(repo.delete(id).await?) }).await
    }

    /// Connects to a relay or peer at `url` (`ws://host:port` or `wss://host`), with a
    /// `token` if it asks for one, and keeps the connection up until `disconnect`. Returns
    /// at once: watch the connection's state, or `wait_connected`.
    #[uniffi::method(default(token = None))]
    pub fn connect(
        &self,
        url: String,
        token: Option<String>,
    ) -> Result<Arc<Connection>, WeftError> {
        let dial = peer_url(&url, token.as_deref())?;
        self.ensure_open()?;
        let _runtime = runtime()?.enter();
        let shown = without_query(&url).to_owned();
        let connection = Connection::new(shown, self.inner.dial(dial, NetConfig::default()));
        let mut connections = lock(&self.connections);
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(closed()); // the dialler stops as `connection` is dropped
        }
        connections.retain(|kept| !kept.is_stopped());
        connections.push(connection.clone());
        Ok(connection)
    }

    /// Accepts other devices' connections on `address` (such as `0.0.0.0:7777` for every
    /// network interface, or `127.0.0.1:0` for this device only; port 0 lets the system
    /// choose). No token is checked: listen on a trusted network only. Raises `Network` if
    /// the address cannot be listened on (malformed, in use, not this device's).
    pub async fn listen(&self, address: String) -> Result<Arc<PeerServer>, WeftError> {
        self.ensure_open()?;
        let server = PeerServer::start(self.inner.clone(), address).await?;
        let added = {
            let mut servers = lock(&self.servers);
            let open = !self.shutting_down.load(Ordering::Acquire);
            if open {
                servers.push(server.clone());
            }
            open
        };
        if !added {
            // A shutdown started meanwhile: this server is not its to stop.
            server.stop().await?;
            return Err(closed());
        }
        Ok(server)
    }

    /// Closes the repo: closes its connections and peer servers, finishes writing, then
    /// refuses further work. A second call returns once the first has finished. (Named so
    /// as not to clash with Kotlin's `AutoCloseable.close`, which frees the object.)
    pub async fn shutdown(&self) -> Result<(), WeftError> {
        self.shutting_down.store(true, Ordering::Release);
        let connections = std::mem::take(&mut *lock(&self.connections));
        for connection in connections {
            connection.disconnect().await?;
        }
        let servers = std::mem::take(&mut *lock(&self.servers));
        for server in servers {
            server.stop().await?;
        }
        let repo = self.inner.clone();
        run(async move { Ok(repo.close().await?) }).await
    }
}

fn closed() -> WeftError {
    WeftError::Closed("the repo is closed".to_owned())
}
