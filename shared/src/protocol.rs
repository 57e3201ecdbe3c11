//! The typed JSON protocol of the `/ws` endpoint.
//!
//! One JSON object per text frame, tagged by its `type` field. A client first
//! says [`ClientMessage::Hello`] with its nickname; the server answers
//! [`ServerMessage::Welcome`] and from then on relays every
//! [`ClientMessage::Send`] to every joined client, the sender included, as a
//! [`ServerMessage::Message`] with a server-assigned increasing id.

use serde::{Deserialize, Serialize};

use crate::{MessageText, Nickname};

/// What a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Join the chat under `nick`. Must come before any `send`.
    Hello {
        /// The name shown next to this client's messages.
        nick: Nickname,
    },
    /// Post `text` to everyone.
    Send {
        /// The message text.
        text: MessageText,
    },
}

/// A message as everyone sees it once the server has accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Assigned by the server; strictly increasing in the order of delivery.
    pub id: u64,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub ts: u64,
    /// Who wrote it.
    pub nick: Nickname,
    /// What was written.
    pub text: MessageText,
}

/// What the server sends to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The `hello` was accepted; the client now receives messages.
    Welcome {
        /// The nickname the client joined with.
        nick: Nickname,
    },
    /// A chat message, sent to every joined client, the author included.
    Message(ChatMessage),
    /// A request was refused; the connection stays open.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable explanation, fit to show to the user.
        message: String,
    },
}

/// Machine-readable reasons carried by [`ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON.
    InvalidJson,
    /// Valid JSON, but not a known message, or a field failed validation.
    InvalidMessage,
    /// A binary frame on the JSON endpoint.
    UnsupportedFrame,
    /// `send` before `hello`.
    NotJoined,
    /// A second `hello` on the same connection.
    AlreadyJoined,
}

/// Why a text frame could not be decoded into a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct DecodeError {
    /// The code to report to the peer.
    pub code: ErrorCode,
    /// What was wrong, for the peer and the logs.
    pub detail: String,
}

impl DecodeError {
    fn from_json(error: &serde_json::Error) -> Self {
        let code = match error.classify() {
            serde_json::error::Category::Data => ErrorCode::InvalidMessage,
            _ => ErrorCode::InvalidJson,
        };
        Self { code, detail: error.to_string() }
    }

    /// The error frame that tells the peer about this failure.
    pub fn to_server_message(&self) -> ServerMessage {
        ServerMessage::Error { code: self.code, message: self.detail.clone() }
    }
}

impl ClientMessage {
    /// Decodes one text frame.
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        serde_json::from_str(frame).map_err(|e| DecodeError::from_json(&e))
    }

    /// Encodes this message as the text of one frame.
    pub fn encode(&self) -> String {
        encode(self)
    }
}

impl ServerMessage {
    /// Decodes one text frame.
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        serde_json::from_str(frame).map_err(|e| DecodeError::from_json(&e))
    }

    /// Encodes this message as the text of one frame.
    pub fn encode(&self) -> String {
        encode(self)
    }

    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error { code, message: message.into() }
    }
}

fn encode(value: &impl Serialize) -> String {
    // Every protocol type is made of strings, integers and unit enums, which
    // serde_json always serializes; failure here would be a bug in this crate.
    serde_json::to_string(value).expect("protocol types always serialize to JSON")
}

#[cfg(test)]
mod tests {
    //! Golden frames: if one of these changes, the wire changed.
    use super::*;

    fn nick(s: &str) -> Nickname {
        Nickname::parse(s).expect("valid nickname")
    }

    fn text(s: &str) -> MessageText {
        MessageText::parse(s).expect("valid text")
    }

    #[track_caller]
    fn golden_client(message: ClientMessage, json: &str) {
        assert_eq!(message.encode(), json);
        assert_eq!(ClientMessage::decode(json), Ok(message));
    }

    #[track_caller]
    fn golden_server(message: ServerMessage, json: &str) {
        assert_eq!(message.encode(), json);
        assert_eq!(ServerMessage::decode(json), Ok(message));
    }

    #[test]
    fn hello_frame() {
        golden_client(ClientMessage::Hello { nick: nick("alice") }, r#"{"type":"hello","nick":"alice"}"#);
    }

    #[test]
    fn send_frame() {
        golden_client(ClientMessage::Send { text: text("hi <b>") }, r#"{"type":"send","text":"hi <b>"}"#);
    }

    #[test]
    fn welcome_frame() {
        golden_server(ServerMessage::Welcome { nick: nick("bob") }, r#"{"type":"welcome","nick":"bob"}"#);
    }

    #[test]
    fn message_frame() {
        golden_server(
            ServerMessage::Message(ChatMessage {
                id: 7,
                ts: 1_700_000_000_123,
                nick: nick("alice"),
                text: text("line\nnext"),
            }),
            r#"{"type":"message","id":7,"ts":1700000000123,"nick":"alice","text":"line\nnext"}"#,
        );
    }

    #[test]
    fn error_frame() {
        golden_server(
            ServerMessage::error(ErrorCode::NotJoined, "say hello first"),
            r#"{"type":"error","code":"not_joined","message":"say hello first"}"#,
        );
        for (code, wire) in [
            (ErrorCode::InvalidJson, "invalid_json"),
            (ErrorCode::InvalidMessage, "invalid_message"),
            (ErrorCode::UnsupportedFrame, "unsupported_frame"),
            (ErrorCode::AlreadyJoined, "already_joined"),
        ] {
            assert_eq!(serde_json::to_string(&code).ok(), Some(format!("\"{wire}\"")));
        }
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        let error = ClientMessage::decode("{\"type\":").expect_err("truncated JSON");
        assert_eq!(error.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn unknown_type_is_invalid_message() {
        let error = ClientMessage::decode(r#"{"type":"shout","text":"x"}"#).expect_err("unknown type");
        assert_eq!(error.code, ErrorCode::InvalidMessage);
    }

    #[test]
    fn invalid_fields_are_invalid_message_with_the_reason() {
        let error = ClientMessage::decode(r#"{"type":"hello","nick":"  "}"#).expect_err("blank nick");
        assert_eq!(error.code, ErrorCode::InvalidMessage);
        assert!(error.detail.contains("cannot be empty"), "{}", error.detail);

        let error = ClientMessage::decode(r#"{"type":"send","text":"\u0007"}"#).expect_err("bell");
        assert_eq!(error.code, ErrorCode::InvalidMessage);
        assert!(error.detail.contains("control characters"), "{}", error.detail);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = ClientMessage::decode(r#"{"type":"send","text":"x","admin":true}"#).expect_err("extra field");
        assert_eq!(error.code, ErrorCode::InvalidMessage);
    }
}
