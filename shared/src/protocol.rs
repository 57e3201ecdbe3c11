//! The typed JSON protocol of the `/ws` endpoint.
//!
//! One JSON object per text frame, tagged by its `type` field.
//!
//! A client enters a room with [`ClientMessage::Join`] (switching rooms is
//! another `join`). The server answers [`ServerMessage::Joined`] with the
//! members, then one [`ServerMessage::History`]: the latest page, or, when the
//! client says which message it saw last (`after`) and is at most
//! [`RESUME_MAX`](crate::limits::RESUME_MAX) behind, the first page after it.
//! Pages are bounded in count and bytes; a client pages forward with
//! [`ClientMessage::HistoryAfter`] while `has_newer` says there is more, and
//! back with [`ClientMessage::History`] while `has_more` does.
//!
//! Ids increase by one per message within a room, so a client that holds id
//! `n` and receives `n + 2` knows it missed `n + 1` and asks for it
//! (`history_after`): live messages and pages may interleave, and the client
//! keeps its log contiguous by id.
//!
//! Every [`ClientMessage::Send`] is stored, then acknowledged to its sender
//! with [`ServerMessage::Ack`] and relayed to the room as
//! [`ServerMessage::Message`]; a resend with the same `client_id` is
//! acknowledged again but stored and relayed only once. A `client_id` is only
//! ever sent back to its author.

use serde::{Deserialize, Serialize};

use crate::{ClientId, Epoch, MessageText, Nickname, RoomName};

/// What a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter `room` as `nick`, leaving the room this connection was in.
    Join {
        /// The room to enter.
        room: RoomName,
        /// The name to show; must be unique among the room's members.
        nick: Nickname,
        /// A secret made by the browser tab (random, never shown to anyone):
        /// a reconnect with the same secret takes over the nickname even if
        /// the server has not yet noticed the old link died. The server never
        /// sends it to anyone.
        tab: ClientId,
        /// The last message id the client holds in this room, to resume after.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// The epoch `after` belongs to (from the `joined` that started the log).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<Epoch>,
    },
    /// Post `text` to `room`.
    Send {
        /// The room, which must be the one this connection is in.
        room: RoomName,
        /// Made up by the client; a resend with the same id is stored once.
        client_id: ClientId,
        /// The message text.
        text: MessageText,
    },
    /// The user is typing in `room`.
    Typing {
        /// The room.
        room: RoomName,
    },
    /// Older messages of `room`: up to `limit` with ids below `before`.
    History {
        /// The room.
        room: RoomName,
        /// Only messages with smaller ids.
        before: u64,
        /// At most this many (capped by the server).
        limit: u32,
    },
    /// Newer messages of `room`: up to `limit` with ids above `after`, the
    /// oldest of them (catching up after a resume or a gap).
    HistoryAfter {
        /// The room.
        room: RoomName,
        /// Only messages with larger ids.
        after: u64,
        /// At most this many (capped by the server).
        limit: u32,
    },
    /// Speak as the user of a connection token (an embedding site's JWT),
    /// instead of passing it as `?token=` on the upgrade. Only before the
    /// first `join`; the server answers `authenticated` or `error`.
    Authenticate {
        /// The token.
        token: String,
    },
    /// A newer token for the same user, before the current one expires
    /// (the server says when with `token_expiring`). Its room grants
    /// replace the old ones.
    Refresh {
        /// The token.
        token: String,
    },
}

/// An entry of a room's log as everyone sees it once the server has stored
/// it: a message, or a change to an earlier one (see [`ChatMessage::deletes`]).
///
/// Changes have their own ids in the room's one sequence, so everything that
/// carries messages (live delivery, history pages, resume after an id, the
/// other nodes) carries them too, in order and without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The room it was posted in.
    pub room: RoomName,
    /// Assigned by the server; strictly increasing within the room.
    pub id: u64,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub ts: u64,
    /// Who wrote it (for a change: who made it).
    pub nick: Nickname,
    /// What was written ([`DELETED_TEXT`] once deleted, and in a change, for
    /// clients that show text only).
    pub text: MessageText,
    /// The sender's id for it: present only in the copy sent to its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// Set on a change rather than a message: it deletes message `deletes`
    /// of the room. A client shows that message as deleted (if it holds it)
    /// and shows no line of its own for the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletes: Option<u64>,
    /// The message was deleted by a later change: its text is gone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

/// The text a deleted message (and a deletion) carries in place of its own.
pub const DELETED_TEXT: &str = "message deleted";

fn is_false(value: &bool) -> bool {
    !*value
}

impl ChatMessage {
    /// Whether this entry is something said (not a change), and not deleted.
    pub fn is_shown_text(&self) -> bool {
        self.deletes.is_none() && !self.deleted
    }
}

/// A room and how many people are in it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room.
    pub name: RoomName,
    /// Members online now.
    pub online: u32,
}

/// What the server sends to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The `join` was accepted. A `history` follows.
    Joined {
        /// The room entered.
        room: RoomName,
        /// The nickname in use there.
        nick: Nickname,
        /// Who is in the room now, sorted by name (the first
        /// [`crate::limits::PRESENCE_EVENTS_MAX`] in larger rooms, which also
        /// get no `member_joined`/`member_left`/`typing` events).
        members: Vec<Nickname>,
        /// The history's epoch; ids of another epoch mean nothing here.
        epoch: Epoch,
        /// Whether the `history` that follows continues the client's log
        /// (it asked to resume, in this epoch, and is not too far behind).
        /// When false the client starts a fresh log.
        resumed: bool,
        /// The room list as of this join, as a `rooms` event would carry it,
        /// with this room's count exact: a client's first list. Later
        /// changes come as `rooms` events (which a connected client that has
        /// not joined yet may get too, once something changes).
        #[serde(default)]
        rooms: Vec<RoomInfo>,
    },
    /// Stored messages of a room, oldest first.
    ///
    /// After `joined`, a client gets its room's messages each once, in id
    /// order: this page first (the newest, or those after `after` when it
    /// resumed), then live `message`s newer than its last. While `has_newer`
    /// says more pages wait, live messages wait too, until the client has
    /// fetched them with `history_after` (a client that never does is
    /// closed as too slow once they fill its queue). Older pages (`history`
    /// with `before`) come whenever asked for.
    History {
        /// The room.
        room: RoomName,
        /// The messages, by increasing id.
        messages: Vec<ChatMessage>,
        /// Whether older messages exist before the first one here.
        has_more: bool,
        /// Whether newer messages exist after the last one here (more pages
        /// to fetch with `history_after`). Live messages may still follow.
        #[serde(default)]
        has_newer: bool,
    },
    /// A new message in the client's room, sent to every member, the author included.
    Message(ChatMessage),
    /// The client's message `client_id` is stored as `id`.
    Ack {
        /// The room.
        room: RoomName,
        /// The client's id for the message.
        client_id: ClientId,
        /// The stored id.
        id: u64,
    },
    /// Someone entered the client's room.
    MemberJoined {
        /// The room.
        room: RoomName,
        /// Who.
        nick: Nickname,
    },
    /// Someone left the client's room.
    MemberLeft {
        /// The room.
        room: RoomName,
        /// Who.
        nick: Nickname,
    },
    /// The client's room's member list as it is now, sorted by name: it
    /// replaces the list the client has. Sent when the server finds that
    /// list out of date (presence events lost to a fault, a join that
    /// crossed another node's), so a list heals by itself. Rooms past
    /// [`crate::limits::PRESENCE_EVENTS_MAX`] get none.
    Members {
        /// The room.
        room: RoomName,
        /// Who is in it.
        members: Vec<Nickname>,
    },
    /// Someone in the client's room is typing. Never stored.
    Typing {
        /// The room.
        room: RoomName,
        /// Who.
        nick: Nickname,
    },
    /// The lobby and the busiest rooms (at most 20 others), with online
    /// counts, plus the client's own room if it is not among them. Sent when
    /// this client's view changed: at once after a quiet spell, and while
    /// rooms keep filling or emptying (a crowd rejoining after a restart)
    /// once they have been still for a moment, or every few seconds at most.
    Rooms {
        /// Sorted by name.
        rooms: Vec<RoomInfo>,
    },
    /// A connection token was accepted (on the upgrade, by `authenticate`
    /// or by `refresh`): the connection speaks as `name` in every room.
    Authenticated {
        /// The name every join of this connection uses.
        name: Nickname,
        /// Seconds until the token expires.
        expires_in: u64,
    },
    /// The connection's token expires in `expires_in` seconds: send
    /// `refresh` with a new one, or the connection is closed then (4001).
    TokenExpiring {
        /// Seconds left.
        expires_in: u64,
    },
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
    /// `send` or `typing` for a room this connection has not joined.
    NotJoined,
    /// Someone else in the room already uses that nickname.
    NicknameTaken,
    /// The history store failed; the message was not stored (retry later).
    StoreUnavailable,
    /// Too many messages too fast; this one was dropped. Slow down.
    RateLimited,
    /// The server has as many rooms in use as it allows; join an existing one.
    RoomLimit,
    /// A service the server relies on (e.g. presence) failed; retry soon.
    Unavailable,
    /// The nickname belongs to a registered account; sign in to use it.
    NameReserved,
    /// The connection may not do that in that room (its token grants no
    /// such access).
    Forbidden,
    /// A connection token was refused (expired, forged, not for this
    /// server); the message says why.
    TokenInvalid,
    /// This server admits signed-in users only (`--guests off`).
    SignInRequired,
    /// A moderator banned this account (or, for guests, this address) from the room.
    Banned,
    /// The room is in slow mode: this poster must wait before posting again
    /// (the message says how long); the message was not stored.
    SlowMode,
}

impl ErrorCode {
    /// Every code (a new one goes here too: the web client's decoder knows
    /// the codes listed here, and the tests check each against serde's name).
    pub const ALL: [Self; 15] = [
        Self::InvalidJson,
        Self::InvalidMessage,
        Self::UnsupportedFrame,
        Self::NotJoined,
        Self::NicknameTaken,
        Self::StoreUnavailable,
        Self::RateLimited,
        Self::RoomLimit,
        Self::Unavailable,
        Self::NameReserved,
        Self::Forbidden,
        Self::TokenInvalid,
        Self::SignInRequired,
        Self::Banned,
        Self::SlowMode,
    ];

    /// Its name on the wire (as serde names it; a test holds them equal).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnsupportedFrame => "unsupported_frame",
            Self::NotJoined => "not_joined",
            Self::NicknameTaken => "nickname_taken",
            Self::StoreUnavailable => "store_unavailable",
            Self::RateLimited => "rate_limited",
            Self::RoomLimit => "room_limit",
            Self::Unavailable => "unavailable",
            Self::NameReserved => "name_reserved",
            Self::Forbidden => "forbidden",
            Self::TokenInvalid => "token_invalid",
            Self::SignInRequired => "sign_in_required",
            Self::Banned => "banned",
            Self::SlowMode => "slow_mode",
        }
    }

    /// The code named `name` on the wire.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == name)
    }
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
    // serde_json always serializes; failure would be a bug in this crate, and
    // would send an empty frame (which the peer refuses as invalid JSON).
    // Not `expect`: its message would bring serde_json's error formatting into
    // the web client (3 KB).
    serde_json::to_string(value).unwrap_or_default()
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

    fn room(s: &str) -> RoomName {
        RoomName::parse(s).expect("valid room")
    }

    fn id(s: &str) -> ClientId {
        ClientId::parse(s).expect("valid client id")
    }

    fn epoch(s: &str) -> Epoch {
        Epoch::parse(s).expect("valid epoch")
    }

    #[track_caller]
    fn golden_client(message: ClientMessage, json: &str) {
        assert_eq!(message.encode(), json);
        assert_eq!(ClientMessage::decode(json), Ok(message));
    }

    #[track_caller]
    fn golden_server(message: ServerMessage, json: &str) {
        assert_eq!(message.encode(), json);
        assert_eq!(ServerMessage::decode_light(json), Ok(message.clone()), "the web client's decoder");
        assert_eq!(ServerMessage::decode(json), Ok(message));
    }

    fn chat(id: u64, client_id: Option<&str>) -> ChatMessage {
        ChatMessage {
            room: room("lobby"),
            id,
            ts: 1_700_000_000_123,
            nick: nick("alice"),
            text: text("line\nnext"),
            client_id: client_id.map(self::id),
            deletes: None,
            deleted: false,
        }
    }

    #[test]
    fn join_frames() {
        golden_client(
            ClientMessage::Join { room: room("lobby"), nick: nick("alice"), tab: id("t1"), after: None, epoch: None },
            r#"{"type":"join","room":"lobby","nick":"alice","tab":"t1"}"#,
        );
        golden_client(
            ClientMessage::Join {
                room: room("dev"),
                nick: nick("alice"),
                tab: id("t1"),
                after: Some(41),
                epoch: Some(epoch("e1")),
            },
            r#"{"type":"join","room":"dev","nick":"alice","tab":"t1","after":41,"epoch":"e1"}"#,
        );
    }

    #[test]
    fn send_typing_and_history_frames() {
        golden_client(
            ClientMessage::Send { room: room("lobby"), client_id: id("t1-7"), text: text("hi <b>") },
            r#"{"type":"send","room":"lobby","client_id":"t1-7","text":"hi <b>"}"#,
        );
        golden_client(ClientMessage::Typing { room: room("dev") }, r#"{"type":"typing","room":"dev"}"#);
        golden_client(
            ClientMessage::History { room: room("dev"), before: 51, limit: 50 },
            r#"{"type":"history","room":"dev","before":51,"limit":50}"#,
        );
        golden_client(
            ClientMessage::HistoryAfter { room: room("dev"), after: 51, limit: 50 },
            r#"{"type":"history_after","room":"dev","after":51,"limit":50}"#,
        );
    }

    #[test]
    fn joined_and_history_frames() {
        golden_server(
            ServerMessage::Joined {
                room: room("lobby"),
                nick: nick("bob"),
                members: vec![nick("alice"), nick("bob")],
                epoch: epoch("e1"),
                resumed: false,
                rooms: vec![RoomInfo { name: room("lobby"), online: 2 }],
            },
            r#"{"type":"joined","room":"lobby","nick":"bob","members":["alice","bob"],"epoch":"e1","resumed":false,"rooms":[{"name":"lobby","online":2}]}"#,
        );
        golden_server(
            ServerMessage::History {
                room: room("lobby"),
                messages: vec![chat(3, None)],
                has_more: true,
                has_newer: false,
            },
            r#"{"type":"history","room":"lobby","messages":[{"room":"lobby","id":3,"ts":1700000000123,"nick":"alice","text":"line\nnext"}],"has_more":true,"has_newer":false}"#,
        );
    }

    #[test]
    fn message_and_ack_frames() {
        golden_server(
            ServerMessage::Message(chat(7, Some("t1-7"))),
            r#"{"type":"message","room":"lobby","id":7,"ts":1700000000123,"nick":"alice","text":"line\nnext","client_id":"t1-7"}"#,
        );
        golden_server(
            ServerMessage::Ack { room: room("lobby"), client_id: id("t1-7"), id: 7 },
            r#"{"type":"ack","room":"lobby","client_id":"t1-7","id":7}"#,
        );
    }

    #[test]
    fn a_deletion_and_the_message_it_deleted() {
        let deletion = ChatMessage { deletes: Some(7), text: text(DELETED_TEXT), ..chat(9, None) };
        golden_server(
            ServerMessage::Message(deletion),
            r#"{"type":"message","room":"lobby","id":9,"ts":1700000000123,"nick":"alice","text":"message deleted","deletes":7}"#,
        );
        let deleted = ChatMessage { deleted: true, text: text(DELETED_TEXT), ..chat(7, None) };
        assert!(!deleted.is_shown_text());
        golden_server(
            ServerMessage::History { room: room("lobby"), messages: vec![deleted], has_more: false, has_newer: false },
            r#"{"type":"history","room":"lobby","messages":[{"room":"lobby","id":7,"ts":1700000000123,"nick":"alice","text":"message deleted","deleted":true}],"has_more":false,"has_newer":false}"#,
        );
    }

    #[test]
    fn presence_typing_and_rooms_frames() {
        golden_server(
            ServerMessage::MemberJoined { room: room("dev"), nick: nick("carol") },
            r#"{"type":"member_joined","room":"dev","nick":"carol"}"#,
        );
        golden_server(
            ServerMessage::MemberLeft { room: room("dev"), nick: nick("carol") },
            r#"{"type":"member_left","room":"dev","nick":"carol"}"#,
        );
        golden_server(
            ServerMessage::Members { room: room("dev"), members: vec![nick("bob"), nick("carol")] },
            r#"{"type":"members","room":"dev","members":["bob","carol"]}"#,
        );
        golden_server(
            ServerMessage::Typing { room: room("dev"), nick: nick("carol") },
            r#"{"type":"typing","room":"dev","nick":"carol"}"#,
        );
        golden_server(
            ServerMessage::Rooms { rooms: vec![RoomInfo { name: room("lobby"), online: 2 }] },
            r#"{"type":"rooms","rooms":[{"name":"lobby","online":2}]}"#,
        );
    }

    #[test]
    fn token_frames() {
        golden_client(
            ClientMessage::Authenticate { token: "a.b.c".into() },
            r#"{"type":"authenticate","token":"a.b.c"}"#,
        );
        golden_client(ClientMessage::Refresh { token: "a.b.c".into() }, r#"{"type":"refresh","token":"a.b.c"}"#);
        golden_server(
            ServerMessage::Authenticated { name: nick("alice"), expires_in: 3600 },
            r#"{"type":"authenticated","name":"alice","expires_in":3600}"#,
        );
        golden_server(ServerMessage::TokenExpiring { expires_in: 30 }, r#"{"type":"token_expiring","expires_in":30}"#);
    }

    #[test]
    fn error_frames() {
        golden_server(
            ServerMessage::error(ErrorCode::NicknameTaken, "bob is taken"),
            r#"{"type":"error","code":"nickname_taken","message":"bob is taken"}"#,
        );
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_string(&code).ok(), Some(format!("\"{}\"", code.as_str())));
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::Forbidden.as_str(), "forbidden", "one spelled out: the table is the wire's");
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
        let error =
            ClientMessage::decode(r#"{"type":"join","room":"lobby","nick":"  ","tab":"t"}"#).expect_err("blank nick");
        assert_eq!(error.code, ErrorCode::InvalidMessage);
        assert!(error.detail.contains("cannot be empty"), "{}", error.detail);

        let error = ClientMessage::decode(r#"{"type":"send","room":"lobby","client_id":"c","text":"\u0007"}"#)
            .expect_err("bell");
        assert!(error.detail.contains("control characters"), "{}", error.detail);

        let error = ClientMessage::decode(r#"{"type":"typing","room":"Not A Room"}"#).expect_err("room");
        assert_eq!(error.code, ErrorCode::InvalidMessage);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = ClientMessage::decode(r#"{"type":"typing","room":"lobby","admin":true}"#).expect_err("extra");
        assert_eq!(error.code, ErrorCode::InvalidMessage);
    }
}
