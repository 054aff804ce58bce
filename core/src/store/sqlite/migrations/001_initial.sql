-- weft schema version 1: documents as automerge chunks.
-- Frozen: a database of this version exists in the wild; later changes go in new files.

-- Facts about this replica's storage (its storage id).
CREATE TABLE replica (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);

-- One row per document.
CREATE TABLE documents (
    id         BLOB PRIMARY KEY NOT NULL, -- 16 bytes, the UUID of the DocumentId
    created_at INTEGER NOT NULL,          -- ms since the Unix epoch
    updated_at INTEGER NOT NULL,          -- ms since the Unix epoch
    heads      BLOB NOT NULL              -- concatenated 32-byte change hashes
) WITHOUT ROWID;

-- The document's bytes: snapshots (kind 0) and incremental changes (kind 1), keyed by the
-- SHA-256 of their bytes. The rowid keeps the order they were written in.
CREATE TABLE chunks (
    document_id BLOB NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    hash        BLOB NOT NULL,
    kind        INTEGER NOT NULL,
    data        BLOB NOT NULL,
    UNIQUE (document_id, hash)
);
