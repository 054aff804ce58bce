//! The repo API as an app uses it: create, change, find, list, delete, subscribe, history,
//! export and import, on real SQLite files and in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::Duration;

use weft::{
    ChangeOrigin, DocEvent, Error, Repo, RepoConfig,
    automerge::{
        ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable,
    },
};

fn title(repo_doc: &weft::DocHandle) -> Option<String> {
    repo_doc.with_doc(|doc| match doc.get(ROOT, "title").ok().flatten() {
        Some((Value::Scalar(scalar), _)) => match scalar.as_ref() {
            ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        _ => None,
    })
}

/// Puts a list in the document and inserts `count` numbers into it, one change each.
async fn list_of_changes(doc: &weft::DocHandle, count: i64) -> ObjId {
    let list = doc
        .change(|tx| tx.put_object(ROOT, "list", ObjType::List))
        .await
        .unwrap()
        .value;
    for n in 0..count {
        let obj = list.clone();
        doc.change(move |tx| tx.insert(&obj, 0, n)).await.unwrap();
    }
    list
}

#[tokio::test]
async fn a_document_survives_closing_and_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let repo = Repo::open(&path).await.unwrap();
    let doc = repo.create().await.unwrap();
    let saved = doc
        .change(|tx| tx.put(ROOT, "title", "groceries").map(|_| ()))
        .await
        .unwrap();
    assert_eq!(saved.heads, doc.heads());
    assert!(saved.change.is_some());
    let id = doc.id();
    drop(doc);
    repo.close().await.unwrap();

    let reopened = Repo::open(&path).await.unwrap();
    let doc = reopened.find(id).await.unwrap();
    assert_eq!(title(&doc).as_deref(), Some("groceries"));
    assert_eq!(doc.heads(), saved.heads);
    let listed = reopened.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].heads, saved.heads);
    assert!(listed[0].created_at <= listed[0].updated_at);
}

#[tokio::test]
async fn create_with_initial_content_and_import_exported_bytes() {
    let repo = Repo::in_memory();
    let doc = repo
        .create_with(|tx| {
            tx.put(ROOT, "title", "draft")?;
            let items = tx.put_object(ROOT, "items", ObjType::List)?;
            tx.insert(&items, 0, "first")?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(title(&doc).as_deref(), Some("draft"));
    let bytes = doc.export().await.unwrap();

    let copy = repo.import(bytes).await.unwrap();
    assert_ne!(copy.id(), doc.id(), "an import is a new document");
    assert_eq!(copy.heads(), doc.heads(), "with the same history");
    assert_eq!(title(&copy).as_deref(), Some("draft"));
}

#[tokio::test]
async fn bytes_that_are_not_automerge_are_refused_on_import() {
    let repo = Repo::in_memory();
    let result = repo.import(b"definitely not automerge".to_vec()).await;
    assert!(
        matches!(result, Err(Error::InvalidDocument(_))),
        "{result:?}"
    );
    assert!(repo.list().await.unwrap().is_empty(), "nothing stored");
}

#[tokio::test]
async fn a_failed_change_closure_changes_and_stores_nothing() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    let before = doc.heads();
    let result = doc
        .change(|tx| {
            tx.put(ROOT, "title", "half done")?;
            // Deleting from a scalar fails: the whole transaction must roll back.
            tx.delete(ROOT, 0)
        })
        .await;
    assert!(matches!(result, Err(Error::Automerge(_))), "{result:?}");
    assert_eq!(doc.heads(), before);
    assert_eq!(title(&doc), None);

    let result = doc
        .change(|tx| -> Result<(), _> {
            tx.put(ROOT, "title", "about to panic")?;
            panic!("app bug inside a change");
        })
        .await;
    assert!(matches!(result, Err(Error::Panicked(ref message)) if message.contains("app bug")));
    assert_eq!(doc.heads(), before, "the panicking change was rolled back");
    // The document still works.
    doc.change(|tx| tx.put(ROOT, "title", "fine"))
        .await
        .unwrap();
    assert_eq!(title(&doc).as_deref(), Some("fine"));
}

#[tokio::test]
async fn an_empty_change_writes_nothing() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    let before = repo.list().await.unwrap()[0].clone();
    let committed = doc.change(|_| Ok(42)).await.unwrap();
    assert_eq!(committed.value, 42);
    assert_eq!(committed.change, None);
    assert_eq!(repo.list().await.unwrap()[0], before);
}

#[tokio::test]
async fn subscribers_get_local_changes_with_patches_in_order() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    let mut events = doc.subscribe();
    for n in 0..3_i64 {
        doc.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
    }
    for n in 0..3_i64 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("event in time")
            .expect("open stream");
        let DocEvent::Changed(change) = event else {
            panic!("unexpected {event:?}");
        };
        assert_eq!(change.origin, ChangeOrigin::Local);
        assert_eq!(change.patches.len(), 1);
        let patch = format!("{:?}", change.patches[0].action);
        assert!(patch.contains(&format!("Int({n})")), "{patch}");
    }
}

#[tokio::test]
async fn a_view_at_earlier_heads_shows_the_old_state() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    let text = doc
        .change(|tx| {
            let text = tx.put_object(ROOT, "text", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, "hello")?;
            Ok(text)
        })
        .await
        .unwrap();
    let first = text.heads.clone();
    let text = text.value;
    let obj = text.clone();
    doc.change(move |tx| tx.splice_text(&obj, 5, 0, " world"))
        .await
        .unwrap();

    let view = doc.view_at(&first).unwrap();
    assert_eq!(view.text(&text).await.unwrap(), "hello");
    assert_eq!(doc.with_doc(|d| d.text(&text).unwrap()), "hello world");
    let fork = view.fork().await.unwrap();
    assert_eq!(fork.text(&text).unwrap(), "hello");

    let unknown = ChangeHash([9; 32]);
    let result = doc.view_at(&[unknown]);
    assert!(
        matches!(result, Err(Error::UnknownHeads { ref missing, .. }) if missing == &[unknown])
    );
}

#[tokio::test]
async fn deleting_a_document_removes_it_and_stops_open_handles() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(dir.path().join("app.db")).await.unwrap();
    let keep = repo.create().await.unwrap();
    let doc = repo.create().await.unwrap();
    let mut events = doc.subscribe();
    repo.delete(doc.id()).await.unwrap();

    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap();
    assert!(matches!(event, Some(DocEvent::Deleted)));
    let result = doc.change(|tx| tx.put(ROOT, "x", 1)).await;
    assert!(matches!(result, Err(Error::DocumentDeleted(id)) if id == doc.id()));
    assert!(matches!(
        repo.find(doc.id()).await,
        Err(Error::DocumentNotFound(_))
    ));
    assert!(matches!(
        repo.delete(doc.id()).await,
        Err(Error::DocumentNotFound(_))
    ));
    let ids: Vec<_> = repo.list().await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![keep.id()]);
}

#[tokio::test]
async fn an_unknown_document_is_not_found() {
    let repo = Repo::in_memory();
    let id = weft::DocumentId::random();
    assert!(matches!(repo.find(id).await, Err(Error::DocumentNotFound(found)) if found == id));
}

#[tokio::test]
async fn handles_share_one_document_and_it_reloads_after_the_last_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // No compaction on unload: nothing else holds the document once its handles are gone.
    let mut config = RepoConfig::default();
    config.compaction.idle_ratio = f64::INFINITY;
    let repo = Repo::open_with(dir.path().join("app.db"), config)
        .await
        .unwrap();
    let doc = repo.create().await.unwrap();
    let again = repo.find(doc.id()).await.unwrap();
    doc.change(|tx| tx.put(ROOT, "title", "shared"))
        .await
        .unwrap();
    assert_eq!(title(&again).as_deref(), Some("shared"));
    let actor = |handle: &weft::DocHandle| handle.with_doc(|d| d.get_actor().clone());
    assert_eq!(
        actor(&doc),
        actor(&again),
        "one document behind both handles"
    );
    let (id, first_actor) = (doc.id(), actor(&doc));
    drop((doc, again));
    let reloaded = repo.find(id).await.unwrap();
    // Every load gets a fresh actor id: a different one shows it was loaded from storage.
    assert_ne!(actor(&reloaded), first_actor);
    assert_eq!(title(&reloaded).as_deref(), Some("shared"));
}

#[tokio::test]
async fn compaction_folds_incrementals_into_one_snapshot_without_losing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let repo = Repo::open(&path).await.unwrap();
    let doc = repo.create().await.unwrap();
    let text = doc
        .change(|tx| tx.put_object(ROOT, "text", ObjType::Text))
        .await
        .unwrap()
        .value;
    for n in 0..200 {
        let obj = text.clone();
        doc.change(move |tx| tx.splice_text(&obj, 0, 0, &format!("line {n}\n")))
            .await
            .unwrap();
    }
    doc.compact().await.unwrap();
    let meta = repo.list().await.unwrap().remove(0);
    assert_eq!(meta.chunk_count, 1, "{meta:?}");
    assert_eq!(meta.incremental_bytes, 0);
    let expected = doc.with_doc(|d| d.text(&text).unwrap());
    let exported = doc.export().await.unwrap();
    assert_eq!(meta.snapshot_bytes, exported.len() as u64);
    let id = doc.id();
    drop(doc);
    repo.close().await.unwrap();

    let repo = Repo::open(&path).await.unwrap();
    let doc = repo.find(id).await.unwrap();
    assert_eq!(doc.with_doc(|d| d.text(&text).unwrap()), expected);
}

#[tokio::test]
async fn automatic_compaction_keeps_storage_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(dir.path().join("app.db")).await.unwrap();
    let doc = repo.create().await.unwrap();
    let list = list_of_changes(&doc, 500).await;
    // Before any unload or close: the policy must have compacted during the changes.
    let meta = repo.list().await.unwrap().remove(0);
    assert!(
        meta.chunk_count < 400,
        "no compaction while changing: {meta:?}"
    );
    repo.close().await.unwrap(); // waits for background compactions
    let repo = Repo::open(dir.path().join("app.db")).await.unwrap();
    let meta = repo.list().await.unwrap().remove(0);
    // The policy compacts once incrementals outgrow the snapshot (and 1 KiB).
    assert!(
        meta.incremental_bytes <= meta.snapshot_bytes.max(1024) + 512,
        "incrementals were never compacted: {meta:?}"
    );
    assert!(meta.chunk_count < 500, "{meta:?}");
    let doc = repo.find(meta.id).await.unwrap();
    assert_eq!(doc.with_doc(|d| d.length(&list)), 500);
}

#[tokio::test]
async fn a_closed_repo_refuses_work_and_closing_twice_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(dir.path().join("app.db")).await.unwrap();
    let doc = repo.create().await.unwrap();
    repo.close().await.unwrap();
    repo.close().await.unwrap();
    assert!(matches!(
        doc.change(|tx| tx.put(ROOT, "x", 1)).await,
        Err(Error::Closed)
    ));
    assert!(matches!(repo.create().await, Err(Error::Closed)));
    assert!(matches!(repo.find(doc.id()).await, Err(Error::Closed)));
    assert_eq!(title(&doc), None, "the refused change was not applied");
}

#[tokio::test]
async fn a_document_is_compacted_once_unloaded() {
    // Only the unload compacts here.
    let mut config = RepoConfig::default();
    config.compaction.ratio = f64::INFINITY;
    let repo = Repo::in_memory_with(config);
    let doc = repo.create().await.unwrap();
    let list = list_of_changes(&doc, 20).await;
    let id = doc.id();
    let view = doc.view_at(&doc.heads()).unwrap();
    drop(doc);
    // A view still holds the document: nothing happens yet.
    assert_eq!(repo.list().await.unwrap()[0].chunk_count, 22);
    drop(view);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let meta = repo.list().await.unwrap().remove(0);
        if meta.chunk_count == 1 {
            assert_eq!(meta.incremental_bytes, 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never compacted: {meta:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let doc = repo.find(id).await.unwrap();
    assert_eq!(doc.with_doc(|d| d.length(&list)), 20);
}
