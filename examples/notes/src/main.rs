//! `weft-notes`: an offline-first notes app in the terminal, on weft.
//!
//! Notes are kept in a SQLite file on this device and are always editable. When a relay or
//! another instance can be reached (given by address, or found on the local network), the
//! notebook syncs with it, and the screen says how each connection stands.

mod app;
mod lan;
mod links;
mod notebook;
mod ui;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use clap::Parser;
use ratatui::{
    DefaultTerminal,
    crossterm::event::{self, Event},
};
use tokio::sync::{Mutex, mpsc};
use weft::{DocEvent, Repo};

use crate::{
    app::{Action, App},
    links::Links,
    notebook::Notebook,
};

/// Notes in the terminal, kept on this device and synced when a relay or peer is reachable.
#[derive(Debug, Parser)]
#[command(name = "weft-notes", version)]
struct Args {
    /// The SQLite file holding this device's notes (created if missing).
    #[arg(long, default_value = "notes.db")]
    db: PathBuf,
    /// Which notebook: instances that use the same name share it, whether they met before
    /// or not. The name is the document's only secret on a relay that lets anyone in.
    #[arg(long, default_value = "notes")]
    notebook: String,
    /// A relay to sync through (`ws://…` or `wss://…`, with `?token=` if it needs one).
    /// Repeatable.
    #[arg(long)]
    relay: Vec<String>,
    /// Another instance to sync with directly: its `--listen` address as `ws://host:port`.
    /// Repeatable.
    #[arg(long)]
    peer: Vec<String>,
    /// Accept other instances on this address (e.g. `0.0.0.0:7777`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Find other instances of this notebook on the local network (mDNS) and sync with
    /// them directly. Listens on `--listen`, or on any free port.
    #[arg(long)]
    lan: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("weft-notes: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let repo = Repo::open(&args.db)
        .await
        .map_err(|error| format!("cannot open {}: {error}", args.db.display()))?;
    let outcome = run_on(&repo, &args).await;
    // Closed on every path, so that every change is written before the process ends.
    let closed = repo
        .close()
        .await
        .map_err(|error| format!("closing the notes file: {error}"));
    outcome.and(closed)
}

async fn run_on(repo: &Repo, args: &Args) -> Result<(), String> {
    let notebook = Notebook::open(repo, &args.notebook)
        .await
        .map_err(|error| format!("cannot open the notebook: {error}"))?;
    let notebook_id = Notebook::id_for(&args.notebook);
    let links = Arc::new(Mutex::new(Links::new(
        repo.clone(),
        notebook_id,
        &args.notebook,
    )));
    let mut discovery = None;
    {
        let mut links_now = links.lock().await;
        for url in &args.relay {
            weft::net::peer_url(url, None).map_err(|error| error.to_string())?;
            links_now.dial_relay(url);
        }
        for url in &args.peer {
            links_now.dial_peer(url, false)?;
        }
        let listen = match (args.listen, args.lan) {
            (Some(address), _) => Some(address),
            (None, true) => Some(SocketAddr::from(([0, 0, 0, 0], 0))),
            (None, false) => None,
        };
        if let Some(address) = listen {
            let bound = links_now
                .listen(address)
                .await
                .map_err(|error| format!("cannot listen on {address}: {error}"))?;
            if args.lan {
                discovery = Some(
                    lan::Discovery::start(&args.notebook, repo.peer_id(), bound, links.clone())
                        .map_err(|error| format!("cannot use the local network: {error}"))?,
                );
            }
        }
    }

    let outcome = match ratatui::try_init() {
        Ok(mut terminal) => {
            let outcome = interact(&mut terminal, App::new(notebook), &args.notebook, &links).await;
            ratatui::restore();
            outcome
        }
        Err(error) => {
            ratatui::restore(); // it may have got half way
            Err(format!("needs a terminal: {error}"))
        }
    };

    if let Some(discovery) = discovery {
        discovery.stop().await;
    }
    if let Ok(links) = Arc::try_unwrap(links) {
        links.into_inner().stop().await;
    }
    outcome
}

/// The loop: draw, then wait for a key, a change to the notebook, or the next status tick.
async fn interact(
    terminal: &mut DefaultTerminal,
    mut app: App,
    notebook_name: &str,
    links: &Mutex<Links>,
) -> Result<(), String> {
    let mut keys = read_terminal_events();
    let mut changes = app.notebook().subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let status = links.lock().await.describe();
        terminal
            .draw(|frame| ui::draw(frame, &app, notebook_name, &status))
            .map_err(|error| format!("drawing: {error}"))?;
        tokio::select! {
            event = keys.recv() => match event {
                Some(Event::Key(key)) => {
                    if let Some(action) = app.on_key(key) {
                        carry_out(&mut app, action).await;
                    }
                }
                Some(_) => {} // resized: drawn again above
                None => return Err("the terminal closed".into()),
            },
            event = changes.recv() => match event {
                Some(DocEvent::Deleted) | None => return Err("the notebook was deleted".into()),
                Some(_) => app.refresh(),
            },
            _ = tick.tick() => {}
        }
        if app.quit {
            return Ok(());
        }
    }
}

/// Applies an action; it is stored in SQLite before this returns. A failure is shown, and
/// the app goes on (the change stays in memory and is written with the next one).
async fn carry_out(app: &mut App, action: Action) {
    let notebook = app.notebook().clone();
    let outcome = match action {
        Action::Add(title) => match notebook.add(title).await {
            Ok(id) => {
                app.added(id);
                Ok(())
            }
            Err(error) => Err(error),
        },
        Action::Splice {
            note,
            at,
            delete,
            insert,
        } => notebook.splice_body(&note, at, delete, insert).await,
        Action::Delete(note) => notebook.delete(&note).await,
    };
    app.refresh();
    if let Err(error) = outcome {
        app.message = Some(format!("not saved: {error}"));
    }
}

/// Terminal events, read on a thread of their own (crossterm's reads block).
fn read_terminal_events() -> mpsc::UnboundedReceiver<Event> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if sender.send(event).is_err() {
                break;
            }
        }
    });
    receiver
}
