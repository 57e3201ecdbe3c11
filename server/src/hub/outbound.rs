//! A session's outbound queue, bounded in bytes rather than in messages, so
//! one client that stops reading holds at most a fixed amount of memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::mpsc;

/// Something the hub wants a session to do with its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Write a text frame.
    Text(ByteString),
    /// Write a binary frame (only plain clients send and receive these).
    Binary(Bytes),
    /// Close the socket, for this reason. The session turns it into a close
    /// frame: transport details stay out of the hub.
    Close(CloseCause),
}

/// Why the hub ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The same browser tab reconnected; this is its stale connection.
    Replaced,
}

impl Outbound {
    /// The bytes this item holds while queued. The payload is shared among
    /// recipients, but each queue is charged for it: that is what the client
    /// would cost if it were the only one.
    pub fn queued_bytes(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) => bytes.len(),
            Self::Close(_) => 0,
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

/// The hub's end of a session's queue.
#[derive(Debug, Clone)]
pub struct OutboundSender {
    items: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The session's own way to queue its replies: it does not keep the queue
/// open, so the queue still closes when the hub lets go of the session.
#[derive(Debug, Clone)]
pub struct ReplySender {
    items: mpsc::WeakUnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The session's end of its queue.
#[derive(Debug)]
pub struct OutboundReceiver {
    items: mpsc::UnboundedReceiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

/// A queue that refuses items once `limit` bytes wait in it.
pub fn outbound_queue(limit: usize) -> (OutboundSender, OutboundReceiver) {
    let (items, receiver) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (OutboundSender { items, queued: queued.clone(), limit }, OutboundReceiver { items: receiver, queued })
}

impl OutboundSender {
    /// Queues `item` unless that would put more than the limit in the queue.
    /// Close requests are always accepted.
    pub fn try_send(&self, item: Outbound) -> Result<(), QueueError> {
        let size = item.queued_bytes();
        let before = self.queued.fetch_add(size, Ordering::AcqRel);
        if size > 0 && before + size > self.limit {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            return Err(QueueError::Full);
        }
        self.items.send(item).map_err(|_| {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            QueueError::Closed
        })
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
    /// The next item; `None` once the hub has dropped the sender.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let item = self.items.recv().await?;
        self.queued.fetch_sub(item.queued_bytes(), Ordering::AcqRel);
        Some(item)
    }

    /// Bytes waiting now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
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
        assert_eq!(receiver.queued_bytes(), 0);
        assert_eq!(sender.try_send(six()), Ok(()));
        assert_eq!(sender.try_send(Outbound::Close(CloseCause::Replaced)), Ok(()));
        drop(receiver);
        assert_eq!(sender.try_send(Outbound::Text(ByteString::from("x"))), Err(QueueError::Closed));
    }

    #[tokio::test]
    async fn replies_count_against_the_limit_and_do_not_keep_the_queue_open() {
        let (sender, mut receiver) = outbound_queue(10);
        let replies = sender.replies();
        assert_eq!(replies.try_send(Outbound::Text(ByteString::from("sixsix"))), Ok(()));
        assert_eq!(sender.try_send(Outbound::Text(ByteString::from("sixsix"))), Err(QueueError::Full));
        assert_eq!(receiver.recv().await, Some(Outbound::Text(ByteString::from("sixsix"))));
        drop(sender);
        assert_eq!(receiver.recv().await, None, "the hub let go: the queue ends");
        assert_eq!(replies.try_send(Outbound::Text(ByteString::from("x"))), Err(QueueError::Closed));
    }
}
