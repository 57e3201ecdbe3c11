//! The shortcut past a session's queue: while nothing waits in it, its
//! worker's relay hands frames straight to actix-ws's channel, so a client
//! that keeps up costs no wake of its session task per frame.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::hub::{DirectWrite, Outbound};
use crate::metrics::EndpointMetrics;

/// Writes into one session's socket without waiting.
pub struct SocketShortcut {
    socket: actix_ws::Session,
    metrics: EndpointMetrics,
}

impl SocketShortcut {
    /// A shortcut into `socket`, counted in `metrics` like the session's own writes.
    pub fn new(socket: actix_ws::Session, metrics: EndpointMetrics) -> Self {
        Self { socket, metrics }
    }
}

impl DirectWrite for SocketShortcut {
    fn try_write(&mut self, frame: &Outbound) -> bool {
        // Polled once: it completes at once when actix-ws's channel has room.
        // Unconstrained, so tokio's per-task budget does not turn a free slot
        // into a refusal after the first hundred members of a room.
        let sent = match frame {
            Outbound::Text(text) | Outbound::Live { text, .. } => {
                poll_once(tokio::task::unconstrained(self.socket.text(text.clone())))
            }
            Outbound::Binary(bytes) => poll_once(tokio::task::unconstrained(self.socket.binary(bytes.clone()))),
            // Pages and markers are the session's own business.
            Outbound::Close(_) | Outbound::Entered(_) | Outbound::Page { .. } => return false,
        };
        let written = matches!(sent, Some(Ok(())));
        if written {
            self.metrics.messages_out.inc();
            self.metrics.bytes_out.inc_by(frame.queued_bytes() as u64);
        }
        written
    }
}

/// Polls `future` once; dropping it unfinished cancels it (a channel send
/// that did not get a slot sends nothing).
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
