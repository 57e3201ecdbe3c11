//! A shard's side of fan-out: deliveries collected per worker while the shard
//! applies a batch of commands, then sent as one batch per worker.

use super::ConnectionId;
use super::outbound::Outbound;
use super::worker_relay::{Delivery, WorkerId, Workers, worker_of};

/// What waits to go to each worker.
pub(super) struct Outbox {
    workers: Workers,
    /// By worker id.
    pending: Vec<Vec<Delivery>>,
}

impl Outbox {
    pub(super) fn new(workers: Workers) -> Self {
        let pending = (0..workers.count()).map(|_| Vec::new()).collect();
        Self { workers, pending }
    }

    /// The worker that runs connection `id`.
    pub(super) fn worker_of(&self, id: ConnectionId) -> WorkerId {
        worker_of(id, self.workers.count())
    }

    /// Queues a delivery for a worker, sent at the next [`Outbox::flush`].
    pub(super) fn push(&mut self, worker: WorkerId, delivery: Delivery) {
        if let Some(pending) = self.pending.get_mut(worker) {
            pending.push(delivery);
        }
    }

    /// Queues `frame` for connection `id`.
    pub(super) fn send_to(&mut self, id: ConnectionId, frame: Outbound) {
        self.push(self.worker_of(id), Delivery::To { id, frame });
    }

    /// Sends each worker what waits for it, as one batch.
    pub(super) fn flush(&mut self) {
        for (worker, pending) in self.pending.iter_mut().enumerate() {
            if pending.is_empty() {
                continue;
            }
            let batch = std::mem::take(pending);
            // A worker whose relay has gone (or never started) has no sessions to deliver to.
            if let Some(address) = self.workers.get(worker) {
                address.send(batch);
            }
        }
    }
}
