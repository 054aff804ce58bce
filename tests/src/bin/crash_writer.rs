//! A writer for the crash test: makes changes as fast as it can and prints one line per
//! acknowledged change, so that a parent process can kill it at any moment and check that
//! every acknowledged change survived.
//!
//! Usage: `crash_writer <database> <writers>`. Output lines:
//! - `DOC <document id>`: a document was created (and committed);
//! - `ACK <document id> <writer> <n> <change hash>`: change `n` of `writer` is committed.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use weft::{
    DocumentId, Repo,
    automerge::{ChangeHash, ObjType, ROOT, ReadDoc, transaction::Transactable},
};

type Output = Arc<Mutex<std::io::Stdout>>;

fn print(out: &Output, line: &str) {
    // A small write to a pipe; flushed at once so the parent sees every acknowledgement.
    let mut out = out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn ack(out: &Output, id: DocumentId, writer: usize, n: u64, hash: Option<ChangeHash>) {
    if let Some(hash) = hash {
        print(out, &format!("ACK {id} {writer} {n} {hash}"));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: crash_writer <database> <writers>")?;
    let writers: usize = args.next().unwrap_or_else(|| "4".into()).parse()?;
    let out: Output = Arc::new(Mutex::new(std::io::stdout()));
    let repo = Repo::open(&path).await?;

    // One document all writers share (concurrent changes, one group commit) ...
    let shared = repo
        .create_with(|tx| tx.put_object(ROOT, "log", ObjType::List).map(|_| ()))
        .await?;
    print(&out, &format!("DOC {}", shared.id()));
    let log = shared.with_doc(|doc| doc.get(ROOT, "log").ok().flatten().map(|(_, id)| id));
    let log = Arc::new(log.ok_or("the log list is missing")?);

    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (repo, shared, log, out) = (repo.clone(), shared.clone(), log.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            // ... and one of its own per writer.
            let own = repo.create().await?;
            print(&out, &format!("DOC {}", own.id()));
            for n in 0.. {
                let text = format!("writer {writer} change {n} ").repeat(4);
                let committed = own
                    .change(move |tx| tx.put(ROOT, format!("k{}", n % 50), text))
                    .await?;
                ack(&out, own.id(), writer, n, committed.change);
                let log = log.clone();
                let committed = shared
                    .change(move |tx| {
                        let end = tx.length(&*log);
                        tx.insert(&*log, end, format!("{writer}:{n}"))
                    })
                    .await?;
                ack(&out, shared.id(), writer, n, committed.change);
            }
            Ok::<(), weft::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
