//! The hub's side of fan-out: deliveries collected per worker while the hub
//! applies a batch of commands, then sent as one batch per worker.

use std::collections::HashMap;

use super::worker_relay::{Delivery, WorkerAddress, WorkerId};

/// Each worker's mailbox and what waits to go to it.
#[derive(Default)]
pub(super) struct Outbox {
    workers: HashMap<WorkerId, Mailbox>,
}

struct Mailbox {
    address: WorkerAddress,
    pending: Vec<Delivery>,
}

impl Outbox {
    /// Makes sure deliveries to `address`'s worker can be sent.
    pub(super) fn add_worker(&mut self, address: WorkerAddress) {
        self.workers.entry(address.id).or_insert_with(|| Mailbox { address, pending: Vec::new() });
    }

    /// Queues a delivery for a worker, sent at the next [`Outbox::flush`].
    pub(super) fn push(&mut self, worker: WorkerId, delivery: Delivery) {
        if let Some(mailbox) = self.workers.get_mut(&worker) {
            mailbox.pending.push(delivery);
        }
    }

    /// Sends each worker what waits for it, as one batch.
    pub(super) fn flush(&mut self) {
        for mailbox in self.workers.values_mut() {
            if mailbox.pending.is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut mailbox.pending);
            // A worker whose relay has gone has no sessions left to deliver to.
            let _ = mailbox.address.mailbox.send(batch);
        }
    }
}
