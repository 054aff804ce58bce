//! A database written by the first schema version opens with this build: it is migrated in
//! place, keeps every document, and ends with the same schema as a new database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::Path;

use rusqlite::{Connection, params};
use weft::{
    Repo,
    automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable},
    store::ChunkHash,
};

/// The first schema, exactly as released.
const SCHEMA_V1: &str = include_str!("../src/store/sqlite/migrations/001_initial.sql");

fn schema_of(path: &Path) -> Vec<(String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_version_1_database_is_migrated_with_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("v1.db");

    // A v1 database as weft 0.1 wrote it: WAL, one document as a snapshot plus an increment.
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "title", "from v1").unwrap();
    let snapshot = doc.save();
    doc.put(ROOT, "done", true).unwrap();
    let incremental = doc.save_incremental();
    let id = weft::DocumentId::random();
    {
        let conn = Connection::open(&old).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO replica (key, value) VALUES ('storage-id', ?1)",
            params![b"0b7e0d6c-0000-4000-8000-000000000001".as_slice()],
        )
        .unwrap();
        let heads: Vec<u8> = doc.get_heads().iter().flat_map(|h| h.0).collect();
        conn.execute(
            "INSERT INTO documents (id, created_at, updated_at, heads) VALUES (?1, 1, 2, ?2)",
            params![id.as_bytes().as_slice(), heads],
        )
        .unwrap();
        for (kind, bytes) in [(0, &snapshot), (1, &incremental)] {
            conn.execute(
                "INSERT INTO chunks (document_id, hash, kind, data) VALUES (?1, ?2, ?3, ?4)",
                params![
                    id.as_bytes().as_slice(),
                    ChunkHash::of(bytes).0,
                    kind,
                    bytes
                ],
            )
            .unwrap();
        }
    }

    let repo = Repo::open(&old).await.unwrap();
    assert_eq!(
        repo.storage_id().as_str(),
        "0b7e0d6c-0000-4000-8000-000000000001"
    );
    let listed = repo.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    // Version 2 added the size columns; the migration filled them from the chunks.
    assert_eq!(listed[0].snapshot_bytes, snapshot.len() as u64);
    assert_eq!(listed[0].incremental_bytes, incremental.len() as u64);
    assert_eq!(listed[0].chunk_count, 2);
    let handle = repo.find(id).await.unwrap();
    assert_eq!(handle.heads(), doc.get_heads());
    let done = handle.with_doc(|d| d.get(ROOT, "done").unwrap().map(|(v, _)| v.as_bool()));
    assert_eq!(done, Some(Some(true)));
    // And it is writable at the new version.
    handle.change(|tx| tx.put(ROOT, "after", 1)).await.unwrap();
    drop(handle);
    repo.close().await.unwrap();

    let fresh = dir.path().join("fresh.db");
    Repo::open(&fresh).await.unwrap().close().await.unwrap();
    assert_eq!(schema_of(&old), schema_of(&fresh));
    let version = |path: &Path| -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    };
    assert_eq!(version(&old), 3);
    assert_eq!(version(&fresh), 3);
}
