//! One task per connection: it owns the socket, reads the peer's frames,
//! writes what the hub queues for it, pings idle peers, enforces the
//! connection's limits, and leaves the hub when it ends.
//!
//! [`json`] speaks the typed protocol of `/ws`; [`plain`] speaks the seed's
//! echo-to-everyone protocol of `/`. Both run [`drive`], the shared loop.
//!
//! Everything written to the peer goes through the session's byte-bounded
//! outbound queue (replies and history pages too), and every write has a
//! deadline: a peer that stops reading is closed once its queue is full or a
//! write waits longer than the idle timeout, and its task, permit and gauge
//! go with it.

pub mod history_pages;
pub mod json;
pub mod plain;
pub mod rate_limit;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::Endpoint;

use crate::admission::ConnectionPermit;
use crate::config::Config;
use crate::hub::{
    CloseCause, ConnectionId, HubHandle, HubStopped, Outbound, OutboundReceiver, QueueError, ReplySender,
    outbound_queue,
};
use crate::metrics::EndpointMetrics;
use crate::shutdown::ShutdownSignal;
use crate::store::HistoryStore;
use rate_limit::{FrameBudget, Verdict};

/// Invalid frames tolerated on one connection before it is closed with 1008.
pub const MAX_INVALID_FRAMES: u32 = 20;

/// Pings a peer may send per second on average (each costs a pong), and in a burst.
pub const PINGS_PER_SECOND: u32 = 5;
/// See [`PINGS_PER_SECOND`].
pub const PING_BURST: u32 = 10;
/// Unanswered pings in a row (past the rate) before the connection is closed with 1008.
pub const MAX_EXCESS_PINGS: u32 = 50;

/// The limits every session enforces.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Largest frame or reassembled message, in bytes.
    pub max_message_bytes: usize,
    /// Average data frames per second (0 = unlimited).
    pub rate_limit: u32,
    /// Burst above the average.
    pub rate_burst: u32,
    /// Bytes that may wait in the outbound queue.
    pub outbound_queue_bytes: usize,
    /// Silence before a ping.
    pub ping_interval: Duration,
    /// Silence before the peer is dropped.
    pub idle_timeout: Duration,
}

impl SessionSettings {
    /// The session limits of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes,
            rate_limit: config.rate_limit,
            rate_burst: config.rate_burst,
            // A queue must hold at least one message of the largest size a peer may send.
            outbound_queue_bytes: config.outbound_queue_bytes.max(config.max_message_bytes + 64 * 1024),
            ping_interval: config.ping_interval(),
            idle_timeout: config.idle_timeout(),
        }
    }
}

/// Everything a session task needs besides its socket.
pub struct SessionContext {
    /// The hub.
    pub hub: HubHandle,
    /// The history store.
    pub store: Arc<dyn HistoryStore>,
    /// Limits.
    pub settings: SessionSettings,
    /// This endpoint's counters.
    pub metrics: EndpointMetrics,
    /// Counts rate-limited frames.
    pub rate_limited: prometheus_client::metrics::counter::Counter,
    /// Fires on graceful shutdown.
    pub shutdown: ShutdownSignal,
    /// Our place under the connection caps, held for the session's life.
    pub permit: ConnectionPermit,
    /// The client's address (behind a trusted proxy, the one it forwarded), for logs.
    pub peer: Option<IpAddr>,
}

/// What handling one data frame produced.
pub(crate) enum Handled {
    /// Nothing to write back.
    Nothing,
    /// A reply for this peer only.
    Reply(ByteString),
    /// The frame was invalid: a reply, and a strike against the connection.
    Invalid(ByteString),
}

/// What a protocol does with the data frames of its peer.
pub(crate) trait FrameHandler {
    /// Handles a complete text message.
    async fn on_text(&mut self, text: ByteString) -> Result<Handled, HubStopped>;
    /// Handles a complete binary message.
    async fn on_binary(&mut self, bytes: Bytes) -> Result<Handled, HubStopped>;
    /// Tells the peer a frame was dropped by the rate limit, if the protocol can.
    fn rate_limited(&mut self) -> Option<ByteString>;
    /// Whether [`FrameHandler::background_work`] has anything to wait for.
    fn has_background_work(&self) -> bool {
        false
    }
    /// Work the handler runs beside the connection loop (history reads);
    /// resolves to a frame to queue for the peer. Must be cancel-safe.
    async fn background_work(&mut self) -> Outbound {
        std::future::pending().await
    }
}

/// A session's whole life, the same for both protocols: register with the hub,
/// run [`drive`], leave the hub, close the socket with the reason `drive` gave.
pub(crate) async fn serve<H: FrameHandler>(
    mut socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    mut context: SessionContext,
    endpoint: Endpoint,
    handler: impl FnOnce(ConnectionId, &SessionContext) -> H,
) {
    let id = context.hub.next_connection_id();
    tracing::info!(connection = id, peer = ?context.peer, ?endpoint, "connected");
    context.metrics.open_connections.inc();
    let (sender, mut outbound) = outbound_queue(context.settings.outbound_queue_bytes);
    let replies = sender.replies();
    let mut handler = handler(id, &context);
    let hub = context.hub.clone();

    let close = match hub.connect(id, endpoint, sender).await {
        Ok(()) => drive(&mut socket, stream, &mut outbound, &replies, &mut handler, &mut context).await,
        Err(HubStopped) => Some(going_away()),
    };

    hub.disconnect(id).await;
    // The peer may already be gone (or not reading); closing is best effort.
    let _ = tokio::time::timeout(context.settings.idle_timeout, socket.close(close.clone())).await;
    context.metrics.open_connections.dec();
    tracing::info!(connection = id, close = ?close.map(|c| c.code), "disconnected");
}

/// The connection loop shared by both protocols. Returns the close frame to
/// send, if any, once the connection is over.
pub(crate) async fn drive(
    socket: &mut actix_ws::Session,
    stream: actix_ws::MessageStream,
    outbound: &mut OutboundReceiver,
    replies: &ReplySender,
    handler: &mut impl FrameHandler,
    context: &mut SessionContext,
) -> Option<CloseReason> {
    let settings = context.settings.clone();
    let mut frames = stream
        .max_frame_size(settings.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(settings.max_message_bytes);
    let mut data_frames =
        FrameBudget::new(settings.rate_limit, settings.rate_burst, settings.rate_burst.max(1) * 2, Instant::now());
    let mut pings = FrameBudget::new(PINGS_PER_SECOND, PING_BURST, MAX_EXCESS_PINGS, Instant::now());
    let mut invalid = 0_u32;
    let mut last_heard = tokio::time::Instant::now();
    let mut pinged_since_heard = false;
    // One timer, set for the next moment something may be due (a ping once the
    // peer has been silent for a ping interval, the idle timeout once it has
    // been pinged), not a periodic tick: an idle connection costs one wakeup
    // per ping interval, and a peer that answers pings never times out.
    let heartbeat = tokio::time::sleep_until(last_heard + settings.ping_interval);
    tokio::pin!(heartbeat);
    // A write waits while the peer's TCP window is closed; one that cannot
    // finish within the idle timeout means the peer stopped reading.
    let deadline = settings.idle_timeout;

    loop {
        tokio::select! {
            frame = frames.recv() => {
                last_heard = tokio::time::Instant::now();
                pinged_since_heard = false;
                let data = match frame {
                    None => return None,
                    Some(Err(error)) => return Some(close_reason_for(&error)),
                    Some(Ok(AggregatedMessage::Close(reason))) => return Some(answer_to_close(reason)),
                    Some(Ok(AggregatedMessage::Ping(payload))) => {
                        // Answered within a budget: a ping flood must not become a pong flood.
                        match pings.take(Instant::now()) {
                            Verdict::Allowed => if !within(deadline, socket.pong(&payload)).await { return None; },
                            Verdict::Dropped => {}
                            Verdict::Exceeded => return Some(policy_close("too many pings")),
                        }
                        continue;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(AggregatedMessage::Text(text))) => Ok(text),
                    Some(Ok(AggregatedMessage::Binary(bytes))) => Err(bytes),
                };
                context.metrics.messages_in.inc();
                match data_frames.take(Instant::now()) {
                    Verdict::Allowed => {}
                    Verdict::Dropped => {
                        context.rate_limited.inc();
                        if let Some(reply) = handler.rate_limited()
                            && let Err(close) = queue_reply(replies, Outbound::Text(reply))
                        {
                            return close;
                        }
                        continue;
                    }
                    Verdict::Exceeded => return Some(policy_close("rate limit exceeded")),
                }
                let handled = match data {
                    Ok(text) => handler.on_text(text).await,
                    Err(bytes) => handler.on_binary(bytes).await,
                };
                let reply = match handled {
                    Ok(Handled::Nothing) => None,
                    Ok(Handled::Reply(reply)) => Some(reply),
                    Ok(Handled::Invalid(reply)) => {
                        invalid += 1;
                        if invalid > MAX_INVALID_FRAMES {
                            return Some(policy_close("too many invalid messages"));
                        }
                        Some(reply)
                    }
                    Err(HubStopped) => return Some(going_away()),
                };
                if let Some(reply) = reply
                    && let Err(close) = queue_reply(replies, Outbound::Text(reply))
                {
                    return close;
                }
            }
            done = handler.background_work(), if handler.has_background_work() => {
                if let Err(close) = queue_reply(replies, done) {
                    return close;
                }
            }
            queued = outbound.recv() => match queued {
                Some(Outbound::Close(cause)) => return Some(close_reason_of(cause)),
                Some(frame) => {
                    context.metrics.messages_out.inc();
                    context.metrics.bytes_out.inc_by(frame.queued_bytes() as u64);
                    if !within(deadline, write(socket, frame)).await { return None; }
                }
                // The hub dropped our queue: we fell too far behind.
                None => return Some(policy_close("too slow to keep up")),
            },
            () = &mut heartbeat => {
                let silent = last_heard.elapsed();
                if silent >= settings.idle_timeout {
                    return Some(CloseReason { code: CloseCode::Away, description: Some("idle timeout".into()) });
                }
                if silent >= settings.ping_interval && !pinged_since_heard {
                    pinged_since_heard = true;
                    if !within(deadline, socket.ping(b"")).await {
                        return None;
                    }
                }
                let due = if pinged_since_heard { settings.idle_timeout } else { settings.ping_interval };
                let next = (last_heard + due).max(tokio::time::Instant::now() + Duration::from_millis(10));
                heartbeat.as_mut().reset(next);
            }
            _ = context.shutdown.fired() => return Some(going_away()),
        }
    }
}

/// Whether `write` finished, successfully, within `deadline`.
async fn within(deadline: Duration, write: impl std::future::Future<Output = Result<(), actix_ws::Closed>>) -> bool {
    matches!(tokio::time::timeout(deadline, write).await, Ok(Ok(())))
}

/// Queues a reply behind what the hub queued; a full queue ends the session
/// (the peer is not reading), and so does a queue the hub let go of.
fn queue_reply(replies: &ReplySender, reply: Outbound) -> Result<(), Option<CloseReason>> {
    match replies.try_send(reply) {
        Ok(()) => Ok(()),
        Err(QueueError::Full | QueueError::Closed) => Err(Some(policy_close("too slow to keep up"))),
    }
}

/// Writes one queued frame to the socket.
async fn write(socket: &mut actix_ws::Session, frame: Outbound) -> Result<(), actix_ws::Closed> {
    match frame {
        Outbound::Text(text) => socket.text(text).await,
        Outbound::Binary(bytes) => socket.binary(bytes).await,
        // Handled by the caller, which owns the close.
        Outbound::Close(_) => Ok(()),
    }
}

/// The close frame for the hub's reason to end a session.
fn close_reason_of(cause: CloseCause) -> CloseReason {
    match cause {
        CloseCause::Replaced => policy_close("replaced by a newer connection"),
    }
}

/// The close frame that answers a peer's protocol violation (RFC 6455 §7.4.1).
pub(crate) fn close_reason_for(error: &ProtocolError) -> CloseReason {
    let message = error.to_string();
    let code = match error {
        ProtocolError::Overflow => CloseCode::Size,
        // actix-http reports reserved bits as invalid data; that is a protocol error.
        ProtocolError::Io(_) if message.contains("reserved bits") => CloseCode::Protocol,
        ProtocolError::Io(e) if e.kind() == io::ErrorKind::InvalidData => CloseCode::Invalid,
        // actix-ws reports an over-long fragmented message as a plain I/O error.
        ProtocolError::Io(_) if message.contains("maximum continuation size") => CloseCode::Size,
        _ => CloseCode::Protocol,
    };
    CloseReason { code, description: Some(message) }
}

/// Our answer to the peer's close frame: its code echoed (RFC 6455 §5.5.1),
/// or a normal close if it gave none.
fn answer_to_close(reason: Option<CloseReason>) -> CloseReason {
    match reason {
        Some(reason) => CloseReason { code: reason.code, description: None },
        None => CloseReason { code: CloseCode::Normal, description: None },
    }
}

/// A 1008 (policy violation) close.
fn policy_close(why: &str) -> CloseReason {
    CloseReason { code: CloseCode::Policy, description: Some(why.to_owned()) }
}

/// The close frame sent when the server is going away.
pub(crate) fn going_away() -> CloseReason {
    CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_frames_close_with_1009() {
        assert_eq!(close_reason_for(&ProtocolError::Overflow).code, CloseCode::Size);
    }

    #[test]
    fn invalid_utf8_closes_with_1007() {
        let error = ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, "invalid utf-8"));
        assert_eq!(close_reason_for(&error).code, CloseCode::Invalid);
    }

    #[test]
    fn reserved_bits_close_with_1002() {
        let error = ProtocolError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "Received a frame with non-zero reserved bits",
        ));
        assert_eq!(close_reason_for(&error).code, CloseCode::Protocol);
    }

    #[test]
    fn other_violations_close_with_1002() {
        assert_eq!(close_reason_for(&ProtocolError::UnmaskedFrame).code, CloseCode::Protocol);
    }
}
