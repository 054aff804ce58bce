//! Decoding messages from untrusted bytes, within limits.
//!
//! Every read is borrowed from the input, so a declared length can never cause an allocation:
//! a string or byte string longer than what is left fails, and an array's declared count is
//! checked against the bytes left before anything is reserved for it. Values of unknown keys
//! are skipped without allocating, up to a nesting depth.

use automerge::ChangeHash;
use minicbor::{Decoder, data::Type};

use super::message::{Message, PeerMetadata, RemoteHeads};
use crate::{DocumentId, PeerId, StorageId, id::IdError, id::bs58check};

/// Bounds on what [`decode_with`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest message, in bytes. The first sync of a large document is one message, so
    /// this bounds the largest document a peer can send in one go.
    pub max_message_bytes: usize,
    /// How deeply arrays, maps and tags may nest, counting the message's own map as 1.
    pub max_depth: usize,
}

impl Limits {
    /// 64 MiB per message (tungstenite's default message size) and a nesting depth of 16,
    /// well above the 4 levels a real message uses.
    pub const DEFAULT: Self = Self {
        max_message_bytes: 64 << 20,
        max_depth: 16,
    };

    /// With another largest message size, in bytes.
    pub const fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// With another nesting depth.
    pub const fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why bytes are not an automerge-repo message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is larger than [`Limits::max_message_bytes`].
    #[error("message of {len} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Arrays or maps nest deeper than [`Limits::max_depth`].
    #[error("message nests deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The bytes are not well-formed CBOR (or are cut short, or hold something after the
    /// message).
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    /// The message is not a map with a text `type`.
    #[error("not an automerge-repo message: {0}")]
    NotAMessage(&'static str),
    /// A field the message's type requires is absent.
    #[error("{kind} message lacks its {field} field")]
    MissingField {
        /// The message type.
        kind: &'static str,
        /// The field's wire name.
        field: &'static str,
    },
    /// A field has a value of the wrong type or shape.
    #[error("field {field} has an invalid value: {reason}")]
    InvalidField {
        /// The field's wire name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The `documentId` is not a document id.
    #[error("invalid documentId: {0}")]
    InvalidDocumentId(#[from] IdError),
}

impl From<minicbor::decode::Error> for DecodeError {
    fn from(error: minicbor::decode::Error) -> Self {
        Self::Cbor(error.to_string())
    }
}

/// Decodes one message with the [default limits](Limits::DEFAULT).
///
/// Returns `Ok(None)` for a well-formed message of a type this crate does not know: peers
/// may send extensions, and those are ignored, not fatal.
pub fn decode(bytes: &[u8]) -> Result<Option<Message>, DecodeError> {
    decode_with(bytes, &Limits::DEFAULT)
}

/// Decodes one message within `limits`. See [`decode`].
pub fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Option<Message>, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit: limits.max_message_bytes,
        });
    }
    let mut reader = Reader {
        decoder: Decoder::new(bytes),
        max_depth: limits.max_depth,
    };
    let fields = reader.message()?;
    if reader.decoder.position() != bytes.len() {
        return Err(DecodeError::Cbor(
            "bytes after the end of the message".to_owned(),
        ));
    }
    fields.into_message()
}

/// The fields of a message, as read from its map, before its type gives them meaning.
#[derive(Default)]
struct Fields<'b> {
    kind: Option<&'b str>,
    sender: Option<&'b str>,
    target: Option<&'b str>,
    document: Option<DocumentId>,
    data: Option<&'b [u8]>,
    message: Option<&'b str>,
    metadata: Option<PeerMetadata>,
    supported_versions: Option<Vec<String>>,
    selected_version: Option<&'b str>,
    session: Option<&'b str>,
    count: Option<u64>,
    add: Option<Vec<StorageId>>,
    remove: Option<Vec<StorageId>>,
    new_heads: Option<Vec<(StorageId, RemoteHeads)>>,
}

struct Reader<'b> {
    decoder: Decoder<'b>,
    max_depth: usize,
}

impl<'b> Reader<'b> {
    fn remaining(&self) -> usize {
        self.decoder.input().len() - self.decoder.position()
    }

    /// Whether the next value is `undefined` or `null` (cbor-x's absent field); consumes it
    /// if so.
    fn absent(&mut self) -> Result<bool, DecodeError> {
        match self.decoder.datatype()? {
            Type::Undefined | Type::Null => {
                self.decoder.skip()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The length of a definite map or array header, checked against the bytes left: every
    /// entry takes at least `min_entry_bytes`, so a count above that is a lie.
    fn checked_len(
        &self,
        len: Option<u64>,
        min_entry_bytes: usize,
        field: &'static str,
    ) -> Result<usize, DecodeError> {
        let len = len.ok_or_else(|| DecodeError::InvalidField {
            field,
            reason: "indefinite length".to_owned(),
        })?;
        match usize::try_from(len) {
            Ok(len) if len.saturating_mul(min_entry_bytes) <= self.remaining() => Ok(len),
            _ => Err(DecodeError::Cbor(format!(
                "{field} declares {len} entries, more than the bytes left"
            ))),
        }
    }

    fn text(&mut self, field: &'static str) -> Result<&'b str, DecodeError> {
        match self.decoder.datatype()? {
            Type::String => Ok(self.decoder.str()?),
            other => Err(wrong_type(field, "text", other)),
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'b [u8], DecodeError> {
        match self.decoder.datatype()? {
            Type::Bytes => Ok(self.decoder.bytes()?),
            other => Err(wrong_type(field, "a byte string", other)),
        }
    }

    /// An unsigned integer, or a float64 holding one (cbor-x writes integers above 32 bits
    /// as float64).
    fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        match self.decoder.datatype()? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => Ok(self.decoder.u64()?),
            Type::F16 | Type::F32 | Type::F64 => {
                let value = self.decoder.f64()?;
                // Below 2^64, where every float64 is an exact integer or has a fraction.
                if (0.0..18_446_744_073_709_551_616.0).contains(&value) && value.fract() == 0.0 {
                    Ok(value as u64)
                } else {
                    Err(DecodeError::InvalidField {
                        field,
                        reason: format!("{value} is not an unsigned integer"),
                    })
                }
            }
            other => Err(wrong_type(field, "an unsigned integer", other)),
        }
    }

    fn boolean(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.decoder.datatype()? {
            Type::Bool => Ok(self.decoder.bool()?),
            other => Err(wrong_type(field, "a boolean", other)),
        }
    }

    fn map_len(&mut self, field: &'static str, depth: usize) -> Result<usize, DecodeError> {
        self.enter(depth)?;
        match self.decoder.datatype()? {
            // Each entry is a key and a value: at least 2 bytes.
            Type::Map => {
                let len = self.decoder.map()?;
                self.checked_len(len, 2, field)
            }
            other => Err(wrong_type(field, "a map", other)),
        }
    }

    fn array_len(&mut self, field: &'static str, depth: usize) -> Result<usize, DecodeError> {
        self.enter(depth)?;
        match self.decoder.datatype()? {
            Type::Array => {
                let len = self.decoder.array()?;
                self.checked_len(len, 1, field)
            }
            other => Err(wrong_type(field, "an array", other)),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > self.max_depth {
            Err(DecodeError::TooDeep {
                limit: self.max_depth,
            })
        } else {
            Ok(())
        }
    }

    /// Skips one value of any type at nesting `depth`, without allocating.
    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        match self.decoder.datatype()? {
            Type::Array | Type::ArrayIndef => {
                self.enter(depth)?;
                match self.decoder.array()? {
                    Some(len) => (0..len).try_for_each(|_| self.skip(depth + 1)),
                    None => self.skip_until_break(depth, 1),
                }
            }
            Type::Map | Type::MapIndef => {
                self.enter(depth)?;
                match self.decoder.map()? {
                    Some(len) => (0..len.saturating_mul(2)).try_for_each(|_| self.skip(depth + 1)),
                    None => self.skip_until_break(depth, 2),
                }
            }
            Type::Tag => {
                self.enter(depth)?;
                self.decoder.tag()?;
                self.skip(depth + 1)
            }
            Type::Break => Err(DecodeError::Cbor("unexpected break".to_owned())),
            // Scalars, and (possibly indefinite) strings, which minicbor skips without
            // allocating or nesting.
            _ => Ok(self.decoder.skip()?),
        }
    }

    fn skip_until_break(&mut self, depth: usize, per_entry: usize) -> Result<(), DecodeError> {
        loop {
            if self.decoder.datatype()? == Type::Break {
                self.decoder.set_position(self.decoder.position() + 1);
                return Ok(());
            }
            for _ in 0..per_entry {
                self.skip(depth + 1)?;
            }
        }
    }

    fn message(&mut self) -> Result<Fields<'b>, DecodeError> {
        // `None`: an indefinite-length map, read up to its break.
        let mut left = match self.decoder.datatype()? {
            Type::Map => Some(self.map_len("message", 1)?),
            Type::MapIndef => {
                self.decoder.map()?;
                None
            }
            _ => return Err(DecodeError::NotAMessage("not a CBOR map")),
        };
        let mut fields = Fields::default();
        loop {
            match &mut left {
                Some(0) => break,
                Some(n) => *n -= 1,
                None if self.decoder.datatype()? == Type::Break => {
                    self.decoder.set_position(self.decoder.position() + 1);
                    break;
                }
                None => {}
            }
            let key = match self.decoder.datatype()? {
                Type::String => self.decoder.str()?,
                _ => {
                    // Not one of ours; cbor-x only writes text keys.
                    self.skip(2)?;
                    self.skip(2)?;
                    continue;
                }
            };
            if self.absent()? {
                continue;
            }
            self.field(&mut fields, key)?;
        }
        Ok(fields)
    }

    fn field(&mut self, fields: &mut Fields<'b>, key: &str) -> Result<(), DecodeError> {
        match key {
            "type" => fields.kind = Some(self.text("type")?),
            "senderId" => fields.sender = Some(self.text("senderId")?),
            "targetId" => fields.target = Some(self.text("targetId")?),
            "documentId" => fields.document = Some(self.document_id()?),
            "data" => fields.data = Some(self.bytes("data")?),
            "message" => fields.message = Some(self.text("message")?),
            // The written spec says `metadata`; the JS code sends `peerMetadata`.
            "peerMetadata" | "metadata" => fields.metadata = Some(self.peer_metadata()?),
            "supportedProtocolVersions" => {
                fields.supported_versions = Some(self.text_array("supportedProtocolVersions")?)
            }
            "selectedProtocolVersion" => {
                fields.selected_version = Some(self.text("selectedProtocolVersion")?)
            }
            "sessionId" => fields.session = Some(self.text("sessionId")?),
            "count" => fields.count = Some(self.uint("count")?),
            "add" => fields.add = Some(self.storage_ids("add")?),
            "remove" => fields.remove = Some(self.storage_ids("remove")?),
            "newHeads" => fields.new_heads = Some(self.new_heads()?),
            _ => self.skip(2)?,
        }
        Ok(())
    }

    /// A document id as bs58check text (or a legacy UUID), or as 16 raw bytes, which some
    /// implementations send.
    fn document_id(&mut self) -> Result<DocumentId, DecodeError> {
        match self.decoder.datatype()? {
            Type::String => Ok(DocumentId::parse(self.decoder.str()?)?),
            Type::Bytes => {
                let bytes = self.decoder.bytes()?;
                let bytes = <[u8; 16]>::try_from(bytes).map_err(|_| IdError::WrongLength {
                    text: format!("{} raw bytes", bytes.len()),
                    len: bytes.len(),
                })?;
                Ok(DocumentId::from_bytes(bytes))
            }
            other => Err(wrong_type("documentId", "text", other)),
        }
    }

    fn peer_metadata(&mut self) -> Result<PeerMetadata, DecodeError> {
        let len = self.map_len("peerMetadata", 2)?;
        let mut metadata = PeerMetadata::default();
        for _ in 0..len {
            let key = self.text("peerMetadata")?;
            if self.absent()? {
                continue;
            }
            match key {
                "storageId" => metadata.storage_id = Some(self.storage_id("storageId")?),
                "isEphemeral" => metadata.is_ephemeral = self.boolean("isEphemeral")?,
                _ => self.skip(3)?,
            }
        }
        Ok(metadata)
    }

    fn text_array(&mut self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        let len = self.array_len(field, 2)?;
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.text(field)?.to_owned());
        }
        Ok(items)
    }

    fn storage_ids(&mut self, field: &'static str) -> Result<Vec<StorageId>, DecodeError> {
        let len = self.array_len(field, 2)?;
        let mut ids = Vec::with_capacity(len);
        for _ in 0..len {
            ids.push(self.storage_id(field)?);
        }
        Ok(ids)
    }

    /// A storage id: any text (peers choose their own), bounded like a peer id because it
    /// becomes a key of stored sync states.
    fn storage_id(&mut self, field: &'static str) -> Result<StorageId, DecodeError> {
        let text = self.text(field)?;
        if text.len() > StorageId::MAX_LEN {
            return Err(DecodeError::InvalidField {
                field,
                reason: format!("longer than {} bytes", StorageId::MAX_LEN),
            });
        }
        Ok(StorageId::new(text))
    }

    /// `{storageId: {heads: [bs58check hash], timestamp}}`.
    fn new_heads(&mut self) -> Result<Vec<(StorageId, RemoteHeads)>, DecodeError> {
        let len = self.map_len("newHeads", 2)?;
        let mut all = Vec::with_capacity(len);
        for _ in 0..len {
            let storage = self.storage_id("newHeads")?;
            let entry_len = self.map_len("newHeads", 3)?;
            let (mut heads, mut timestamp) = (None, None);
            for _ in 0..entry_len {
                let key = self.text("newHeads")?;
                if self.absent()? {
                    continue;
                }
                match key {
                    "heads" => heads = Some(self.heads()?),
                    "timestamp" => timestamp = Some(self.uint("timestamp")?),
                    _ => self.skip(4)?,
                }
            }
            let missing = |field| DecodeError::MissingField {
                kind: "remote-heads-changed",
                field,
            };
            all.push((
                storage,
                RemoteHeads {
                    heads: heads.ok_or_else(|| missing("heads"))?,
                    timestamp: timestamp.ok_or_else(|| missing("timestamp"))?,
                },
            ));
        }
        Ok(all)
    }

    fn heads(&mut self) -> Result<Vec<ChangeHash>, DecodeError> {
        let len = self.array_len("heads", 4)?;
        let mut heads = Vec::with_capacity(len);
        for _ in 0..len {
            let text = self.text("heads")?;
            let invalid = |reason: &str| DecodeError::InvalidField {
                field: "heads",
                reason: format!("{text:?} is not a bs58check change hash: {reason}"),
            };
            // 32 bytes and a 4-byte checksum are at most 50 base58 characters.
            if text.len() > 50 {
                return Err(invalid("too long"));
            }
            let bytes = bs58check::decode(text).map_err(|_| invalid("bad encoding"))?;
            heads
                .push(ChangeHash::try_from(bytes.as_slice()).map_err(|_| invalid("not 32 bytes"))?);
        }
        Ok(heads)
    }
}

fn wrong_type(field: &'static str, expected: &str, found: Type) -> DecodeError {
    DecodeError::InvalidField {
        field,
        reason: format!("expected {expected}, found {found}"),
    }
}

impl Fields<'_> {
    fn into_message(self) -> Result<Option<Message>, DecodeError> {
        let Some(kind) = self.kind else {
            return Err(DecodeError::NotAMessage("no text `type` field"));
        };
        let kind: &'static str = match kind {
            "join" => "join",
            "peer" => "peer",
            "error" => "error",
            "request" => "request",
            "sync" => "sync",
            "doc-unavailable" => "doc-unavailable",
            "ephemeral" => "ephemeral",
            "remote-subscription-change" => "remote-subscription-change",
            "remote-heads-changed" => "remote-heads-changed",
            "leave" => "leave",
            _ => return Ok(None),
        };
        let missing = |field| DecodeError::MissingField { kind, field };
        let peer = |id: Option<&str>, field| -> Result<PeerId, DecodeError> {
            let id = id.ok_or_else(|| missing(field))?;
            if id.len() > PeerId::MAX_LEN {
                return Err(DecodeError::InvalidField {
                    field,
                    reason: format!("longer than {} bytes", PeerId::MAX_LEN),
                });
            }
            Ok(PeerId::new(id))
        };
        let optional_peer =
            |id: Option<&str>, field| id.map(|id| peer(Some(id), field)).transpose();
        let document = || self.document.ok_or_else(|| missing("documentId"));
        let data = || self.data.map(<[u8]>::to_vec).ok_or_else(|| missing("data"));
        let message = match kind {
            "join" => Message::Join {
                sender: peer(self.sender, "senderId")?,
                metadata: self.metadata,
                supported_versions: self.supported_versions,
            },
            "peer" => Message::Peer {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                metadata: self.metadata,
                selected_version: self
                    .selected_version
                    .ok_or_else(|| missing("selectedProtocolVersion"))?
                    .to_owned(),
            },
            "error" => Message::Error {
                sender: optional_peer(self.sender, "senderId")?,
                target: optional_peer(self.target, "targetId")?,
                message: self.message.unwrap_or_default().to_owned(),
            },
            "request" => Message::Request {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                document: document()?,
                data: data()?,
            },
            "sync" => Message::Sync {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                document: document()?,
                data: data()?,
            },
            "doc-unavailable" => Message::DocUnavailable {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                document: document()?,
            },
            "ephemeral" => Message::Ephemeral {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                document: document()?,
                session: self.session.ok_or_else(|| missing("sessionId"))?.to_owned(),
                count: self.count.ok_or_else(|| missing("count"))?,
                data: data()?,
            },
            "remote-subscription-change" => Message::RemoteSubscriptionChange {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                add: self.add.unwrap_or_default(),
                remove: self.remove.unwrap_or_default(),
            },
            "remote-heads-changed" => Message::RemoteHeadsChanged {
                sender: peer(self.sender, "senderId")?,
                target: peer(self.target, "targetId")?,
                document: document()?,
                new_heads: self.new_heads.ok_or_else(|| missing("newHeads"))?,
            },
            _ => Message::Leave {
                sender: peer(self.sender, "senderId")?,
            },
        };
        Ok(Some(message))
    }
}
