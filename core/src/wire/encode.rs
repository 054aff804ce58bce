//! Encoding messages as the JS code reads them: definite-length maps with text keys, byte
//! strings for binary fields, absent fields left out.

use std::convert::Infallible;

use minicbor::{Encoder, encode::Error};

use super::message::{Message, PeerMetadata, RemoteHeads};
use crate::{DocumentId, StorageId, id::bs58check};

type Result = std::result::Result<(), Error<Infallible>>;

/// Encodes one message.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut encoder = Encoder::new(Vec::new());
    match write_message(&mut encoder, message) {
        Ok(()) => encoder.into_writer(),
        // Writing to a `Vec` cannot fail, and nothing here raises a custom error.
        Err(error) => unreachable!("encoding into a Vec failed: {error}"),
    }
}

fn write_message(e: &mut Encoder<Vec<u8>>, message: &Message) -> Result {
    match message {
        Message::Join {
            sender,
            metadata,
            supported_versions,
        } => {
            let len = 2 + u64::from(metadata.is_some()) + u64::from(supported_versions.is_some());
            e.map(len)?.str("type")?.str("join")?;
            e.str("senderId")?.str(sender.as_str())?;
            if let Some(metadata) = metadata {
                write_metadata(e, metadata)?;
            }
            if let Some(versions) = supported_versions {
                e.str("supportedProtocolVersions")?
                    .array(versions.len() as u64)?;
                for version in versions {
                    e.str(version)?;
                }
            }
        }
        Message::Peer {
            sender,
            target,
            metadata,
            selected_version,
        } => {
            e.map(4 + u64::from(metadata.is_some()))?;
            e.str("type")?.str("peer")?;
            e.str("senderId")?.str(sender.as_str())?;
            if let Some(metadata) = metadata {
                write_metadata(e, metadata)?;
            }
            e.str("selectedProtocolVersion")?.str(selected_version)?;
            e.str("targetId")?.str(target.as_str())?;
        }
        Message::Error {
            sender,
            target,
            message,
        } => {
            e.map(2 + u64::from(sender.is_some()) + u64::from(target.is_some()))?;
            e.str("type")?.str("error")?;
            if let Some(sender) = sender {
                e.str("senderId")?.str(sender.as_str())?;
            }
            if let Some(target) = target {
                e.str("targetId")?.str(target.as_str())?;
            }
            e.str("message")?.str(message)?;
        }
        Message::Request {
            sender,
            target,
            document,
            data,
        }
        | Message::Sync {
            sender,
            target,
            document,
            data,
        } => {
            e.map(5)?.str("type")?.str(message.type_name())?;
            e.str("senderId")?.str(sender.as_str())?;
            e.str("targetId")?.str(target.as_str())?;
            write_document(e, document)?;
            e.str("data")?.bytes(data)?;
        }
        Message::DocUnavailable {
            sender,
            target,
            document,
        } => {
            e.map(4)?.str("type")?.str("doc-unavailable")?;
            e.str("senderId")?.str(sender.as_str())?;
            e.str("targetId")?.str(target.as_str())?;
            write_document(e, document)?;
        }
        Message::Ephemeral {
            sender,
            target,
            document,
            session,
            count,
            data,
        } => {
            e.map(7)?.str("type")?.str("ephemeral")?;
            e.str("senderId")?.str(sender.as_str())?;
            e.str("targetId")?.str(target.as_str())?;
            e.str("count")?;
            write_number(e, *count)?;
            e.str("sessionId")?.str(session)?;
            write_document(e, document)?;
            e.str("data")?.bytes(data)?;
        }
        Message::RemoteSubscriptionChange {
            sender,
            target,
            add,
            remove,
        } => {
            e.map(5)?.str("type")?.str("remote-subscription-change")?;
            e.str("senderId")?.str(sender.as_str())?;
            e.str("targetId")?.str(target.as_str())?;
            write_storage_ids(e, "add", add)?;
            write_storage_ids(e, "remove", remove)?;
        }
        Message::RemoteHeadsChanged {
            sender,
            target,
            document,
            new_heads,
        } => {
            e.map(5)?.str("type")?.str("remote-heads-changed")?;
            e.str("senderId")?.str(sender.as_str())?;
            e.str("targetId")?.str(target.as_str())?;
            write_document(e, document)?;
            e.str("newHeads")?.map(new_heads.len() as u64)?;
            for (storage, RemoteHeads { heads, timestamp }) in new_heads {
                e.str(storage.as_str())?.map(2)?;
                e.str("heads")?.array(heads.len() as u64)?;
                for head in heads {
                    e.str(&bs58check::encode(&head.0))?;
                }
                e.str("timestamp")?;
                write_number(e, *timestamp)?;
            }
        }
        Message::Leave { sender } => {
            e.map(2)?.str("type")?.str("leave")?;
            e.str("senderId")?.str(sender.as_str())?;
        }
    }
    Ok(())
}

/// An integer as JS reads it: cbor-x decodes integers above 32 bits as `BigInt`, which JS
/// code comparing timestamps does not expect, and writes them itself as float64 (exact up
/// to 2^53, the largest integer a JS number holds).
fn write_number(e: &mut Encoder<Vec<u8>>, n: u64) -> Result {
    if n <= u64::from(u32::MAX) {
        e.u64(n)?;
    } else {
        e.f64(n as f64)?;
    }
    Ok(())
}

fn write_metadata(e: &mut Encoder<Vec<u8>>, metadata: &PeerMetadata) -> Result {
    e.str("peerMetadata")?
        .map(1 + u64::from(metadata.storage_id.is_some()))?;
    if let Some(storage) = &metadata.storage_id {
        e.str("storageId")?.str(storage.as_str())?;
    }
    e.str("isEphemeral")?.bool(metadata.is_ephemeral)?;
    Ok(())
}

fn write_document(e: &mut Encoder<Vec<u8>>, document: &DocumentId) -> Result {
    e.str("documentId")?.str(&document.to_string())?;
    Ok(())
}

fn write_storage_ids(e: &mut Encoder<Vec<u8>>, key: &str, ids: &[StorageId]) -> Result {
    e.str(key)?.array(ids.len() as u64)?;
    for id in ids {
        e.str(id.as_str())?;
    }
    Ok(())
}
