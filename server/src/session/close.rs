//! The close frames a session sends, and why: RFC 6455 §7.4.1 codes for
//! protocol violations, 1008 for policy, 1001 when the server goes away.

use std::io;

use actix_ws::{CloseCode, CloseReason, ProtocolError};

use crate::hub::CloseCause;

/// The close frame for the hub's reason to end a session.
pub(crate) fn close_reason_of(cause: CloseCause) -> CloseReason {
    match cause {
        CloseCause::Replaced => policy_close("replaced by a newer connection"),
        CloseCause::NameLost => {
            policy_close("this server lost hold of your nickname (cut off from the others); join again")
        }
    }
}

/// The close frame of a signed-in socket whose account signed out everywhere.
pub(crate) fn signed_out() -> CloseReason {
    policy_close("signed out")
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
pub(crate) fn answer_to_close(reason: Option<CloseReason>) -> CloseReason {
    match reason {
        Some(reason) => CloseReason { code: reason.code, description: None },
        None => CloseReason { code: CloseCode::Normal, description: None },
    }
}

/// A 1008 (policy violation) close.
pub(crate) fn policy_close(why: &str) -> CloseReason {
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
