-- weft schema version 2: stored sizes in the metadata row, and per-peer sync states.

ALTER TABLE documents ADD COLUMN snapshot_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN incremental_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 0;

UPDATE documents SET
    snapshot_bytes = (SELECT coalesce(sum(length(data)), 0) FROM chunks
                      WHERE document_id = documents.id AND kind = 0),
    incremental_bytes = (SELECT coalesce(sum(length(data)), 0) FROM chunks
                         WHERE document_id = documents.id AND kind = 1),
    chunk_count = (SELECT count(*) FROM chunks WHERE document_id = documents.id);

-- The automerge sync state we keep with each peer (by its storage id) for each document, so
-- that a reconnect exchanges only what is missing.
CREATE TABLE sync_states (
    document_id BLOB NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    peer        TEXT NOT NULL,
    state       BLOB NOT NULL,
    PRIMARY KEY (document_id, peer)
) WITHOUT ROWID;
