//! Graceful shutdown: one trigger, seen by every session, so each closes its
//! socket with 1001 (going away) before the process exits.

use tokio::sync::watch;

/// Fires the shutdown.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Waits for the shutdown; cheap to clone, one per session.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

/// A connected trigger and signal.
pub fn channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger(sender), ShutdownSignal(receiver))
}

impl ShutdownTrigger {
    /// Tells every signal holder to stop.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    /// Another signal tied to this trigger.
    pub fn subscribe(&self) -> ShutdownSignal {
        ShutdownSignal(self.0.subscribe())
    }
}

impl ShutdownSignal {
    /// Resolves once the trigger fired (at once if it already has).
    pub async fn fired(&mut self) {
        // An error means the trigger is gone, which also means shutting down.
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}
