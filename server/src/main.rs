//! The `weft-relay` binary: flags, logs and signals around [`weft_relay::run`].

use std::{future::Future, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

mod admin;
mod audit;
mod config_file;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::net::TcpListener;
use weft_relay::{
    RelayConfig,
    auth::{self, Anonymous, Claims, Grant},
    run, secret,
};

/// A self-hosted relay for weft and automerge-repo peers (WebSocket, embedded SQLite).
///
/// Peers need a token (`?token=` in the URL, or `Authorization: Bearer`) unless
/// `--anonymous` says otherwise. With no key configured, the first start creates a signing
/// secret in the data folder; `weft-relay token` mints tokens with it.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A TOML file with any of these settings (same names) and static keys; flags and
    /// environment variables win over it. Reference: server/README.md.
    #[arg(long, env = "WEFT_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines as text, or as one JSON object per line (for log collectors). Logs never
    /// contain document content or tokens.
    #[arg(long, env = "WEFT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Address to listen on.
    #[arg(long, env = "WEFT_LISTEN", default_value = "127.0.0.1:3030")]
    listen: SocketAddr,
    /// Folder for the relay's data (created if missing).
    #[arg(long, env = "WEFT_DATA", default_value = "weft-data")]
    data: PathBuf,
    /// Let peers without a token read (`read`) or read and write (`read-write`) every
    /// document whose id they know. Off by default; for local development.
    #[arg(long, env = "WEFT_ANONYMOUS", value_enum)]
    anonymous: Option<Anonymous>,
    /// A file with an HS256 secret that signs tokens (repeatable; at least 32 characters,
    /// e.g. `openssl rand -hex 32`). Default: the data folder's generated secret.
    #[arg(
        long = "jwt-secret-file",
        env = "WEFT_JWT_SECRET_FILE",
        value_delimiter = ','
    )]
    jwt_secret_files: Vec<PathBuf>,
    /// Most connections served at once; more are refused.
    #[arg(long, env = "WEFT_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Most connections still in their handshake; a new one beyond closes the oldest.
    #[arg(long, env = "WEFT_MAX_HANDSHAKING", default_value_t = 256)]
    max_handshaking: usize,
    /// Largest message in bytes; a larger one closes its connection (1009, with a reason).
    #[arg(long, env = "WEFT_MAX_MESSAGE_BYTES", default_value_t = 64 << 20)]
    max_message_bytes: usize,
    /// Most bytes waiting to be written to one connection; a peer that stops reading is
    /// disconnected beyond it (1008, with a reason).
    #[arg(long, env = "WEFT_MAX_QUEUED_BYTES", default_value_t = 64 << 20)]
    max_queued_bytes: usize,
    /// Seconds a connection may take to finish its handshakes (WebSocket and join).
    #[arg(long, env = "WEFT_HANDSHAKE_TIMEOUT", default_value_t = 10)]
    handshake_timeout: u64,
    /// Seconds between pings on an idle connection; one silent for two is closed.
    #[arg(long, env = "WEFT_KEEPALIVE", default_value_t = 15)]
    keepalive: u64,
    /// Messages per second one peer may send, sustained (0: no limit); beyond it its
    /// connection is read more slowly, nothing is dropped.
    #[arg(long, env = "WEFT_MESSAGE_RATE", default_value_t = 1_000)]
    message_rate: u32,
    /// Messages one peer may send at once above the rate.
    #[arg(long, env = "WEFT_MESSAGE_BURST", default_value_t = 10_000)]
    message_burst: u32,
    /// Seconds a document may stay in memory with no message about it while connected
    /// peers still sync it (0: as long as they are connected). It is loaded again when
    /// one comes.
    #[arg(long, env = "WEFT_IDLE_UNLOAD", default_value_t = 60)]
    idle_unload: u64,
    /// Serve `/metrics` on this address instead of the relay's port (which keeps
    /// `/healthz` and `/readyz`), e.g. 127.0.0.1:9090 to keep it off the internet.
    #[arg(long, env = "WEFT_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// A built web page (a folder with `index.html`, such as the collaborative editor's
    /// `dist`) served on the relay's port to browsers; WebSocket peers are unaffected.
    #[arg(long, env = "WEFT_WEB")]
    web: Option<PathBuf>,
    /// Another relay to replicate every document with, both ways (repeatable): `ws://…`
    /// or `wss://…`, with `?token=` unless `--upstream-token-file` gives it.
    #[arg(long = "upstream", env = "WEFT_UPSTREAM", value_delimiter = ',')]
    upstreams: Vec<String>,
    /// A file holding this relay's token for its upstreams (minted by them with
    /// `weft-relay token --relay`); added to upstream URLs that carry none.
    #[arg(long, env = "WEFT_UPSTREAM_TOKEN_FILE")]
    upstream_token_file: Option<PathBuf>,
    /// A PEM file of certificates to trust for wss:// upstreams besides the public web's
    /// authorities (a private authority, or an upstream's self-signed certificate).
    #[arg(long, env = "WEFT_UPSTREAM_CA_FILE")]
    upstream_ca_file: Option<PathBuf>,
    /// A read-only follower: replicate from the upstreams and serve reads; every peer
    /// that connects may only read, whatever its token says.
    #[arg(long, env = "WEFT_FOLLOWER")]
    follower: bool,
    /// A file with an Ed25519 public key (PEM) that verifies EdDSA tokens (repeatable).
    #[arg(
        long = "jwt-public-key-file",
        env = "WEFT_JWT_PUBLIC_KEY_FILE",
        value_delimiter = ','
    )]
    jwt_public_key_files: Vec<PathBuf>,
}

/// How log lines are written (to stderr; `RUST_LOG` sets the level, default `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().init(),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mint a token signed with the relay's HS256 secret; prints it.
    Token(TokenArgs),
    /// The relay's documents: list, export, import, history, compact, verify.
    #[command(subcommand)]
    Docs(admin::Docs),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The relay's data folder (its generated secret is used, and created if missing).
    #[arg(long, env = "WEFT_DATA", default_value = "weft-data")]
    data: PathBuf,
    /// Sign with this secret file instead of the data folder's.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// A document (id or automerge: URL) it may read, or `*` for all (repeatable).
    #[arg(long)]
    read: Vec<String>,
    /// A document (id or automerge: URL) it may read and write, or `*` for all (repeatable).
    #[arg(long)]
    write: Vec<String>,
    /// Who it is for (shown in the relay's logs).
    #[arg(long, default_value = "weft")]
    subject: String,
    /// For another relay: it is offered every document it may read, to replicate them
    /// (give it `--write '*'`, or `--read '*'` for a read-only follower).
    #[arg(long)]
    relay: bool,
    /// How long it is valid: a number with s, m, h or d (e.g. 12h, 30d).
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    expires: Duration,
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let mut args = match cli.command {
        Some(Command::Token(args)) => return mint(args),
        Some(Command::Docs(command)) => return admin::run(command).await,
        None => cli.serve,
    };
    let static_keys = match args.config.clone() {
        None => Vec::new(),
        Some(path) => match config_file::ConfigFile::load(&path)
            .and_then(|file| file.apply(&mut args, &matches))
        {
            Ok(keys) => keys,
            Err(error) => {
                eprintln!("weft-relay: configuration: {error}");
                return ExitCode::from(2);
            }
        },
    };
    init_logs(args.log_format);
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            tracing::error!(%error, "cannot listen for signals");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(address = %args.listen, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let mut config = RelayConfig::new(args.data).with_anonymous(args.anonymous);
    config.access.hs256_secret_files = args.jwt_secret_files;
    config.access.eddsa_public_key_files = args.jwt_public_key_files;
    config.access.static_keys = static_keys;
    config.net = config
        .net
        .with_max_connections(args.max_connections, args.max_handshaking)
        .with_max_message_bytes(args.max_message_bytes)
        .with_max_queued_bytes(args.max_queued_bytes)
        .with_handshake_timeout(Duration::from_secs(args.handshake_timeout.max(1)))
        .with_keepalive(Duration::from_secs(args.keepalive.max(1)))
        .with_message_rate(args.message_rate, args.message_burst);
    config.metrics_listen = args.metrics_listen;
    config.web = args.web;
    config.follower = args.follower;
    config.upstream_ca_file = args.upstream_ca_file;
    config.idle_unload = (args.idle_unload > 0).then(|| Duration::from_secs(args.idle_unload));
    config.upstreams = match upstream_urls(args.upstreams, args.upstream_token_file.as_deref()) {
        Ok(urls) => urls,
        Err(error) => {
            tracing::error!(%error, "upstream relays");
            return ExitCode::from(2);
        }
    };
    if config.follower && config.upstreams.is_empty() {
        tracing::error!("a follower needs at least one --upstream to follow");
        return ExitCode::from(2);
    }
    config.handshake_timeout_ms = args.handshake_timeout.max(1) * 1000;
    match run(listener, config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "relay failed");
            ExitCode::FAILURE
        }
    }
}

/// `weft-relay token`: prints a token, or says why it cannot.
fn mint(args: TokenArgs) -> ExitCode {
    let secret = match &args.secret_file {
        Some(path) => secret::read(path),
        None => secret::read_or_create(&args.data).map(|(secret, _, _)| secret),
    };
    let secret = match secret {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!("weft-relay token: {error}");
            return ExitCode::FAILURE;
        }
    };
    let grant = |documents: Vec<String>| -> Result<Grant, String> {
        if documents.iter().any(|d| d == "*") {
            return Ok(Grant::everything());
        }
        for document in &documents {
            auth::parse_document(document)?;
        }
        Ok(Grant::Documents(documents))
    };
    let claims = match (grant(args.read), grant(args.write)) {
        (Ok(read), Ok(write)) => Claims {
            sub: args.subject,
            exp: jsonwebtoken::get_current_timestamp().saturating_add(args.expires.as_secs()),
            read,
            write,
            relay: args.relay,
        },
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("weft-relay token: not a document id or URL: {error}");
            return ExitCode::FAILURE;
        }
    };
    match auth::mint(&secret, &claims) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("weft-relay token: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The upstream URLs, each with the token from `token_file` unless it carries one.
fn upstream_urls(
    urls: Vec<String>,
    token_file: Option<&std::path::Path>,
) -> Result<Vec<String>, String> {
    let token = match token_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!("{}: the file holds no token", path.display()));
            }
            Some(token.to_owned())
        }
    };
    urls.into_iter()
        .map(|url| {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                let shown = url.split('?').next().unwrap_or_default();
                return Err(format!("{shown}: expected a ws:// or wss:// URL"));
            }
            // `ws://host:port?token=…` is not a request target: give it its path.
            let (scheme, rest) = url.split_once("://").unwrap_or(("ws", &url));
            let url = match rest.find(['/', '?']) {
                Some(at) if rest[at..].starts_with('?') => {
                    format!("{scheme}://{}/{}", &rest[..at], &rest[at..])
                }
                None => format!("{scheme}://{rest}/"),
                Some(_) => url.clone(),
            };
            let has_token = url
                .split_once('?')
                .is_some_and(|(_, query)| query.split('&').any(|pair| pair.starts_with("token=")));
            Ok(match &token {
                Some(token) if !has_token => {
                    let separator = if url.contains('?') { '&' } else { '?' };
                    format!("{url}{separator}token={token}")
                }
                _ => url,
            })
        })
        .collect()
}

/// `30d`, `12h`, `15m`, `90s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.char_indices().last().map_or(0, |(at, _)| at);
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number followed by s, m, h or d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// A future that resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM. The handlers are
/// installed now, before the relay opens its database, so that a signal during start-up
/// also stops it cleanly.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    })
}

/// A future that resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    })
}

#[cfg(test)]
mod tests {
    use super::upstream_urls;

    #[test]
    fn upstream_urls_get_a_path_and_the_token_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "t0k\n").unwrap();
        let urls = vec![
            "ws://a:1".to_owned(),
            "wss://b/sync".to_owned(),
            "ws://c:3?x=1&notoken=2".to_owned(),
            "ws://d/?token=own".to_owned(),
        ];
        assert_eq!(
            upstream_urls(urls, Some(&file)).unwrap(),
            [
                "ws://a:1/?token=t0k",
                "wss://b/sync?token=t0k",
                "ws://c:3/?x=1&notoken=2&token=t0k",
                "ws://d/?token=own"
            ]
        );
        assert!(upstream_urls(vec!["http://a".to_owned()], None).is_err());
        let http = upstream_urls(vec!["http://a/?token=secret".to_owned()], None).unwrap_err();
        assert!(!http.contains("secret"), "{http}");
        assert!(upstream_urls(vec!["ws://a".to_owned()], Some(&dir.path().join("none"))).is_err());
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(upstream_urls(vec!["ws://a".to_owned()], Some(&empty)).is_err());
    }
}
