//! A session's outbound queue, bounded in bytes rather than in messages, so
//! one client that stops reading holds at most a fixed amount of memory.
//!
//! An item counts as queued until the session has written it, not merely
//! taken it out: while anything is queued or being written, new frames must
//! queue behind it. When nothing is, a worker's relay may hand a frame
//! straight to the transport ([`DirectWrite`]), skipping a wake of the
//! session task: the common case of a client that keeps up.
//!
//! Chat messages carry their id ([`Outbound::Live`]) and a JSON session
//! writes each id of its room at most once, in order: a history page it
//! read and the live messages around it overlap when the page was read
//! while the node was still relaying what it covers (a lost publish read
//! back from the store, say). The queue keeps the highest id written, for
//! the shortcut past it to skip what was already written too.
//!
//! When the hub gives up on a client ([`OutboundSender::abandon`]), the
//! session hears it at once, even in the middle of a write that waits on the
//! peer: it must not first write out what is still queued for a peer that
//! is not reading.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::RoomName;
use tokio::sync::{Notify, mpsc};

/// Something the hub wants a session to do with its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Write a text frame.
    Text(ByteString),
    /// Write a binary frame (only plain clients send and receive these).
    Binary(Bytes),
    /// Write a chat message of the session's room (a `message` frame):
    /// unless its id was already written.
    Live {
        /// The message's id.
        id: u64,
        /// Its frame.
        text: ByteString,
    },
    /// The session is in `room` from here on (a marker from its relay,
    /// never written): until its first history page there, the live
    /// messages of the room wait behind the page.
    Entered(RoomName),
    /// A history page the session read, forward from where the client is,
    /// to write in the room's order.
    Page {
        /// The room it is of.
        room: RoomName,
        /// The id the client holds everything up to once it has this page
        /// (`None`: the read failed, the frame is an error).
        through: Option<u64>,
        /// Nothing newer was stored when it was read (the client has caught up).
        complete: bool,
        /// Its frame.
        text: ByteString,
    },
    /// Close the socket, for this reason. The session turns it into a close
    /// frame: transport details stay out of the hub.
    Close(CloseCause),
}

/// Why the hub ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The same browser tab reconnected; this is its stale connection.
    Replaced,
    /// Presence lost this connection's nickname (Redis restarted empty, or
    /// this node was cut off past its burial) and someone else holds it now.
    NameLost,
}

impl Outbound {
    /// The bytes this item holds while queued. The payload is shared among
    /// recipients, but each queue is charged for it: that is what the client
    /// would cost if it were the only one.
    pub fn queued_bytes(&self) -> usize {
        match self {
            Self::Text(text) | Self::Live { text, .. } | Self::Page { text, .. } => text.len(),
            Self::Binary(bytes) => bytes.len(),
            Self::Close(_) | Self::Entered(_) => 0,
        }
    }
}

/// Why an item could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The client is too far behind.
    Full,
    /// The session has ended.
    Closed,
}

/// What the queue's ends share: bytes and items queued or being written,
/// and whether the hub gave up on the client.
#[derive(Debug, Default)]
struct Backlog {
    bytes: AtomicUsize,
    items: AtomicUsize,
    abandoned: AtomicBool,
    /// Wakes the session when `abandoned` is set.
    abandon: Notify,
    /// The highest message id of the session's room written (0: none yet).
    through: AtomicU64,
}

impl Backlog {
    fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }
}

/// Hands a frame to the transport at once, if it can take it without
/// waiting; implemented by the session layer, which owns the socket.
pub trait DirectWrite: Send {
    /// Writes `frame` (text or binary) if that needs no waiting; false if the
    /// frame must go through the queue instead.
    fn try_write(&mut self, frame: &Outbound) -> bool;
}

/// Where a worker's relay puts what a session should write: its queue, and
/// the shortcut past it.
pub struct SessionSink {
    /// The session's queue.
    pub queue: OutboundSender,
    /// Hands frames to the transport while the queue is idle.
    pub direct: Option<Box<dyn DirectWrite>>,
}

impl std::fmt::Debug for SessionSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSink").field("queue", &self.queue).field("direct", &self.direct.is_some()).finish()
    }
}

impl SessionSink {
    /// Writes `frame` directly if nothing is queued before it and the
    /// transport takes it at once; queues it otherwise.
    pub fn send(&mut self, frame: Outbound) -> Result<(), QueueError> {
        if self.queue.is_idle()
            && let Some(direct) = self.direct.as_mut()
        {
            // Idle: the session holds nothing back, and `through` is its own.
            let through = &self.queue.queued.through;
            match &frame {
                Outbound::Live { id, .. } if *id <= through.load(Ordering::Acquire) => return Ok(()),
                Outbound::Live { id, .. } if direct.try_write(&frame) => {
                    through.store(*id, Ordering::Release);
                    return Ok(());
                }
                Outbound::Live { .. } => {}
                _ if direct.try_write(&frame) => return Ok(()),
                _ => {}
            }
        }
        self.queue.try_send(frame)
    }
}

/// The hub's end of a session's queue.
#[derive(Debug, Clone)]
pub struct OutboundSender {
    items: mpsc::UnboundedSender<Outbound>,
    queued: Arc<Backlog>,
    limit: usize,
}

/// The session's own way to queue its replies: it does not keep the queue
/// open, so the queue still closes when the hub lets go of the session.
#[derive(Debug, Clone)]
pub struct ReplySender {
    items: mpsc::WeakUnboundedSender<Outbound>,
    queued: Arc<Backlog>,
    limit: usize,
}

/// The session's end of its queue.
#[derive(Debug)]
pub struct OutboundReceiver {
    items: mpsc::UnboundedReceiver<Outbound>,
    queued: Arc<Backlog>,
}

/// A queue that refuses items once `limit` bytes wait in it.
pub fn outbound_queue(limit: usize) -> (OutboundSender, OutboundReceiver) {
    let (items, receiver) = mpsc::unbounded_channel();
    let queued = Arc::new(Backlog::default());
    (OutboundSender { items, queued: queued.clone(), limit }, OutboundReceiver { items: receiver, queued })
}

impl OutboundSender {
    /// Queues `item` unless that would put more than the limit in the queue.
    /// Close requests are always accepted, unless the queue was abandoned.
    pub fn try_send(&self, item: Outbound) -> Result<(), QueueError> {
        if self.queued.is_abandoned() {
            return Err(QueueError::Closed);
        }
        let size = item.queued_bytes();
        let before = self.queued.bytes.fetch_add(size, Ordering::AcqRel);
        if size > 0 && before + size > self.limit {
            self.queued.bytes.fetch_sub(size, Ordering::AcqRel);
            return Err(QueueError::Full);
        }
        self.queued.items.fetch_add(1, Ordering::AcqRel);
        self.items.send(item).map_err(|_| {
            self.queued.bytes.fetch_sub(size, Ordering::AcqRel);
            self.queued.items.fetch_sub(1, Ordering::AcqRel);
            QueueError::Closed
        })
    }

    /// Whether nothing is queued or being written: a frame sent now may skip the queue.
    pub fn is_idle(&self) -> bool {
        self.queued.items.load(Ordering::Acquire) == 0
    }

    /// Gives up on the client: nothing more is queued, and the session is
    /// told at once (see [`OutboundReceiver::abandoned`]) that it should
    /// close without writing what is still queued.
    pub fn abandon(&self) {
        self.queued.abandoned.store(true, Ordering::Release);
        // One waiter at most (the session); a permit is stored if it is not waiting yet.
        self.queued.abandon.notify_one();
    }

    /// A sender for the session's own replies, which does not keep the queue open.
    pub fn replies(&self) -> ReplySender {
        ReplySender { items: self.items.downgrade(), queued: self.queued.clone(), limit: self.limit }
    }
}

impl ReplySender {
    /// Queues a reply, counted against the same byte limit as everything else.
    pub fn try_send(&self, item: Outbound) -> Result<(), QueueError> {
        let items = self.items.upgrade().ok_or(QueueError::Closed)?;
        OutboundSender { items, queued: self.queued.clone(), limit: self.limit }.try_send(item)
    }
}

impl OutboundReceiver {
    /// The next item; `None` once the hub has dropped the sender. It still
    /// counts as queued until [`OutboundReceiver::written`] says it is written.
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.items.recv().await
    }

    /// Whether the hub has abandoned the queue ([`OutboundSender::abandon`]).
    pub fn is_abandoned(&self) -> bool {
        self.queued.is_abandoned()
    }

    /// Resolves once the hub has abandoned the queue ([`OutboundSender::abandon`]).
    /// Cancel-safe.
    pub async fn abandoned(&self) {
        loop {
            let notified = self.queued.abandon.notified();
            if self.queued.is_abandoned() {
                return;
            }
            notified.await;
        }
    }

    /// Marks an item taken with [`OutboundReceiver::recv`], of
    /// [`Outbound::queued_bytes`] `bytes`, as written.
    pub fn written(&self, bytes: usize) {
        self.queued.bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.queued.items.fetch_sub(1, Ordering::AcqRel);
    }

    /// The highest message id of the session's room written (0: none).
    pub fn through(&self) -> u64 {
        self.queued.through.load(Ordering::Acquire)
    }

    /// Notes the highest message id of the session's room written.
    pub fn set_through(&self, id: u64) {
        self.queued.through.store(id, Ordering::Release);
    }

    /// Bytes waiting now (or being written).
    pub fn queued_bytes(&self) -> usize {
        self.queued.bytes.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_past_the_byte_limit_and_recovers_as_it_drains() {
        let (sender, mut receiver) = outbound_queue(10);
        let six = || Outbound::Text(ByteString::from("sixsix"));
        assert_eq!(sender.try_send(six()), Ok(()));
        assert_eq!(sender.try_send(six()), Err(QueueError::Full));
        assert_eq!(receiver.queued_bytes(), 6);
        assert_eq!(receiver.recv().await, Some(six()));
        assert!(!sender.is_idle(), "taken but not yet written still counts");
        assert_eq!(sender.try_send(six()), Err(QueueError::Full));
        receiver.written(6);
        assert_eq!(receiver.queued_bytes(), 0);
        assert!(sender.is_idle());
        assert_eq!(sender.try_send(six()), Ok(()));
        assert_eq!(sender.try_send(Outbound::Close(CloseCause::Replaced)), Ok(()));
        drop(receiver);
        assert_eq!(sender.try_send(Outbound::Text(ByteString::from("x"))), Err(QueueError::Closed));
    }

    #[tokio::test]
    async fn an_abandoned_queue_is_heard_at_once_and_takes_nothing_more() {
        let (sender, receiver) = outbound_queue(10);
        let replies = sender.replies();
        assert_eq!(sender.try_send(Outbound::Text(ByteString::from("sixsix"))), Ok(()));
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), receiver.abandoned()).await;
        assert!(waiting.is_err(), "not abandoned yet");
        assert!(!receiver.is_abandoned());
        sender.abandon();
        assert!(receiver.is_abandoned());
        // Heard though an item still waits in the queue, and by a waiter that came late.
        tokio::time::timeout(std::time::Duration::from_secs(1), receiver.abandoned()).await.expect("heard at once");
        tokio::time::timeout(std::time::Duration::from_secs(1), receiver.abandoned()).await.expect("heard again");
        assert_eq!(sender.try_send(Outbound::Close(CloseCause::Replaced)), Err(QueueError::Closed));
        assert_eq!(replies.try_send(Outbound::Text(ByteString::from("x"))), Err(QueueError::Closed));
    }

    #[tokio::test]
    async fn replies_count_against_the_limit_and_do_not_keep_the_queue_open() {
        let (sender, mut receiver) = outbound_queue(10);
        let replies = sender.replies();
        assert_eq!(replies.try_send(Outbound::Text(ByteString::from("sixsix"))), Ok(()));
        assert_eq!(sender.try_send(Outbound::Text(ByteString::from("sixsix"))), Err(QueueError::Full));
        assert_eq!(receiver.recv().await, Some(Outbound::Text(ByteString::from("sixsix"))));
        receiver.written(6);
        drop(sender);
        assert_eq!(receiver.recv().await, None, "the hub let go: the queue ends");
        assert_eq!(replies.try_send(Outbound::Text(ByteString::from("x"))), Err(QueueError::Closed));
    }
}
