//! Damaged databases and hostile bytes: each gives a typed error, the other documents still
//! load, nothing panics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::Path;

use weft::{
    DocumentId, Error, Repo, RepoConfig,
    automerge::{ROOT, ReadDoc, transaction::Transactable},
    store::{ChunkHash, StorageError},
};

async fn repo_with_documents(path: &Path, count: usize) -> Vec<DocumentId> {
    let repo = Repo::open(path).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..count {
        let doc = repo.create().await.unwrap();
        let body = format!("document {n} ").repeat(200);
        doc.change(move |tx| tx.put(ROOT, "body", body))
            .await
            .unwrap();
        ids.push(doc.id());
    }
    repo.close().await.unwrap();
    ids
}

fn sql(path: &Path, statement: &str, id: DocumentId) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute(statement, [id.as_bytes().as_slice()]).unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let junk: Vec<u8> = (0..8192_u32).map(|n| (n * 7919 % 251) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    let result = Repo::open(&path).await;
    assert!(
        matches!(result, Err(Error::Storage(StorageError::NotADatabase { ref path })) if path.ends_with("notes.db")),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        junk,
        "the file was not modified"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_weft_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    repo_with_documents(&path, 1).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let result = Repo::open(&path).await;
    assert!(
        matches!(
            result,
            Err(Error::Storage(StorageError::SchemaTooNew { found: 99, .. }))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_damaged_chunk_is_reported_for_its_document_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let ids = repo_with_documents(&path, 3).await;
    // Flip bits inside the stored bytes of one chunk of the first document (bit rot).
    sql(
        &path,
        "UPDATE chunks SET data = CAST(zeroblob(16) || substr(data, 17) AS BLOB)
         WHERE rowid = (SELECT min(rowid) FROM chunks WHERE document_id = ?1)",
        ids[0],
    );
    let repo = Repo::open(&path).await.unwrap();
    let result = repo.find(ids[0]).await;
    assert!(
        matches!(result, Err(Error::CorruptChunk { document, .. }) if document == ids[0]),
        "{result:?}"
    );
    for id in &ids[1..] {
        repo.find(*id).await.expect("undamaged documents load");
    }
    assert_eq!(repo.list().await.unwrap().len(), 3);
}

#[tokio::test]
async fn intact_bytes_that_are_not_automerge_are_reported_for_their_document_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let ids = repo_with_documents(&path, 2).await;
    // A chunk whose hash matches but whose bytes are not automerge (a buggy writer).
    let garbage = b"this is not an automerge chunk".to_vec();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE chunks SET data = ?2, hash = ?3
         WHERE rowid = (SELECT min(rowid) FROM chunks WHERE document_id = ?1)",
        rusqlite::params![
            ids[0].as_bytes().as_slice(),
            garbage,
            ChunkHash::of(&garbage).0
        ],
    )
    .unwrap();
    drop(conn);
    let repo = Repo::open(&path).await.unwrap();
    let result = repo.find(ids[0]).await;
    assert!(
        matches!(result, Err(Error::CorruptDocument { document, .. }) if document == ids[0]),
        "{result:?}"
    );
    repo.find(ids[1]).await.expect("the other document loads");
}

#[tokio::test]
async fn a_truncated_database_file_is_refused_as_corrupt_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let ids = repo_with_documents(&path, 40).await;
    let full = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(full / 2).unwrap();
    drop(file);
    // SQLite usually refuses a file shorter than its header says outright: then the answer is
    // a clear error naming the file, and the file is left untouched (for `.recover`).
    let repo = match Repo::open(&path).await {
        Err(Error::Storage(StorageError::Corrupt { detail })) => {
            assert!(
                detail.contains("app.db"),
                "the message names the file: {detail}"
            );
            assert_eq!(std::fs::metadata(&path).unwrap().len(), full / 2);
            return;
        }
        Err(other) => panic!("expected a corruption error, got {other:?}"),
        Ok(repo) => repo,
    };
    // When the lost pages are not among those read at open, what is left answers for itself:
    // each document loads or fails with a typed corruption error.
    for id in ids {
        match repo.find(id).await {
            Ok(_)
            | Err(Error::Storage(StorageError::Corrupt { .. }))
            | Err(Error::CorruptChunk { .. })
            | Err(Error::CorruptDocument { .. })
            | Err(Error::DocumentNotFound(_)) => {}
            Err(other) => panic!("untyped error for a truncated database: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_truncated_write_ahead_log_loses_only_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    // No compaction: the copy below must not race a background write.
    let mut config = RepoConfig::default();
    config.compaction.ratio = f64::INFINITY;
    config.compaction.idle_ratio = f64::INFINITY;
    let repo = Repo::open_with(&path, config).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..20 {
        let doc = repo.create().await.unwrap();
        let body = format!("document {n} ").repeat(100);
        doc.change(move |tx| tx.put(ROOT, "body", body))
            .await
            .unwrap();
        ids.push(doc.id());
    }
    // Copy the database with its uncheckpointed WAL while the repo is idle, then cut the
    // copy's WAL in half, as a disk that lost the end of a file would.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let wal = std::fs::read(dir.path().join("app.db-wal")).unwrap();
    assert!(
        wal.len() > 100_000,
        "the changes should still be in the WAL"
    );
    std::fs::write(dir.path().join("copy.db-wal"), &wal[..wal.len() / 2]).unwrap();
    repo.close().await.unwrap();

    let repo = Repo::open(&copy).await.unwrap();
    let listed: Vec<DocumentId> = repo.list().await.unwrap().iter().map(|m| m.id).collect();
    assert!(
        !listed.is_empty() && listed.len() < ids.len(),
        "{} of {}",
        listed.len(),
        ids.len()
    );
    // What survived is a consistent earlier state: every listed document loads whole.
    for id in &listed {
        let doc = repo.find(*id).await.expect("a surviving document loads");
        assert!(doc.with_doc(|d| d.length(ROOT)) <= 1);
    }
    // The lost ones are simply not there.
    for id in ids.iter().filter(|id| !listed.contains(id)) {
        assert!(matches!(
            repo.find(*id).await,
            Err(Error::DocumentNotFound(_))
        ));
    }
}

#[tokio::test]
async fn automerge_fuzz_crashers_are_refused_without_panicking() {
    let folder =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/automerge-fuzz-crashers");
    let repo = Repo::in_memory();
    let mut checked = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "md") || path.ends_with("LICENSE") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let result = repo.import(bytes).await;
        assert!(
            matches!(result, Err(Error::InvalidDocument(_))),
            "{}: {result:?}",
            path.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
    assert!(repo.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn another_applications_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('ada');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let result = Repo::open(&path).await;
    assert!(
        matches!(
            result,
            Err(Error::Storage(StorageError::ForeignDatabase { .. }))
        ),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "not even switched to WAL"
    );
}
