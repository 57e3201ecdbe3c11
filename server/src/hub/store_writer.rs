//! The store writer: one task that commits the shards' messages, so no shard
//! ever waits for the disk.
//!
//! Each shard hands over everything that waits whenever it has no batch in
//! flight: while one commits, the next accumulates (group commit). The
//! writer takes every shard's waiting batch at once and commits them as one
//! transaction: a SQLite file has one writer anyway, and one commit (one
//! fsync) for all shards is what keeps it fast. Rooms belong to one shard
//! each, so the shards' batches never touch the same room. A commit held up
//! by a locked database delays only the messages that must wait for it.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::store::{Appended, HistoryStore, NewMessage, StoreError};

/// The outcome of one batch, in the order of its messages.
pub(super) type Committed = Result<Vec<Appended>, StoreError>;

/// One shard's batch, and where its outcome goes.
struct Batch {
    messages: Vec<NewMessage>,
    outcome: oneshot::Sender<Committed>,
}

/// A shard's end of the writer.
pub(super) struct StoreWriter {
    batches: mpsc::UnboundedSender<Batch>,
    /// The outcome of the batch in flight.
    in_flight: Option<oneshot::Receiver<Committed>>,
}

/// Starts the writer task on `runtime` and returns one handle per shard; the
/// task stops once every handle is dropped and the batches in flight are
/// committed.
pub(super) fn spawn(store: Arc<dyn HistoryStore>, shards: usize, runtime: &Handle) -> Vec<StoreWriter> {
    // Unbounded, but each shard keeps at most one batch in flight, so it
    // holds at most one item per shard.
    let (batches, incoming) = mpsc::unbounded_channel::<Batch>();
    runtime.spawn(commit_batches(store, incoming));
    (0..shards).map(|_| StoreWriter { batches: batches.clone(), in_flight: None }).collect()
}

/// The writer task: commits what every shard has waiting, as one transaction.
async fn commit_batches(store: Arc<dyn HistoryStore>, mut incoming: mpsc::UnboundedReceiver<Batch>) {
    while let Some(first) = incoming.recv().await {
        let mut batches = vec![first];
        while let Ok(batch) = incoming.try_recv() {
            batches.push(batch);
        }
        let sizes: Vec<usize> = batches.iter().map(|batch| batch.messages.len()).collect();
        let (messages, outcomes): (Vec<Vec<NewMessage>>, Vec<_>) =
            batches.into_iter().map(|batch| (batch.messages, batch.outcome)).unzip();
        let mut committed = store.append_batch(messages.into_iter().flatten().collect()).await;
        for (size, outcome) in sizes.into_iter().zip(outcomes) {
            let own = match &mut committed {
                Ok(results) => Ok(results.drain(..size.min(results.len())).collect()),
                // Each shard reports the failure on its own.
                Err(error) => Err(StoreError::Database(error.to_string().into())),
            };
            // A shard that stopped waiting has nobody left to tell.
            let _ = outcome.send(own);
        }
    }
}

impl StoreWriter {
    /// Hands a batch over (the one before must be committed); false if the
    /// writer has stopped.
    pub(super) fn write(&mut self, messages: Vec<NewMessage>) -> bool {
        let (outcome, committed) = oneshot::channel();
        let sent = self.batches.send(Batch { messages, outcome }).is_ok();
        self.in_flight = sent.then_some(committed);
        sent
    }

    /// The outcome of the batch in flight; `None` if there is none or the
    /// writer stopped. Cancel-safe.
    pub(super) async fn committed(&mut self) -> Option<Committed> {
        let outcome = self.in_flight.as_mut()?.await.ok();
        self.in_flight = None;
        outcome
    }
}
