//! The SQL of each storage operation, over a borrowed connection. Threading lives elsewhere.

use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{
    DocumentId, StorageId,
    store::{
        Arrival, Chunk, ChunkHash, ChunkKind, DocumentMeta, StorageError, StoredDocument, WriteOp,
        records::{decode_heads, encode_heads},
    },
};

const META_COLUMNS: &str =
    "id, created_at, updated_at, heads, snapshot_bytes, incremental_bytes, chunk_count";

/// The arrivals recorded for those of `changes` that have one.
pub(crate) fn arrivals(
    conn: &Connection,
    id: DocumentId,
    changes: &[ChangeHash],
) -> Result<Vec<Arrival>, StorageError> {
    let mut select = conn.prepare_cached(
        "SELECT user, received_at FROM change_arrivals WHERE document_id = ?1 AND change = ?2",
    )?;
    let mut found = Vec::new();
    for change in changes {
        let arrival = select
            .query_row(params![id.as_bytes(), change.0], |row| {
                Ok(Arrival {
                    change: *change,
                    user: row.get(0)?,
                    received_at: row.get(1)?,
                })
            })
            .optional()?;
        found.extend(arrival);
    }
    Ok(found)
}

/// Applies one write inside the caller's transaction.
pub(crate) fn apply_write(conn: &Connection, write: &WriteOp) -> Result<(), StorageError> {
    match write {
        WriteOp::CreateDocument {
            id,
            chunk,
            heads,
            now,
        } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO documents (id, created_at, updated_at, heads)
                     VALUES (?1, ?2, ?2, ?3)",
                )?
                .execute(params![id.as_bytes(), now, encode_heads(heads)])?;
            if inserted == 0 {
                return Err(StorageError::DocumentExists(*id));
            }
            insert_chunk(conn, *id, chunk)?;
        }
        WriteOp::AppendChunk {
            id,
            chunk,
            heads,
            now,
        } => {
            // One statement records the heads and counts the chunk in; the rare duplicate
            // chunk is counted back out below.
            let updated = conn
                .prepare_cached(
                    "UPDATE documents SET heads = ?2, updated_at = ?3,
                         incremental_bytes = incremental_bytes + ?4,
                         chunk_count = chunk_count + 1
                     WHERE id = ?1",
                )?
                .execute(params![
                    id.as_bytes(),
                    encode_heads(heads),
                    now,
                    chunk.len() as i64
                ])?;
            if updated == 0 {
                return Err(StorageError::DocumentNotFound(*id));
            }
            if !insert_chunk_row(conn, *id, chunk)? {
                conn.prepare_cached(
                    "UPDATE documents SET incremental_bytes = incremental_bytes - ?2,
                         chunk_count = chunk_count - 1
                     WHERE id = ?1",
                )?
                .execute(params![id.as_bytes(), chunk.len() as i64])?;
            }
        }
        WriteOp::Compact {
            id,
            snapshot,
            replaces,
        } => {
            require_document(conn, *id)?;
            let mut delete = conn.prepare_cached(
                "DELETE FROM chunks WHERE document_id = ?1 AND hash = ?2 AND hash != ?3",
            )?;
            for hash in replaces {
                delete.execute(params![id.as_bytes(), hash.0, snapshot.hash().0])?;
            }
            insert_chunk(conn, *id, snapshot)?;
            // Compactions are rare: recount what is left from the chunks themselves.
            refresh_sizes(conn, *id)?;
        }
        WriteOp::DeleteDocument { id } => {
            // Chunks and sync states go with it (ON DELETE CASCADE).
            let deleted = conn.execute(
                "DELETE FROM documents WHERE id = ?1",
                params![id.as_bytes()],
            )?;
            if deleted == 0 {
                return Err(StorageError::DocumentNotFound(*id));
            }
        }
        WriteOp::RecordArrivals {
            id,
            user,
            changes,
            now,
        } => {
            require_document(conn, *id)?;
            let mut insert = conn.prepare_cached(
                "INSERT OR IGNORE INTO change_arrivals (document_id, change, user, received_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for change in changes {
                insert.execute(params![id.as_bytes(), change.0, user, now])?;
            }
        }
        WriteOp::PutSyncState { id, peer, state } => {
            require_document(conn, *id)?;
            conn.execute(
                "INSERT OR REPLACE INTO sync_states (document_id, peer, state) VALUES (?1, ?2, ?3)",
                params![id.as_bytes(), peer.as_str(), state],
            )?;
        }
    }
    Ok(())
}

fn require_document(conn: &Connection, id: DocumentId) -> Result<(), StorageError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM documents WHERE id = ?1")?
        .exists(params![id.as_bytes()])?;
    if exists {
        Ok(())
    } else {
        Err(StorageError::DocumentNotFound(id))
    }
}

/// Inserts a chunk row; `false` if the document has that chunk already.
fn insert_chunk_row(
    conn: &Connection,
    id: DocumentId,
    chunk: &Chunk,
) -> Result<bool, StorageError> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO chunks (document_id, hash, kind, data) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            id.as_bytes(),
            chunk.hash().0,
            chunk.kind().code(),
            chunk.bytes()
        ])?;
    Ok(inserted > 0)
}

/// Inserts a chunk (a no-op if the document has it already) and counts it in the document's
/// size columns, so that writes cost the same however many chunks a document has.
fn insert_chunk(conn: &Connection, id: DocumentId, chunk: &Chunk) -> Result<(), StorageError> {
    if insert_chunk_row(conn, id, chunk)? {
        add_size(conn, id, chunk, 1)?;
    }
    Ok(())
}

fn size_column(kind: ChunkKind) -> &'static str {
    match kind {
        ChunkKind::Snapshot => "snapshot_bytes",
        ChunkKind::Incremental => "incremental_bytes",
    }
}

/// Counts a chunk into (`sign` 1) or out of (`sign` -1) its document's size columns.
fn add_size(
    conn: &Connection,
    id: DocumentId,
    chunk: &Chunk,
    sign: i64,
) -> Result<(), StorageError> {
    let column = size_column(chunk.kind());
    conn.prepare_cached(&format!(
        "UPDATE documents SET {column} = {column} + ?2, chunk_count = chunk_count + ?3
         WHERE id = ?1"
    ))?
    .execute(params![id.as_bytes(), sign * chunk.len() as i64, sign])?;
    Ok(())
}

fn refresh_sizes(conn: &Connection, id: DocumentId) -> Result<(), StorageError> {
    // length() of a blob reads the row header, not the blob's pages.
    conn.prepare_cached(
        "UPDATE documents SET
             snapshot_bytes = (SELECT coalesce(sum(length(data)), 0) FROM chunks
                               WHERE document_id = ?1 AND kind = 0),
             incremental_bytes = (SELECT coalesce(sum(length(data)), 0) FROM chunks
                                  WHERE document_id = ?1 AND kind = 1),
             chunk_count = (SELECT count(*) FROM chunks WHERE document_id = ?1)
         WHERE id = ?1",
    )?
    .execute(params![id.as_bytes()])?;
    Ok(())
}

fn corrupt(detail: String) -> StorageError {
    StorageError::Corrupt { detail }
}

fn meta_from_row(row: &Row<'_>) -> rusqlite::Result<Result<DocumentMeta, StorageError>> {
    let id: Vec<u8> = row.get(0)?;
    let heads: Vec<u8> = row.get(3)?;
    let count = |index| row.get::<_, i64>(index).map(|value| value.max(0) as u64);
    let meta = (|| {
        let id = <[u8; 16]>::try_from(id.as_slice())
            .map(DocumentId::from_bytes)
            .map_err(|_| corrupt(format!("a document id of {} bytes", id.len())))?;
        let heads = decode_heads(&heads)
            .ok_or_else(|| corrupt(format!("document {id} has malformed heads")))?;
        Ok(DocumentMeta {
            id,
            created_at: row.get(1)?,
            updated_at: row.get(2)?,
            heads,
            snapshot_bytes: count(4)?,
            incremental_bytes: count(5)?,
            chunk_count: count(6)?,
        })
    })();
    Ok(meta)
}

/// Loads a document's metadata and chunks (snapshots first, then in write order), both in
/// one read transaction so that a concurrent write is seen entirely or not at all.
pub(crate) fn load(
    conn: &Connection,
    id: DocumentId,
) -> Result<Option<StoredDocument>, StorageError> {
    let tx = conn.unchecked_transaction()?;
    let stored = load_in(&tx, id)?;
    tx.finish()?;
    Ok(stored)
}

fn load_in(conn: &Connection, id: DocumentId) -> Result<Option<StoredDocument>, StorageError> {
    let meta = conn
        .prepare_cached(&format!(
            "SELECT {META_COLUMNS} FROM documents WHERE id = ?1"
        ))?
        .query_row(params![id.as_bytes()], meta_from_row)
        .optional()?
        .transpose()?;
    let Some(meta) = meta else {
        return Ok(None);
    };
    let mut statement = conn.prepare_cached(
        "SELECT kind, hash, data FROM chunks WHERE document_id = ?1 ORDER BY kind, rowid",
    )?;
    let mut rows = statement.query(params![id.as_bytes()])?;
    let mut chunks = Vec::new();
    while let Some(row) = rows.next()? {
        let kind = ChunkKind::from_code(row.get(0)?)
            .ok_or_else(|| corrupt(format!("document {id} has a chunk of unknown kind")))?;
        let hash: Vec<u8> = row.get(1)?;
        let hash = ChunkHash::from_slice(&hash)
            .ok_or_else(|| corrupt(format!("document {id} has a malformed chunk hash")))?;
        let data: Vec<u8> = row.get(2)?;
        chunks.push(Chunk::from_stored(kind, hash, data));
    }
    Ok(Some(StoredDocument { meta, chunks }))
}

/// The metadata of every document, ordered by id.
pub(crate) fn list(conn: &Connection) -> Result<Vec<DocumentMeta>, StorageError> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {META_COLUMNS} FROM documents ORDER BY id"))?;
    let rows = statement.query_map([], meta_from_row)?;
    let mut metas = Vec::new();
    for row in rows {
        metas.push(row??);
    }
    Ok(metas)
}

/// How many documents are stored.
pub(crate) fn count(conn: &Connection) -> Result<u64, StorageError> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM documents")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The sync state saved for `(id, peer)`.
pub(crate) fn load_sync_state(
    conn: &Connection,
    id: DocumentId,
    peer: &StorageId,
) -> Result<Option<Vec<u8>>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT state FROM sync_states WHERE document_id = ?1 AND peer = ?2")?
        .query_row(params![id.as_bytes(), peer.as_str()], |row| row.get(0))
        .optional()?)
}

const STORAGE_ID_KEY: &str = "storage-id";

/// This replica's storage id, created on first use.
pub(crate) fn storage_id(conn: &Connection) -> Result<StorageId, StorageError> {
    let existing: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM replica WHERE key = ?1",
            params![STORAGE_ID_KEY],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(bytes) = existing {
        return String::from_utf8(bytes)
            .map(StorageId::new)
            .map_err(|_| corrupt("the storage id is not UTF-8".into()));
    }
    let id = StorageId::random();
    conn.execute(
        "INSERT INTO replica (key, value) VALUES (?1, ?2)",
        params![STORAGE_ID_KEY, id.as_str().as_bytes()],
    )?;
    Ok(id)
}
