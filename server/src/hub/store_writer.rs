//! The store writer: one task that commits the hub's messages, a batch at a
//! time, so the hub never waits for the disk.
//!
//! The hub hands over everything that waits whenever no batch is in flight:
//! while one commits, the next accumulates (group commit), and a commit held
//! up by a locked database delays only the messages that must wait for it.
//! Results come back in the order batches went in.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::store::{Appended, HistoryStore, NewMessage, StoreError};

/// The outcome of one batch, in the order of its messages.
pub(super) type Committed = Result<Vec<Appended>, StoreError>;

/// The hub's end of the writer.
pub(super) struct StoreWriter {
    batches: mpsc::UnboundedSender<Vec<NewMessage>>,
    committed: mpsc::UnboundedReceiver<Committed>,
}

impl StoreWriter {
    /// Starts the writer task; it stops once this handle is dropped and the
    /// batch in flight is committed.
    pub(super) fn spawn(store: Arc<dyn HistoryStore>) -> Self {
        // Unbounded, but the hub keeps at most one batch in flight, so each
        // channel holds at most one item.
        let (batches, mut incoming) = mpsc::unbounded_channel::<Vec<NewMessage>>();
        let (results, committed) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(batch) = incoming.recv().await {
                let outcome = store.append_batch(batch).await;
                if results.send(outcome).is_err() {
                    break;
                }
            }
        });
        Self { batches, committed }
    }

    /// Hands a batch over; false if the writer has stopped.
    pub(super) fn write(&self, batch: Vec<NewMessage>) -> bool {
        self.batches.send(batch).is_ok()
    }

    /// The outcome of the oldest batch in flight; `None` once the writer stopped.
    pub(super) async fn committed(&mut self) -> Option<Committed> {
        self.committed.recv().await
    }
}
