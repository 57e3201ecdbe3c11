//! The connection loop both protocols share: one `select!` over the peer's
//! frames, the outbound queue, the handler's background reads, the heartbeat
//! and shutdown. Every write has a deadline, and gives up at once when the
//! hub abandons the session's queue, so a peer that stops reading cannot hold
//! its session past either.

use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, CloseCode, CloseReason};

use super::close::{answer_to_close, close_reason_for, close_reason_of, going_away, policy_close};
use super::identity::Lapse;
use super::live_order::LiveOrder;
use super::rate_limit::{FrameBudget, Verdict};
use super::{
    Background, FrameHandler, Handled, MAX_EXCESS_PINGS, MAX_INVALID_FRAMES, PING_BURST, PINGS_PER_SECOND,
    SessionContext,
};
use crate::hub::{HubStopped, Outbound, OutboundReceiver, QueueError, ReplySender};

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
    let mut order = LiveOrder::default();

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
                            Verdict::Allowed => {
                                let written = write_in_time(outbound, deadline, socket.pong(&payload)).await;
                                if let Err(close) = written.or_close(context) { return close; }
                            }
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
            work = handler.background() => match work {
                Background::Frame(done) => {
                    if let Err(close) = queue_reply(replies, done) {
                        return close;
                    }
                }
                Background::RoomChanged(concerning) => {
                    if let Some(refusal) = handler.check_room(concerning).await
                        && let Err(close) = queue_reply(replies, refusal)
                    {
                        return close;
                    }
                }
                Background::Lapse(Lapse::Notice(notice)) => {
                    if let Err(close) = queue_reply(replies, Outbound::Text(notice.encode().into())) {
                        return close;
                    }
                }
                Background::Lapse(Lapse::End(notice, close)) => {
                    // Written at once, ahead of what is queued: the close follows it.
                    if let Some(notice) = notice {
                        let _ = write_in_time(outbound, deadline, socket.text(notice.encode())).await;
                    }
                    return Some(close);
                }
            },
            queued = outbound.recv() => match queued {
                Some(Outbound::Close(cause)) => return Some(close_reason_of(cause)),
                Some(frame) => {
                    order.arrived(frame, outbound);
                    while let Some((frame, bytes)) = order.next_ready() {
                        context.metrics.messages_out.inc();
                        context.metrics.bytes_out.inc_by(bytes as u64);
                        let written = write_in_time(outbound, deadline, write(socket, frame)).await;
                        if let Err(close) = written.or_close(context) { return close; }
                        // Only now may the relay's shortcut overtake the queue again.
                        outbound.written(bytes);
                    }
                }
                // The hub dropped our queue: we fell too far behind.
                None => return Some(too_slow()),
            },
            () = &mut heartbeat => {
                let silent = last_heard.elapsed();
                if silent >= settings.idle_timeout {
                    return Some(CloseReason { code: CloseCode::Away, description: Some("idle timeout".into()) });
                }
                if silent >= settings.ping_interval && !pinged_since_heard {
                    pinged_since_heard = true;
                    let written = write_in_time(outbound, deadline, socket.ping(b"")).await;
                    if let Err(close) = written.or_close(context) { return close; }
                }
                let due = if pinged_since_heard { settings.idle_timeout } else { settings.ping_interval };
                let next = (last_heard + due).max(tokio::time::Instant::now() + Duration::from_millis(10));
                heartbeat.as_mut().reset(next);
            }
            _ = context.shutdown.fired() => return Some(going_away()),
        }
    }
}

/// How a write to the socket went.
enum Written {
    /// The transport took it.
    Done,
    /// The connection is gone.
    Gone,
    /// The peer did not take it within the deadline: it is not reading.
    TimedOut,
    /// The hub gave up on this session (its queue overflowed) while it waited.
    Abandoned,
}

impl Written {
    /// Goes on after a write that was done; otherwise the close to end the
    /// session with. A peer that is not reading counts as a slow consumer
    /// (the relay counted those it abandoned).
    fn or_close(self, context: &SessionContext) -> Result<(), Option<CloseReason>> {
        match self {
            Self::Done => Ok(()),
            Self::Gone => Err(None),
            Self::TimedOut => {
                tracing::warn!("a write waited past its deadline; dropping slow client");
                context.slow_closes.inc();
                Err(Some(too_slow()))
            }
            Self::Abandoned => Err(Some(too_slow())),
        }
    }
}

/// Runs `write` with a deadline, and stops waiting for it at once if the hub
/// abandons the session's queue meanwhile. Nothing is written once it has.
async fn write_in_time(
    outbound: &OutboundReceiver,
    deadline: Duration,
    write: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
) -> Written {
    if outbound.is_abandoned() {
        return Written::Abandoned;
    }
    // The write first: one that completes at once (the common case, per
    // queued frame) never registers with the abandonment's `Notify`, which
    // takes its lock twice.
    tokio::select! {
        biased;
        written = tokio::time::timeout(deadline, write) => match written {
            Ok(Ok(())) => Written::Done,
            Ok(Err(actix_ws::Closed)) => Written::Gone,
            Err(_) => Written::TimedOut,
        },
        () = outbound.abandoned() => Written::Abandoned,
    }
}

/// The close of a session that could not keep up.
fn too_slow() -> CloseReason {
    policy_close("too slow to keep up")
}

/// Queues a reply behind what the hub queued; a full queue ends the session
/// (the peer is not reading), and so does a queue the hub let go of.
fn queue_reply(replies: &ReplySender, reply: Outbound) -> Result<(), Option<CloseReason>> {
    match replies.try_send(reply) {
        Ok(()) => Ok(()),
        Err(QueueError::Full | QueueError::Closed) => Err(Some(too_slow())),
    }
}

/// Writes one queued frame to the socket.
async fn write(socket: &mut actix_ws::Session, frame: Outbound) -> Result<(), actix_ws::Closed> {
    match frame {
        Outbound::Text(text) | Outbound::Live { text, .. } | Outbound::Page { text, .. } => socket.text(text).await,
        Outbound::Binary(bytes) => socket.binary(bytes).await,
        // Handled by the caller (which owns the close), and by the live order.
        Outbound::Close(_) | Outbound::Entered(_) => Ok(()),
    }
}
