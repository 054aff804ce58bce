//! A tour of a document's history with weft, as two people use it: ana and bo each have a
//! SQLite repo on their device and sync through a third repo served over WebSocket on
//! 127.0.0.1. Every step prints what a user would see.

use std::{future::Future, path::Path, time::Duration};

use automerge::{ObjId, ROOT, ReadDoc, transaction::Transactable};
use weft::{ChangeOptions, DocHandle, Repo, RepoConfig, access::Path as DocPath, net};

/// What the tour printed, line by line.
pub type Lines = Vec<String>;

/// Runs the tour with its databases in `dir`.
pub async fn tour(dir: &Path) -> weft::Result<Lines> {
    let mut out = Lines::new();
    let relay = Repo::open(dir.join("relay.sqlite")).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| weft::Error::Internal(error.to_string()))?;
    let url = format!(
        "ws://{}",
        listener
            .local_addr()
            .map_err(|error| weft::Error::Internal(error.to_string()))?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(net::serve(
        relay.clone(),
        listener,
        net::NetConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    // A dialer keeps its connection (and redials) while it is held.
    let (ana, _ana_link) = device(dir, "ana", &url).await?;
    let (bo, _bo_link) = device(dir, "bo", &url).await?;

    // Ana writes a list; bo adds to it; ana adds too.
    let list = ana
        .create_with(|tx| {
            let text = tx.put_object(ROOT, "list", automerge::ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "milk")
        })
        .await?;
    let first_version = list.heads();
    let text = text_of(&list);
    let on_bo = find(&bo, &list).await?;
    let append = |doc: &DocHandle, item: &'static str, message: &'static str| {
        let text = text.clone();
        doc.change_with(ChangeOptions::message(message), move |tx| {
            let end = tx.length(&text);
            tx.splice_text(&text, end, 0, item)
        })
    };
    append(&on_bo, ", bread", "bo: bread").await?;
    until(|| read(&list, &text) == "milk, bread").await;
    append(&list, ", eggs", "ana: eggs").await?;
    until(|| read(&on_bo, &text) == "milk, bread, eggs").await;
    out.push(format!("the list: {}", read(&on_bo, &text)));

    // The log, newest first, as bo's device sees it.
    out.push("history, newest first:".to_owned());
    for change in on_bo.history(None, 10).await?.changes {
        out.push(format!(
            "  {}  by {}  {}",
            &change.hash.to_string()[..8],
            change.author.as_deref().unwrap_or("?"),
            change.message.as_deref().unwrap_or("(no message)")
        ));
    }

    // The document as it was: at the first version, read without copying history.
    let then = list.view_at(&first_version)?.text(&text).await?;
    out.push(format!("the first version: {then}"));

    // Blame: who wrote which part.
    for span in list.blame(DocPath::parse("/list")?).await? {
        out.push(format!(
            "  {}..{} written by {}",
            span.start,
            span.end,
            span.author.as_deref().unwrap_or("?")
        ));
    }

    // Bo removes "milk, " after ana's last edit; then ana undoes that edit: her undo takes
    // back only her eggs, and bo's edit stays.
    let edit = text.clone();
    on_bo
        .change_with(ChangeOptions::message("bo: no milk"), move |tx| {
            tx.splice_text(&edit, 0, 6, "")
        })
        .await?;
    until(|| read(&list, &text) == "bread, eggs").await;
    out.push(format!("bo removes the milk: {}", read(&list, &text)));
    list.undo().await?;
    until(|| read(&on_bo, &text) == "bread").await;
    out.push(format!(
        "after ana's undo, bo sees: {}",
        read(&on_bo, &text)
    ));

    // Restore the first version: one new change that reaches everyone.
    list.restore(first_version).await?;
    until(|| read(&on_bo, &text) == "milk").await;
    out.push(format!(
        "after ana restores the first version, bo sees: {}",
        read(&on_bo, &text)
    ));

    drop((list, on_bo));
    for repo in [&ana, &bo] {
        repo.close().await?;
    }
    let _ = stop.send(());
    let _ = serving.await;
    relay.close().await?;
    Ok(out)
}

/// A device's repo: its SQLite file, its author, connected to the relay.
async fn device(dir: &Path, author: &str, url: &str) -> weft::Result<(Repo, net::Dialer)> {
    let mut config = RepoConfig::default();
    config.author = Some(author.to_owned());
    let repo = Repo::open_with(dir.join(format!("{author}.sqlite")), config).await?;
    let dialer = repo.dial(url, net::NetConfig::default());
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        dialer.wait_for(|state| *state == net::ConnectionState::Connected),
    )
    .await;
    Ok((repo, dialer))
}

/// The document on another device, once the relay has it.
async fn find(repo: &Repo, doc: &DocHandle) -> weft::Result<DocHandle> {
    let mut last = None;
    for _ in 0..100 {
        match repo.find(doc.id()).await {
            Ok(found) => return Ok(found),
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or(weft::Error::DocumentNotFound(doc.id())))
}

fn text_of(doc: &DocHandle) -> ObjId {
    doc.with_doc(|d| d.get(ROOT, "list").ok().flatten().map(|(_, id)| id))
        .unwrap_or(ROOT)
}

fn read(doc: &DocHandle, text: &ObjId) -> String {
    doc.with_doc(|d| d.text(text).unwrap_or_default())
}

/// Waits (a few seconds at most) until `done` holds: sync takes a moment.
async fn until(done: impl Fn() -> bool) {
    wait(async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn wait(work: impl Future<Output = ()>) {
    let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
}
