//! A document's history as users of weft read it: authors and messages that survive a
//! restart and sync, the document at a time, diffs, and blame. Real SQLite files; repos
//! sync through the engine over in-memory transports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::path::Path as FsPath;

use common::{eventually, find_eventually};
use weft::{
    ChangeOptions, DocHandle, Error, Repo, RepoConfig, Role, Transport,
    access::{self, Path},
    automerge::{
        Automerge, ChangeHash, ObjId, ObjType, Patch, PatchAction, ROOT, ReadDoc, ScalarValue,
        transaction::Transactable,
    },
};

fn authored(author: &str) -> RepoConfig {
    let mut config = RepoConfig::default();
    config.author = Some(author.to_owned());
    config
}

async fn open(dir: &FsPath, author: &str) -> Repo {
    Repo::open_with(dir.join(format!("{author}.sqlite")), authored(author))
        .await
        .unwrap()
}

async fn join(dialer: &Repo, listener: &Repo) {
    let (a, b) = Transport::pair();
    listener.connect(a, Role::Accept).await.unwrap();
    dialer.connect(b, Role::Dial).await.unwrap();
}

/// Two users' repos in `dir`, bo's dialling ana's.
async fn ana_and_bo(dir: &FsPath) -> (Repo, Repo) {
    let ana = open(dir, "ana").await;
    let bo = open(dir, "bo").await;
    join(&bo, &ana).await;
    (ana, bo)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The text object at `key` of the root.
fn text_at(doc: &DocHandle, key: &str) -> ObjId {
    doc.with_doc(|d| d.get(ROOT, key).unwrap().unwrap().1)
}

#[tokio::test]
async fn authors_messages_and_times_are_kept_across_a_restart_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    let before = now();
    let ana = open(dir.path(), "ana").await;
    let doc = ana
        .create_with(|tx| tx.put(ROOT, "title", "groceries").map(|_| ()))
        .await
        .unwrap();
    let renamed = doc
        .change_with(ChangeOptions::message("renamed the list"), |tx| {
            tx.put(ROOT, "title", "weekend")
        })
        .await
        .unwrap();
    let id = doc.id();
    drop(doc);
    ana.close().await.unwrap();

    // Reopened from SQLite: the same history, newest first.
    let ana = open(dir.path(), "ana").await;
    let doc = ana.find(id).await.unwrap();
    let page = doc.history(None, 10).await.unwrap();
    assert_eq!(page.next, None);
    assert_eq!(page.changes.len(), 2);
    let (newest, first) = (&page.changes[0], &page.changes[1]);
    assert_eq!(Some(newest.hash), renamed.change);
    assert_eq!(newest.message.as_deref(), Some("renamed the list"));
    assert_eq!(first.message, None);
    for change in &page.changes {
        assert_eq!(change.author.as_deref(), Some("ana"));
        assert!(
            (before..=now()).contains(&change.time),
            "stamped now: {}",
            change.time
        );
    }

    // Bo receives it and adds his own; each change names its author on both sides.
    let bo = open(dir.path(), "bo").await;
    join(&bo, &ana).await;
    let on_bo = bo.find(id).await.unwrap();
    on_bo
        .change(|tx| tx.put(ROOT, "owner", "bo"))
        .await
        .unwrap();
    eventually("ana has bo's change", || async {
        let page = doc.history(None, 1).await.unwrap();
        page.changes[0].author.as_deref() == Some("bo")
    })
    .await;
    let authors: Vec<Option<String>> = on_bo
        .history(None, 10)
        .await
        .unwrap()
        .changes
        .into_iter()
        .map(|c| c.author)
        .collect();
    assert_eq!(
        authors,
        vec![
            Some("bo".to_owned()),
            Some("ana".to_owned()),
            Some("ana".to_owned())
        ]
    );
    bo.close().await.unwrap();
    ana.close().await.unwrap();
}

#[tokio::test]
async fn history_pages_cover_everything_once_and_start_where_asked() {
    let repo = Repo::in_memory_with(authored("ana"));
    let doc = repo.create().await.unwrap();
    let mut hashes = vec![doc.heads()[0]];
    for n in 0..25 {
        let committed = doc.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
        hashes.push(committed.change.unwrap());
    }
    let mut from = None;
    let mut listed = Vec::new();
    loop {
        let page = doc.history(from, 7).await.unwrap();
        listed.extend(page.changes.iter().map(|c| c.hash));
        match page.next {
            Some(next) => {
                // The next page starts at the document as it was before this page's oldest.
                assert_eq!(next, vec![hashes[hashes.len() - listed.len() - 1]]);
                from = Some(next);
            }
            None => break,
        }
    }
    hashes.reverse();
    assert_eq!(listed, hashes);

    let unknown = ChangeHash([9; 32]);
    match doc.history(Some(vec![unknown]), 5).await {
        Err(Error::UnknownHeads { missing, .. }) => assert_eq!(missing, vec![unknown]),
        other => panic!("expected UnknownHeads, got {other:?}"),
    }
}

#[tokio::test]
async fn the_document_as_it_was_at_a_time_and_what_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path(), "ana").await;
    let doc = repo.create().await.unwrap();
    // A day of edits, stamped as they would have been.
    let day = 1_750_000_000;
    for (hour, price) in [(9, 10), (12, 12), (17, 15)] {
        doc.change_with(ChangeOptions::default().at(day + hour * 3600), move |tx| {
            tx.put(ROOT, "price", price)
        })
        .await
        .unwrap();
    }
    let price_at = |hour: i64| {
        let doc = doc.clone();
        async move {
            let view = doc.view_at_time(day + hour * 3600).await.unwrap();
            view.read(|d, heads| {
                d.get_at(ROOT, "price", heads)
                    .unwrap()
                    .and_then(|(value, _)| value.as_i64())
            })
        }
    };
    assert_eq!(price_at(8).await, None);
    assert_eq!(price_at(11).await, Some(10));
    assert_eq!(price_at(12).await, Some(12));
    assert_eq!(price_at(23).await, Some(15));

    // What changed between noon and the evening: the price, from 12 to 15.
    let noon = doc.heads_at_time(day + 12 * 3600).await.unwrap();
    let patches: Vec<Patch> = doc.diff(noon.clone(), doc.heads()).await.unwrap();
    assert_eq!(patches.len(), 1);
    match &patches[0].action {
        PatchAction::PutMap { key, value, .. } => {
            assert_eq!(key, "price");
            assert_eq!(value.0.as_i64(), Some(15));
        }
        other => panic!("unexpected patch {other:?}"),
    }
    // Backwards too.
    let back = doc.diff(doc.heads(), noon.clone()).await.unwrap();
    assert!(
        matches!(&back[0].action, PatchAction::PutMap { value, .. } if value.0.as_i64() == Some(12))
    );
    // By path, with plain values, as the bindings get it.
    assert_eq!(
        doc.diff_by_path(noon, doc.heads()).await.unwrap(),
        [access::Patch::Put {
            path: Path::parse("/price").unwrap(),
            value: access::Value::Int(15),
            conflict: false,
        }]
    );
    let unknown = ChangeHash([3; 32]);
    assert!(matches!(
        doc.diff(vec![unknown], doc.heads()).await,
        Err(Error::UnknownHeads { .. })
    ));
    assert!(matches!(
        doc.diff_by_path(doc.heads(), vec![unknown]).await,
        Err(Error::UnknownHeads { .. })
    ));
    repo.close().await.unwrap();
}

#[tokio::test]
async fn blame_credits_each_part_of_a_text_to_whoever_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(dir.path()).await;
    let doc = ana
        .create_with(|tx| {
            let text = tx.put_object(ROOT, "text", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "Hello world")
        })
        .await
        .unwrap();
    let on_bo = bo.find(doc.id()).await.unwrap();
    let text = text_at(&on_bo, "text");
    // Bo inserts "big " before "world" and deletes ana's "Hello ", writing "Hi " instead.
    let edit = text.clone();
    on_bo
        .change(move |tx| {
            tx.splice_text(&edit, 6, 0, "big ")?;
            tx.splice_text(&edit, 0, 6, "Hi ")
        })
        .await
        .unwrap();
    eventually("ana has bo's edit", || async {
        doc.with_doc(|d| d.text(text_at(&doc, "text")).unwrap()) == "Hi big world"
    })
    .await;
    let spans = doc.blame(Path::parse("/text").unwrap()).await.unwrap();
    let runs: Vec<(usize, usize, Option<&str>)> = spans
        .iter()
        .map(|s| (s.start, s.end, s.author.as_deref()))
        .collect();
    assert_eq!(
        runs,
        vec![(0, 7, Some("bo")), (7, 12, Some("ana"))],
        "\"Hi big \" is bo's, \"world\" ana's"
    );
    assert_eq!(spans[1].changes.len(), 1);
    assert!(matches!(
        doc.blame(Path::parse("/missing").unwrap()).await,
        Err(Error::InvalidPath { .. })
    ));
    bo.close().await.unwrap();
    ana.close().await.unwrap();
}

/// Reads the text at `text` and the title, once `doc` shows `expected` text.
async fn shows(doc: &DocHandle, text: &ObjId, expected: &str) {
    let what = format!("the text reads {expected:?}");
    eventually(&what, || async {
        doc.with_doc(|d| d.text(text).unwrap()) == expected
    })
    .await;
}

fn title(doc: &DocHandle) -> String {
    doc.with_doc(|d| {
        d.get(ROOT, "title")
            .unwrap()
            .unwrap()
            .0
            .into_string()
            .unwrap()
    })
}

#[tokio::test]
async fn two_users_on_two_devices_undo_and_redo_their_own_interleaved_edits() {
    let dir = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(dir.path()).await;
    let on_ana = ana
        .create_with(|tx| {
            tx.put(ROOT, "title", "v0")?;
            let text = tx.put_object(ROOT, "text", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "Hello world")
        })
        .await
        .unwrap();
    let on_bo = bo.find(on_ana.id()).await.unwrap();
    let text = text_at(&on_ana, "text");
    let edit = |doc: &DocHandle, at: usize, delete: isize, insert: &'static str| {
        let text = text.clone();
        doc.change(move |tx| tx.splice_text(&text, at, delete, insert))
    };
    // Interleaved: ana, bo, ana, bo, each seeing the other's edits first.
    on_ana
        .change(|tx| tx.put(ROOT, "title", "ana's title"))
        .await
        .unwrap();
    shows(&on_bo, &text, "Hello world").await;
    edit(&on_bo, 6, 0, "big ").await.unwrap();
    shows(&on_ana, &text, "Hello big world").await;
    on_ana
        .change({
            let text = text.clone();
            move |tx| {
                tx.splice_text(&text, 0, 6, "")?;
                tx.splice_text(&text, 0, 0, "Hi ")
            }
        })
        .await
        .unwrap();
    shows(&on_bo, &text, "Hi big world").await;
    edit(&on_bo, 12, 0, "!").await.unwrap();
    for doc in [&on_ana, &on_bo] {
        shows(doc, &text, "Hi big world!").await;
    }

    // Ana's undo takes back her last edit only: bo's words stay.
    assert!(on_ana.can_undo() && !on_ana.can_redo());
    let undone = on_ana.undo().await.unwrap().unwrap();
    assert!(undone.change.is_some());
    for doc in [&on_ana, &on_bo] {
        shows(doc, &text, "Hello big world!").await;
    }
    assert_eq!(title(&on_bo), "ana's title");

    // Bo renames; ana's next undo (her rename) then has nothing left to take back.
    on_bo
        .change(|tx| tx.put(ROOT, "title", "bo's title"))
        .await
        .unwrap();
    eventually("ana has bo's title", || async {
        title(&on_ana) == "bo's title"
    })
    .await;
    let nothing_left = on_ana.undo().await.unwrap().unwrap();
    assert_eq!(nothing_left.change, None);
    assert_eq!(title(&on_ana), "bo's title");
    assert!(!on_ana.can_undo());
    assert!(on_ana.undo().await.unwrap().is_none(), "the stack is empty");

    // Ana redoes her text edit; bo undoes his rename and his "!".
    on_ana.redo().await.unwrap().unwrap();
    shows(&on_bo, &text, "Hi big world!").await;
    on_bo.undo().await.unwrap().unwrap();
    on_bo.undo().await.unwrap().unwrap();
    for doc in [&on_ana, &on_bo] {
        shows(doc, &text, "Hi big world").await;
        eventually("the title is ana's again", || async {
            title(doc) == "ana's title"
        })
        .await;
    }
    // Each undo is a change in the history, made by its author.
    let history = on_ana.history(None, 3).await.unwrap();
    let described: Vec<(Option<&str>, Option<&str>)> = history
        .changes
        .iter()
        .map(|c| (c.author.as_deref(), c.message.as_deref()))
        .collect();
    assert_eq!(
        described,
        [
            (Some("bo"), Some("undo")),
            (Some("bo"), Some("undo")),
            (Some("ana"), Some("redo"))
        ]
    );
    bo.close().await.unwrap();
    ana.close().await.unwrap();
}

#[tokio::test]
async fn a_change_that_cannot_be_undone_stays_on_the_stack_with_the_reason() {
    let repo = Repo::in_memory_with(authored("ana"));
    let doc = repo
        .create_with(|tx| {
            let text = tx.put_object(ROOT, "text", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "bold")
        })
        .await
        .unwrap();
    let text = text_at(&doc, "text");
    doc.change(move |tx| {
        use weft::automerge::marks::{ExpandMark, Mark};
        tx.mark(
            &text,
            Mark::new("bold".into(), true, 0, 4),
            ExpandMark::After,
        )
    })
    .await
    .unwrap();
    match doc.undo().await {
        Err(Error::CannotUndo { reason, .. }) => assert!(reason.contains("marks"), "{reason}"),
        other => panic!("expected CannotUndo, got {other:?}"),
    }
    assert!(doc.can_undo(), "the step stays");
    // A change that is not undoable is skipped by undo and keeps the redo stack.
    doc.change_with(ChangeOptions::default().not_undoable(), |tx| {
        tx.put(ROOT, "views", 1)
    })
    .await
    .unwrap();
    assert_eq!(doc.history(None, 1).await.unwrap().changes[0].message, None);
}

#[tokio::test]
async fn restoring_an_earlier_state_is_a_new_change_that_syncs_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(dir.path()).await;
    let doc = ana
        .create_with(|tx| {
            tx.put(ROOT, "title", "v1")?;
            let text = tx.put_object(ROOT, "text", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "first draft")?;
            let tags = tx.put_object(ROOT, "tags", ObjType::List)?;
            tx.insert(&tags, 0, "a")
        })
        .await
        .unwrap();
    let version_one = doc.heads();
    let saved = doc.json().unwrap();
    let text = text_at(&doc, "text");
    doc.change(move |tx| {
        tx.put(ROOT, "title", "v2")?;
        tx.splice_text(&text, 0, 5, "second")?;
        tx.put(ROOT, "extra", true)?;
        tx.delete(ROOT, "tags")
    })
    .await
    .unwrap();
    let on_bo = bo.find(doc.id()).await.unwrap();
    let changes_before = doc.history(None, 100).await.unwrap().changes.len();

    let restored = doc.restore(version_one.clone()).await.unwrap();
    assert_eq!(doc.json().unwrap(), saved);
    eventually("bo has the restored state", || async {
        on_bo.json().unwrap() == saved
    })
    .await;
    // History grew by one change, by ana, named "restore"; the restore can be undone.
    let history = doc.history(None, 100).await.unwrap();
    assert_eq!(history.changes.len(), changes_before + 1);
    assert_eq!(Some(history.changes[0].hash), restored.change);
    assert_eq!(history.changes[0].message.as_deref(), Some("restore"));
    assert_eq!(history.changes[0].author.as_deref(), Some("ana"));
    doc.undo().await.unwrap().unwrap();
    assert_eq!(title(&doc), "v2");

    let unknown = ChangeHash([5; 32]);
    assert!(matches!(
        doc.restore(vec![unknown]).await,
        Err(Error::UnknownHeads { .. })
    ));
    bo.close().await.unwrap();
    ana.close().await.unwrap();
}

#[tokio::test]
async fn a_relay_records_who_delivered_each_change_whatever_author_it_claims() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RepoConfig::default();
    config.sync = config
        .sync
        .with_share_policy(std::sync::Arc::new(weft::sync::ServeOnRequest))
        .with_arrivals_recorded();
    let relay = Repo::open_with(dir.path().join("relay.sqlite"), config)
        .await
        .unwrap();
    // Bo's device claims to be ana.
    let ana = open(dir.path(), "ana").await;
    let forger = Repo::in_memory_with(authored("ana"));
    for (device, user) in [(&ana, "ana"), (&forger, "bo")] {
        let (a, b) = Transport::pair();
        let credentials = weft::sync::Access::full().for_user(user);
        relay
            .connect_with(a, Role::Accept, credentials)
            .await
            .unwrap();
        device.connect(b, Role::Dial).await.unwrap();
    }
    let doc = ana.create().await.unwrap();
    doc.change(|tx| tx.put(ROOT, "by", "ana")).await.unwrap();
    // Found once the relay has it (ana's upload may still be on its way).
    let forged = find_eventually(&forger, doc.id()).await;
    let forged_change = forged
        .change(|tx| tx.put(ROOT, "by", "bo pretending"))
        .await
        .unwrap()
        .change
        .unwrap();
    eventually("the relay stores the forged change", || async {
        relay
            .arrivals(doc.id(), vec![forged_change])
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    let on_relay = relay.find(doc.id()).await.unwrap();
    let history = on_relay.history(None, 10).await.unwrap();
    let hashes: Vec<ChangeHash> = history.changes.iter().map(|c| c.hash).collect();
    let arrivals = relay.arrivals(doc.id(), hashes.clone()).await.unwrap();
    let delivered: Vec<(Option<&str>, &str)> = history
        .changes
        .iter()
        .zip(&arrivals)
        .map(|(change, arrival)| {
            assert_eq!(change.hash, arrival.change);
            (change.author.as_deref(), arrival.user.as_str())
        })
        .collect();
    // Every change claims ana; the relay knows bo's connection delivered the newest.
    assert_eq!(
        delivered,
        [
            (Some("ana"), "bo"),
            (Some("ana"), "ana"),
            (Some("ana"), "ana")
        ]
    );
    drop(on_relay);
    relay.close().await.unwrap();
    ana.close().await.unwrap();
}

#[tokio::test]
async fn archiving_continues_a_long_history_in_a_new_document_that_peers_can_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(dir.path()).await;
    let doc = ana
        .create_with(|tx| {
            let text = tx.put_object(ROOT, "text", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "log:")
        })
        .await
        .unwrap();
    let text = text_at(&doc, "text");
    for n in 0..200 {
        let text = text.clone();
        doc.change(move |tx| {
            tx.put(ROOT, "count", n)?;
            tx.splice_text(&text, 4, 0, "x")
        })
        .await
        .unwrap();
    }
    let on_bo = bo.find(doc.id()).await.unwrap();
    let before = doc.json().unwrap();
    let size = doc.history_size().await.unwrap();
    assert_eq!(size.changes, 201);

    let file = dir.path().join("archive.automerge");
    let archived = ana.archive(doc.id(), &file).await.unwrap();
    assert_eq!(archived.archived, size);
    // The new document: the same state, one change.
    let continued = &archived.continued;
    assert_eq!(continued.json().unwrap(), before);
    assert_eq!(continued.history_size().await.unwrap().changes, 1);
    assert_eq!(continued.moved_to(), None);
    // The archive holds the whole old history.
    let archive = Automerge::load(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(archive.get_changes_meta(&[]).len(), 201);
    // Bo, syncing the old document, learns where it went and follows it.
    eventually("bo learns the new document", || async {
        on_bo.moved_to() == Some(continued.url())
    })
    .await;
    let followed = bo
        .find(on_bo.moved_to().unwrap().document_id())
        .await
        .unwrap();
    assert_eq!(followed.json().unwrap(), before);
    // Archiving again is refused, and so is an archive file that exists.
    assert!(matches!(
        ana.archive(doc.id(), dir.path().join("again.automerge"))
            .await,
        Err(Error::DocumentMoved { .. })
    ));
    assert!(matches!(
        ana.archive(continued.id(), &file).await,
        Err(Error::Archive { .. })
    ));
    assert_eq!(
        continued.moved_to(),
        None,
        "nothing done when the file is refused"
    );
    // Restoring the old document to an earlier state keeps where it continues.
    let first = doc
        .history(None, 500)
        .await
        .unwrap()
        .changes
        .last()
        .unwrap()
        .hash;
    doc.restore(vec![first]).await.unwrap();
    assert_eq!(doc.moved_to(), Some(continued.url()));
    bo.close().await.unwrap();
    ana.close().await.unwrap();
}

#[tokio::test]
async fn a_view_reads_as_json_like_the_document_did_then() {
    let repo = Repo::in_memory();
    let doc = repo
        .create_with(|tx| {
            tx.put(ROOT, "title", "list")?;
            tx.put(ROOT, "count", ScalarValue::counter(2))?;
            let items = tx.put_object(ROOT, "items", ObjType::List)?;
            let item = tx.insert_object(&items, 0, ObjType::Map)?;
            tx.put(&item, "done", false)?;
            tx.put(&item, "bytes", vec![1u8, 2])?;
            let text = tx.put_object(&item, "note", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "milk")
        })
        .await
        .unwrap();
    let then = doc.heads();
    let json_then = doc.json().unwrap();
    doc.change(|tx| tx.put(ROOT, "title", "changed"))
        .await
        .unwrap();
    assert_eq!(doc.view_at(&then).unwrap().json().await.unwrap(), json_then);
    assert_ne!(doc.json().unwrap(), json_then);
}
