//! The schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Each migration is a SQL file that is never edited once released; a new schema version is a
//! new file. Opening a database runs the missing migrations in one transaction, so a crash
//! mid-migration leaves the old version intact.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::StorageError;

/// The migrations, in order: `MIGRATIONS[n]` upgrades version `n` to `n + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_sizes_and_sync_states.sql"),
    include_str!("migrations/003_change_arrivals.sql"),
];

/// The schema version this build writes.
pub(crate) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`CURRENT_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    migrate_to(conn, CURRENT_VERSION)
}

/// Refuses a schema version this build cannot migrate: newer than it knows, or negative
/// (not one weft ever wrote).
pub(crate) fn check_version(found: i64) -> Result<(), StorageError> {
    if found > CURRENT_VERSION {
        return Err(StorageError::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    if found < 0 {
        return Err(StorageError::Corrupt {
            detail: format!("schema version {found} was not written by weft"),
        });
    }
    Ok(())
}

/// Brings the database to `target` (tests use it to make databases of older versions).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    check_version(found)?;
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(found as usize)
    {
        tracing::info!(from = index, to = index + 1, "migrating database schema");
        tx.execute_batch(sql)?;
    }
    if target > found {
        tx.pragma_update(None, "user_version", target)?;
    }
    tx.commit()?;
    Ok(())
}
