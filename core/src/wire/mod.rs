//! The wire: automerge-repo's messages and their CBOR form.
//!
//! One WebSocket binary message carries one CBOR map with text keys, as the official
//! automerge-repo packages send it (their encoder is cbor-x). [`Message`] is the whole set;
//! [`decode`] reads what real peers send — non-minimal length headers, `undefined` for
//! absent fields, integers above 32 bits as float64 — within [`Limits`], and [`encode`] writes
//! the field names and shapes the JS code reads. Messages of a type we do not know decode to
//! `None`: they are ignored, never fatal, so peers can add extensions.
//!
//! This module knows nothing of connections or documents' state; the [`sync`](crate::sync)
//! engine gives the messages their meaning.

mod decode;
mod encode;
mod message;

pub use decode::{DecodeError, Limits, decode, decode_with};
pub use encode::encode;
pub use message::{Message, PROTOCOL_V1, PeerMetadata, RemoteHeads};
