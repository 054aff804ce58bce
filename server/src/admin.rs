//! `weft-relay docs …`: the operator's view of the relay's database. Reading commands
//! (`list`, `export`, `history`, `verify`) are safe while the relay runs (SQLite's WAL lets them
//! read beside it); `import` and `compact` write, and are best run with the relay stopped.

use std::{io::Write, path::PathBuf, process::ExitCode};

use weft::{Repo, RepoConfig, automerge::AutoSerde};
use weft_relay::{RelayConfig, auth::parse_document};

use crate::audit;

/// The `docs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Docs {
    /// Lists stored documents: id, stored bytes, chunks, last change (Unix ms).
    List {
        #[command(flatten)]
        data: Data,
        /// One JSON object per document instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Writes a document as automerge bytes (any automerge loads them) or as JSON.
    Export {
        #[command(flatten)]
        data: Data,
        /// The document (id or automerge: URL).
        document: String,
        /// `automerge` or `json`.
        #[arg(long, default_value = "automerge")]
        format: ExportFormat,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Stores automerge bytes from a file as a new document; prints its id.
    Import {
        #[command(flatten)]
        data: Data,
        /// A file of automerge bytes (`Automerge::save`, an export, automerge-repo's).
        file: PathBuf,
    },
    /// Folds a document's stored chunks into one snapshot (all documents with `--all`).
    Compact {
        #[command(flatten)]
        data: Data,
        /// The document (id or automerge: URL).
        document: Option<String>,
        /// Every stored document.
        #[arg(long, conflicts_with = "document")]
        all: bool,
    },
    /// A document's newest changes: time, hash, the author each claims, the token subject
    /// whose connection delivered it here, size and message (see server/README.md).
    History {
        #[command(flatten)]
        data: Data,
        /// The document (id or automerge: URL).
        document: String,
        /// How many changes, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per change instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Loads every stored document and checks its chunks; exits 1 if any is damaged.
    Verify {
        #[command(flatten)]
        data: Data,
    },
}

/// The relay's data folder.
#[derive(Debug, clap::Args)]
pub(crate) struct Data {
    /// The relay's data folder.
    #[arg(long, env = "WEFT_DATA", default_value = "weft-data")]
    data: PathBuf,
}

/// How `export` writes a document.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// Automerge's binary format.
    Automerge,
    /// The current state as JSON (text as strings, counters as numbers).
    Json,
}

/// Runs a `docs` subcommand; failures are printed, with exit code 1.
pub(crate) async fn run(command: Docs) -> ExitCode {
    match run_inner(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-relay docs: {error}");
            ExitCode::FAILURE
        }
    }
}

/// How a subcommand uses the relay's database.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Only reads: never compacts what it loads, so that it writes nothing beside a
    /// running relay.
    Read,
    /// Writes to an existing database.
    Write,
    /// Writes, creating the database if there is none (seeding a new relay).
    Seed,
}

/// The relay's repo, opened for `purpose`; a missing database is an error unless seeding
/// (a mistyped `--data` should not create an empty relay).
async fn open(data: &Data, purpose: Use) -> Result<Repo, String> {
    let database = RelayConfig::new(&data.data).database();
    if !database.exists() && purpose != Use::Seed {
        return Err(format!("no relay database at {}", database.display()));
    }
    let mut config = RepoConfig::default();
    if purpose == Use::Read {
        config.compaction.ratio = f64::INFINITY;
        config.compaction.idle_ratio = f64::INFINITY;
    }
    Repo::open_with(&database, config)
        .await
        .map_err(|error| format!("{}: {error}", database.display()))
}

async fn run_inner(command: Docs) -> Result<(), String> {
    let text = |error: weft::Error| error.to_string();
    match command {
        Docs::List { data, json } => {
            let repo = open(&data, Use::Read).await?;
            let mut out = std::io::stdout().lock();
            for meta in repo.list().await.map_err(text)? {
                let line = if json {
                    serde_json::json!({
                        "id": meta.id.to_string(),
                        "bytes": meta.stored_bytes(),
                        "chunks": meta.chunk_count,
                        "updated_at_ms": meta.updated_at,
                    })
                    .to_string()
                } else {
                    format!(
                        "{}\t{}\t{}\t{}",
                        meta.id,
                        meta.stored_bytes(),
                        meta.chunk_count,
                        meta.updated_at
                    )
                };
                writeln!(out, "{line}").map_err(|e| e.to_string())?;
            }
            repo.close().await.map_err(text)
        }
        Docs::Export {
            data,
            document,
            format,
            out,
        } => {
            let id = parse_document(&document)?;
            let repo = open(&data, Use::Read).await?;
            let handle = repo.find(id).await.map_err(text)?;
            let bytes = match format {
                ExportFormat::Automerge => handle.export().await.map_err(text)?,
                ExportFormat::Json => handle
                    .with_doc(|doc| serde_json::to_vec_pretty(&AutoSerde::from(doc)))
                    .map_err(|e| e.to_string())?,
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?
                }
                None => std::io::stdout()
                    .lock()
                    .write_all(&bytes)
                    .map_err(|e| e.to_string())?,
            }
            drop(handle);
            repo.close().await.map_err(text)
        }
        Docs::Import { data, file } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let repo = open(&data, Use::Seed).await?;
            let handle = repo.import(bytes).await.map_err(text)?;
            println!("{}", handle.id());
            drop(handle);
            repo.close().await.map_err(text)
        }
        Docs::Compact {
            data,
            document,
            all,
        } => {
            let repo = open(&data, Use::Write).await?;
            let ids = match (document, all) {
                (Some(document), false) => vec![parse_document(&document)?],
                (None, true) => repo
                    .list()
                    .await
                    .map_err(text)?
                    .into_iter()
                    .map(|meta| meta.id)
                    .collect(),
                _ => return Err("name a document, or --all".to_owned()),
            };
            for id in ids {
                let handle = repo.find(id).await.map_err(text)?;
                handle.compact().await.map_err(text)?;
            }
            repo.close().await.map_err(text)
        }
        Docs::History {
            data,
            document,
            limit,
            json,
        } => {
            let id = parse_document(&document)?;
            let repo = open(&data, Use::Read).await?;
            let entries = audit::history(&repo, id, limit).await.map_err(text)?;
            let mut out = std::io::stdout().lock();
            for entry in entries {
                let line = if json {
                    entry.json().to_string()
                } else {
                    entry.text()
                };
                writeln!(out, "{line}").map_err(|e| e.to_string())?;
            }
            repo.close().await.map_err(text)
        }
        Docs::Verify { data } => {
            let repo = open(&data, Use::Read).await?;
            let (mut good, mut damaged) = (0, 0);
            for meta in repo.list().await.map_err(text)? {
                match repo.find(meta.id).await {
                    Ok(_) => good += 1,
                    Err(error) => {
                        damaged += 1;
                        eprintln!("{}: {error}", meta.id);
                    }
                }
            }
            repo.close().await.map_err(text)?;
            println!("{good} documents load; {damaged} damaged");
            if damaged > 0 {
                return Err(format!("{damaged} damaged documents"));
            }
            Ok(())
        }
    }
}
