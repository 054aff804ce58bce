//! Many tasks changing the same and different documents at once lose no update.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::sync::Arc;

use weft::{
    Repo,
    automerge::{ObjType, ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable},
};

const TASKS: usize = 24;
const CHANGES_PER_TASK: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_to_shared_and_separate_documents_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let repo = Repo::open(&path).await.unwrap();
    let shared = repo
        .create_with(|tx| {
            tx.put(ROOT, "count", ScalarValue::counter(0))?;
            tx.put_object(ROOT, "log", ObjType::List)?;
            Ok(())
        })
        .await
        .unwrap();
    let log = shared.with_doc(|d| d.get(ROOT, "log").unwrap().unwrap().1);
    let log = Arc::new(log);

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let repo = repo.clone();
        let shared = repo.find(shared.id()).await.unwrap();
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let own = repo.create().await.unwrap();
            for n in 0..CHANGES_PER_TASK {
                let log = log.clone();
                shared
                    .change(move |tx| {
                        tx.increment(ROOT, "count", 1)?;
                        let len = tx.length(&*log);
                        tx.insert(&*log, len, format!("{task}:{n}"))
                    })
                    .await
                    .unwrap();
                own.change(move |tx| tx.put(ROOT, format!("k{n}"), n as i64))
                    .await
                    .unwrap();
            }
            own.id()
        }));
    }
    let mut own_ids = Vec::new();
    for task in tasks {
        own_ids.push(task.await.unwrap());
    }
    let expected = (TASKS * CHANGES_PER_TASK) as i64;
    let id = shared.id();
    drop(shared);
    repo.close().await.unwrap();

    // Everything is in SQLite: check after reopening.
    let repo = Repo::open(&path).await.unwrap();
    let shared = repo.find(id).await.unwrap();
    let count = shared.with_doc(|d| match d.get(ROOT, "count").unwrap() {
        Some((Value::Scalar(value), _)) => match value.as_ref() {
            ScalarValue::Counter(counter) => i64::from(counter),
            other => panic!("not a counter: {other:?}"),
        },
        other => panic!("no count: {other:?}"),
    });
    assert_eq!(count, expected);
    assert_eq!(shared.with_doc(|d| d.length(&*log)), expected as usize);
    for own in own_ids {
        let doc = repo.find(own).await.unwrap();
        assert_eq!(doc.with_doc(|d| d.length(ROOT)), CHANGES_PER_TASK);
    }
}
