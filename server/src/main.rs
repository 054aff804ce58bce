//! The `weft-relay` binary: flags, logs and signals around [`weft_relay::run`].

use std::{future::Future, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use tokio::net::TcpListener;
use weft_relay::{RelayConfig, run};

/// A self-hosted relay for weft and automerge-repo peers (WebSocket, embedded SQLite).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "WEFT_LISTEN", default_value = "127.0.0.1:3030")]
    listen: SocketAddr,
    /// Folder for the relay's data (created if missing).
    #[arg(long, env = "WEFT_DATA", default_value = "weft-data")]
    data: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
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
    match run(listener, RelayConfig::new(args.data), shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "relay failed");
            ExitCode::FAILURE
        }
    }
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
