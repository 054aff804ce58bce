//! Change events of a document: [`DocEvent`] and the [`DocSubscription`] stream.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use automerge::{ChangeHash, Patch};

use crate::PeerId;
use tokio::sync::broadcast;
use tokio_stream::{
    Stream, StreamExt,
    wrappers::{BroadcastStream, errors::BroadcastStreamRecvError},
};

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeOrigin {
    /// Made on this device through [`DocHandle::change`](crate::DocHandle::change).
    Local,
    /// Received from a peer.
    Remote {
        /// The peer it arrived from (the next hop: a relay forwards others' changes).
        peer: PeerId,
    },
}

/// One applied change.
#[derive(Debug, Clone)]
pub struct DocChange {
    /// Where it came from.
    pub origin: ChangeOrigin,
    /// The document's heads after it.
    pub heads: Vec<ChangeHash>,
    /// What changed, as automerge patches against the previous state, in order.
    pub patches: Arc<Vec<Patch>>,
}

/// Something that happened to a document.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DocEvent {
    /// A change was applied. Events arrive in the order changes were applied, so patches can
    /// be replayed onto a view of the document.
    Changed(DocChange),
    /// The subscriber fell behind and `missed` events were dropped: re-read the document.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
    /// The document was deleted; no more events follow.
    Deleted,
    /// A peer broadcast an ephemeral payload about the document (presence, cursors): not
    /// part of the document, never stored. See
    /// [`DocHandle::broadcast`](crate::DocHandle::broadcast).
    Ephemeral {
        /// The peer that broadcast it (relays pass it on with the sender's id).
        from: PeerId,
        /// The payload as sent (automerge-repo apps send CBOR).
        data: Vec<u8>,
    },
}

/// A stream of a document's events, from [`DocHandle::subscribe`](crate::DocHandle::subscribe).
///
/// Events are emitted when a change is applied to the document in memory; the change is
/// durable once the `change()` call that made it has returned. Dropping the subscription
/// unsubscribes.
#[derive(Debug)]
pub struct DocSubscription {
    inner: BroadcastStream<DocEvent>,
}

impl DocSubscription {
    pub(crate) fn new(receiver: broadcast::Receiver<DocEvent>) -> Self {
        Self {
            inner: BroadcastStream::new(receiver),
        }
    }

    /// The next event; `None` once the document is unloaded (no handle is left).
    pub async fn recv(&mut self) -> Option<DocEvent> {
        self.next().await
    }
}

impl Stream for DocSubscription {
    type Item = DocEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DocEvent>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|event| match event {
                Ok(event) => event,
                Err(BroadcastStreamRecvError::Lagged(missed)) => DocEvent::Lagged { missed },
            })
        })
    }
}
