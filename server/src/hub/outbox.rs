//! A shard's side of fan-out: deliveries collected per worker while the shard
//! applies a batch of commands, then sent as one batch per worker.

use super::ConnectionId;
use super::outbound::Outbound;
use super::worker_relay::{Delivery, WorkerAddress, WorkerId, Workers, worker_of};

/// What waits to go to each worker.
pub(super) struct Outbox {
    workers: Workers,
    /// By worker id.
    pending: Vec<Vec<Delivery>>,
    /// The relays last looked up, by worker id (looked up again once gone).
    addresses: Vec<Option<WorkerAddress>>,
}

impl Outbox {
    pub(super) fn new(workers: Workers) -> Self {
        let pending = (0..workers.count()).map(|_| Vec::new()).collect();
        let addresses = vec![None; workers.count()];
        Self { workers, pending, addresses }
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
        for (worker, (pending, address)) in self.pending.iter_mut().zip(&mut self.addresses).enumerate() {
            if pending.is_empty() {
                continue;
            }
            let batch = std::mem::take(pending);
            if address.as_ref().is_none_or(WorkerAddress::is_gone) {
                *address = self.workers.get(worker);
            }
            // A worker whose relay has gone (or never started) has no sessions to deliver to.
            if let Some(address) = address {
                address.send(batch);
            }
        }
    }
}
