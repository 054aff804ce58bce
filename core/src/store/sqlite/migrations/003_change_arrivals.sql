-- weft schema version 3: who delivered each change, recorded by a relay that checks tokens
-- (the user a connection's credentials name), so that an audit does not rest on the author
-- a writing device claims.

CREATE TABLE change_arrivals (
    document_id BLOB NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    change      BLOB NOT NULL,
    user        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (document_id, change)
) WITHOUT ROWID;
