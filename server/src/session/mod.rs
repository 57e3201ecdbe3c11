//! One task per connection: it owns the socket, reads the peer's frames,
//! writes what the hub queues for it, and leaves the hub when it ends.
//!
//! [`json`] speaks the typed protocol of `/ws`; [`plain`] speaks the seed's
//! echo-to-everyone protocol of `/`.

pub mod json;
pub mod plain;

use std::io;

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::limits::MAX_FRAME_BYTES;

use crate::hub::{HubStopped, Outbound, OutboundReceiver};

/// What a protocol does with the data frames of its peer.
pub(crate) trait FrameHandler {
    /// Handles a complete text message; returns a reply for this peer only.
    async fn on_text(&mut self, text: ByteString) -> Result<Option<ByteString>, HubStopped>;
    /// Handles a complete binary message; returns a reply for this peer only.
    async fn on_binary(&mut self, bytes: Bytes) -> Result<Option<ByteString>, HubStopped>;
}

/// The connection loop shared by both protocols: reads the peer's frames and
/// hands data to `handler`, answers pings, and writes what the hub queued.
/// Returns the close frame to send, if any, once the connection is over.
pub(crate) async fn drive(
    socket: &mut actix_ws::Session,
    stream: actix_ws::MessageStream,
    outbound: &mut OutboundReceiver,
    handler: &mut impl FrameHandler,
) -> Option<CloseReason> {
    let mut frames = limited(stream);
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let handled = match frame {
                    None => return None,
                    Some(Err(error)) => return Some(close_reason_for(&error)),
                    Some(Ok(AggregatedMessage::Close(reason))) => return reason,
                    Some(Ok(AggregatedMessage::Ping(payload))) => {
                        if socket.pong(&payload).await.is_err() { return None; }
                        continue;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(AggregatedMessage::Text(text))) => handler.on_text(text).await,
                    Some(Ok(AggregatedMessage::Binary(bytes))) => handler.on_binary(bytes).await,
                };
                match handled {
                    Ok(None) => {}
                    Ok(Some(reply)) => if socket.text(reply).await.is_err() { return None },
                    Err(HubStopped) => return Some(going_away()),
                }
            }
            queued = outbound.recv() => match queued {
                Some(Outbound::Close(reason)) => return Some(reason),
                Some(frame) => if write(socket, frame).await.is_err() { return None },
                // The hub dropped our queue: we fell too far behind.
                None => return Some(too_slow()),
            },
        }
    }
}

/// Turns the raw socket stream into one that enforces our size limits and
/// reassembles fragmented messages.
fn limited(stream: actix_ws::MessageStream) -> actix_ws::AggregatedMessageStream {
    stream.max_frame_size(MAX_FRAME_BYTES).aggregate_continuations().max_continuation_size(MAX_FRAME_BYTES)
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

/// The close frame that answers a peer's protocol violation (RFC 6455 §7.4.1).
pub(crate) fn close_reason_for(error: &ProtocolError) -> CloseReason {
    let code = match error {
        ProtocolError::Overflow => CloseCode::Size,
        ProtocolError::Io(e) if e.kind() == io::ErrorKind::InvalidData => CloseCode::Invalid,
        // actix-ws reports an over-long fragmented message as a plain I/O error.
        ProtocolError::Io(e) if e.to_string().contains("maximum continuation size") => CloseCode::Size,
        _ => CloseCode::Protocol,
    };
    CloseReason { code, description: Some(error.to_string()) }
}

/// The close frame for a client whose outbound queue overflowed.
fn too_slow() -> CloseReason {
    CloseReason { code: CloseCode::Policy, description: Some("too slow to keep up".into()) }
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
    fn other_violations_close_with_1002() {
        assert_eq!(close_reason_for(&ProtocolError::UnmaskedFrame).code, CloseCode::Protocol);
    }
}
