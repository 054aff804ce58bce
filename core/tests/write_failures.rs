//! When storage fails a write, the change's caller gets the error and the change is not lost:
//! it is written with the next change, by a compaction, or when the document is unloaded.
//!
//! The failures are injected by a wrapper around the in-memory store (a fake inside this test
//! only); a second repo over the same store reads what was really stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use weft::{
    DocumentId, Error, Repo, RepoConfig, StorageId,
    automerge::{ChangeHash, ROOT, ReadDoc, transaction::Transactable},
    store::{
        Arrival, DocumentMeta, MemoryStorage, Storage, StorageError, StorageFuture, StoredDocument,
        WriteDone, WriteOp,
    },
};

/// Storage that fails on command:
/// - `failures`: the next N submissions fail with "disk full" at once;
/// - `late`: the next submission is held back and reported failed only when the following
///   one arrives, which then passes through. Outcomes stay in submission order, but the
///   failure is not known yet when the next change is submitted (as with a slow disk).
struct FaultyStorage {
    inner: Arc<MemoryStorage>,
    failures: AtomicUsize,
    late: AtomicBool,
    held: Mutex<Option<WriteDone>>,
}

impl std::fmt::Debug for FaultyStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultyStorage")
    }
}

fn disk_full() -> StorageError {
    StorageError::DiskFull {
        detail: "injected by the test".into(),
    }
}

impl Storage for FaultyStorage {
    fn storage_id(&self) -> &StorageId {
        self.inner.storage_id()
    }

    fn submit_with(&self, writes: Vec<WriteOp>, done: WriteDone) {
        if self.late.swap(false, Ordering::AcqRel) {
            *self.held.lock().unwrap() = Some(done);
            return;
        }
        if let Some(held) = self.held.lock().unwrap().take() {
            held(Err(disk_full()));
        }
        let fail = self
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            done(Err(disk_full()));
        } else {
            self.inner.submit_with(writes, done);
        }
    }

    fn load(&self, id: DocumentId) -> StorageFuture<Option<StoredDocument>> {
        self.inner.load(id)
    }

    fn list(&self) -> StorageFuture<Vec<DocumentMeta>> {
        self.inner.list()
    }

    fn load_sync_state(&self, id: DocumentId, peer: StorageId) -> StorageFuture<Option<Vec<u8>>> {
        self.inner.load_sync_state(id, peer)
    }

    fn arrivals(&self, id: DocumentId, changes: Vec<ChangeHash>) -> StorageFuture<Vec<Arrival>> {
        self.inner.arrivals(id, changes)
    }

    fn close(&self) -> StorageFuture<()> {
        // The observer keeps reading the inner store after the repo under test closed.
        Box::pin(std::future::ready(Ok(())))
    }
}

struct Setup {
    repo: Repo,
    storage: Arc<FaultyStorage>,
    /// Reads what is really stored.
    observer: Repo,
}

fn setup(config: RepoConfig) -> Setup {
    let inner = Arc::new(MemoryStorage::new());
    let storage = Arc::new(FaultyStorage {
        inner: inner.clone(),
        failures: AtomicUsize::new(0),
        late: AtomicBool::new(false),
        held: Mutex::new(None),
    });
    Setup {
        repo: Repo::with_storage(storage.clone(), config.clone()),
        storage,
        observer: Repo::with_storage(inner, config),
    }
}

fn no_compaction() -> RepoConfig {
    let mut config = RepoConfig::default();
    config.compaction.ratio = f64::INFINITY;
    config.compaction.idle_ratio = f64::INFINITY;
    config
}

/// A document in a repo whose next `failures` submissions fail (nothing is compacted).
async fn document_with_failures(failures: usize) -> (weft::DocHandle, Setup) {
    let setup = setup(no_compaction());
    let doc = setup.repo.create().await.unwrap();
    setup.storage.failures.store(failures, Ordering::Release);
    (doc, setup)
}

fn is_disk_full<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Storage(StorageError::DiskFull { .. })))
}

/// The keys stored for `id`, read by a fresh load through the observer.
async fn stored_keys(observer: &Repo, id: DocumentId) -> Vec<String> {
    let doc = observer.find(id).await.unwrap();
    let keys = doc.with_doc(|d| d.keys(ROOT).collect());
    drop(doc);
    keys
}

#[tokio::test]
async fn failed_writes_are_retried_with_the_next_change() {
    let (doc, Setup { observer, .. }) = document_with_failures(2).await;
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "a", 1)).await));
    // The retry of `a` goes with `b` and fails again: both must be kept for later.
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "b", 2)).await));
    doc.change(|tx| tx.put(ROOT, "c", 3)).await.unwrap();
    assert_eq!(stored_keys(&observer, doc.id()).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_change_whose_caller_stopped_waiting_is_still_retried() {
    let (doc, Setup { observer, .. }) = document_with_failures(1).await;
    // Queued, then abandoned: its failure must still be recorded for a retry.
    drop(doc.change(|tx| tx.put(ROOT, "abandoned", 1)));
    doc.change(|tx| tx.put(ROOT, "next", 2)).await.unwrap();
    assert_eq!(
        stored_keys(&observer, doc.id()).await,
        ["abandoned", "next"]
    );
}

#[tokio::test]
async fn a_compaction_stores_changes_whose_write_failed() {
    let (doc, Setup { observer, .. }) = document_with_failures(1).await;
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "a", 1)).await));
    doc.compact().await.unwrap();
    assert_eq!(stored_keys(&observer, doc.id()).await, ["a"]);
    let meta = observer.list().await.unwrap().remove(0);
    assert_eq!(meta.chunk_count, 1, "one snapshot: {meta:?}");
}

#[tokio::test]
async fn unloading_a_document_writes_changes_whose_write_failed() {
    let (doc, Setup { observer, .. }) = document_with_failures(1).await;
    let id = doc.id();
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "a", 1)).await));
    drop(doc);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while stored_keys(&observer, id).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the change was never written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stored_keys(&observer, id).await, ["a"]);
}

#[tokio::test]
async fn a_failed_delete_leaves_the_document_usable() {
    let (doc, Setup { repo, .. }) = document_with_failures(1).await;
    assert!(is_disk_full(&repo.delete(doc.id()).await));
    doc.change(|tx| tx.put(ROOT, "still", "here"))
        .await
        .unwrap();
    assert!(repo.find(doc.id()).await.is_ok());
}

#[tokio::test]
async fn a_change_stored_after_an_earlier_one_failed_is_not_acknowledged_until_a_retry() {
    let (
        doc,
        Setup {
            observer, storage, ..
        },
    ) = document_with_failures(0).await;
    storage.late.store(true, Ordering::Release);
    // Both queued before either outcome is known; `x` fails after `y` was submitted alone.
    let x = doc.change(|tx| tx.put(ROOT, "x", 1));
    let y = doc.change(|tx| tx.put(ROOT, "y", 2));
    assert!(is_disk_full(&x.await));
    let y = y.await;
    assert!(
        matches!(y, Err(Error::Storage(StorageError::EarlierWriteFailed))),
        "y is stored but depends on x: {y:?}"
    );
    // A crash now would leave y without x: the document still loads, without either.
    assert!(stored_keys(&observer, doc.id()).await.is_empty());
    // The next change stores x again, which makes y loadable.
    doc.change(|tx| tx.put(ROOT, "z", 3)).await.unwrap();
    assert_eq!(stored_keys(&observer, doc.id()).await, ["x", "y", "z"]);
}

#[tokio::test]
async fn closing_the_repo_writes_changes_whose_write_failed() {
    let (doc, Setup { repo, observer, .. }) = document_with_failures(1).await;
    assert!(is_disk_full(&doc.change(|tx| tx.put(ROOT, "a", 1)).await));
    repo.close().await.unwrap();
    assert_eq!(stored_keys(&observer, doc.id()).await, ["a"]);
}

#[tokio::test]
async fn a_document_created_under_its_id_whose_first_write_failed_is_kept_and_stored_later() {
    // Three ways its changes reach storage after the first write failed: the next change,
    // closing the repo, unloading the document.
    for way in ["next change", "close", "unload"] {
        let Setup {
            repo,
            storage,
            observer,
        } = setup(no_compaction());
        let id = DocumentId::random();
        storage.failures.store(1, Ordering::Release);
        let created = repo
            .create_with_id(id, |tx| tx.put(ROOT, "a", 1).map(|_| ()))
            .await;
        assert!(is_disk_full(&created), "{way}: {created:?}");
        // It is in memory, so it exists: creating it again is refused, finding it works.
        let again = repo.create_with_id(id, |_| Ok(())).await;
        assert!(
            matches!(again, Err(Error::DocumentExists(_))),
            "{way}: {again:?}"
        );
        let doc = repo.find(id).await.unwrap();
        match way {
            "next change" => {
                // The retry creates it whole: acknowledged, not "an earlier write failed".
                doc.change(|tx| tx.put(ROOT, "b", 2)).await.unwrap();
                assert_eq!(stored_keys(&observer, id).await, ["a", "b"], "{way}");
            }
            "close" => {
                drop(doc);
                repo.close().await.unwrap();
                assert_eq!(stored_keys(&observer, id).await, ["a"], "{way}");
            }
            _ => {
                drop(doc);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while observer.list().await.unwrap().is_empty() {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{way}: never written"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                assert_eq!(stored_keys(&observer, id).await, ["a"], "{way}");
            }
        }
    }
}

/// A relay that records who delivered each change keeps the record of a change whose first
/// write failed: it is written with the retry.
#[tokio::test]
async fn an_arrival_record_whose_write_failed_is_written_with_the_retry() {
    let mut config = no_compaction();
    config.sync = config
        .sync
        .with_share_policy(Arc::new(weft::sync::ServeOnRequest))
        .with_arrivals_recorded();
    let Setup {
        repo: relay,
        storage,
        observer,
    } = setup(config);
    let device = Repo::in_memory();
    let (a, b) = weft::Transport::pair();
    let credentials = weft::sync::Access::full().for_user("ana");
    relay
        .connect_with(a, weft::Role::Accept, credentials)
        .await
        .unwrap();
    device.connect(b, weft::Role::Dial).await.unwrap();
    let doc = device.create().await.unwrap();
    // The relay stores the new document (creating it), then fails the next write.
    let stored = |repo: &Repo, id| {
        let repo = repo.clone();
        async move { repo.list().await.unwrap().iter().any(|m| m.id == id) }
    };
    for _ in 0..200 {
        if stored(&observer, doc.id()).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    storage.failures.store(1, Ordering::Release);
    let change = doc
        .change(|tx| tx.put(ROOT, "after", 1))
        .await
        .unwrap()
        .change
        .unwrap();
    let mut recorded = Vec::new();
    for _ in 0..300 {
        recorded = observer.arrivals(doc.id(), vec![change]).await.unwrap();
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        storage.failures.load(Ordering::Acquire),
        0,
        "a write failed"
    );
    assert_eq!(recorded.len(), 1, "the record came with the retry");
    assert_eq!(recorded[0].user, "ana");
}
