//! Identities shared with automerge-repo: document ids, `automerge:` URLs, storage ids.

mod automerge_url;
mod bs58check;
mod document_id;
mod storage_id;

pub use automerge_url::{AutomergeUrl, PathSegment, UrlError};
pub use document_id::{DocumentId, IdError};
pub use storage_id::StorageId;
