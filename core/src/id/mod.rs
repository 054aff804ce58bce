//! Identities shared with automerge-repo: document ids, `automerge:` URLs, peer and storage
//! ids.

mod automerge_url;
pub(crate) mod bs58check;
mod document_id;
mod peer_id;
mod storage_id;

pub use automerge_url::{AutomergeUrl, PathSegment, UrlError};
pub use document_id::{DocumentId, IdError};
pub use peer_id::PeerId;
pub use storage_id::StorageId;
