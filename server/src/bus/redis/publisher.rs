//! Publishes a bus's events to Redis: whatever is queued goes out as one
//! pipeline (one round trip however many), in order, on a connection of its
//! own. While Redis is away, stored messages are kept (up to a bound) and
//! published once it is back, in order: other nodes drop what they already
//! read from the store. Typing and presence events are not kept: late, they
//! would be wrong.

use std::collections::VecDeque;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::metrics::{GaugeShare, Metrics};

/// Most events in one pipeline.
const MAX_PIPELINE: usize = 512;

/// Most messages kept while Redis is away; the oldest go first (other nodes
/// read them from the store when a later message shows the gap).
const MAX_KEPT: usize = 10_000;

/// How long connecting or one pipeline may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The first wait before retrying, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One event to publish.
pub(super) struct Outgoing {
    /// Its room's channel.
    pub(super) channel: String,
    /// The encoded envelope.
    pub(super) payload: Vec<u8>,
    /// Whether it is a stored message (kept while Redis is away).
    pub(super) message: bool,
}

/// The publishing task of one bus.
pub(super) struct Publisher {
    client: redis::Client,
    queue: mpsc::UnboundedReceiver<Outgoing>,
    metrics: Metrics,
    connection: Option<MultiplexedConnection>,
    /// Sent nowhere yet, oldest first.
    pending: VecDeque<Outgoing>,
    /// This bus's share of the waiting-to-publish gauge.
    unpublished: GaugeShare,
}

impl Publisher {
    pub(super) fn new(client: redis::Client, queue: mpsc::UnboundedReceiver<Outgoing>, metrics: Metrics) -> Self {
        let unpublished = GaugeShare::of(&metrics.held.bus_unpublished);
        Self { client, queue, metrics, connection: None, pending: VecDeque::new(), unpublished }
    }

    /// Publishes until the bus is dropped.
    pub(super) async fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            self.unpublished.report(self.pending.len() + self.queue.len());
            if self.pending.is_empty() {
                match self.queue.recv().await {
                    Some(outgoing) => self.pending.push_back(outgoing),
                    None => return,
                }
            }
            while let Ok(outgoing) = self.queue.try_recv() {
                self.pending.push_back(outgoing);
            }
            if self.send_some().await {
                backoff = FIRST_BACKOFF;
            } else {
                self.connection = None;
                self.keep_messages_only();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Sends up to [`MAX_PIPELINE`] pending events; false if Redis is away
    /// (they stay pending).
    async fn send_some(&mut self) -> bool {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => match timeout(REQUEST_TIMEOUT, self.client.get_multiplexed_async_connection()).await {
                Ok(Ok(connection)) => self.connection.insert(connection),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "cannot connect to redis to publish");
                    return false;
                }
                Err(_) => return false,
            },
        };
        let count = self.pending.len().min(MAX_PIPELINE);
        let mut pipeline = redis::pipe();
        for outgoing in self.pending.iter().take(count) {
            pipeline.publish(&outgoing.channel, &outgoing.payload).ignore();
        }
        match timeout(REQUEST_TIMEOUT, pipeline.query_async::<()>(connection)).await {
            Ok(Ok(())) => {
                self.pending.drain(..count);
                true
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "publishing to redis failed; retrying");
                false
            }
            Err(_) => {
                tracing::warn!("publishing to redis timed out; retrying");
                false
            }
        }
    }

    /// Drops what is not worth publishing late, and the oldest messages past the bound.
    fn keep_messages_only(&mut self) {
        self.pending.retain(|outgoing| outgoing.message);
        while self.pending.len() > MAX_KEPT {
            self.pending.pop_front();
            self.metrics.bus_publishes_dropped.inc();
        }
    }
}
