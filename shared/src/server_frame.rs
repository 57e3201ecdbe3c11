//! A decoder of server frames written by hand over [`serde_json::Value`],
//! which the web client uses instead of the one serde derives for
//! [`ServerMessage`]: the same frames give the same values (the tests decode
//! every golden frame and every generated message both ways), at a fraction
//! of the WebAssembly: the derived decoder of an internally tagged enum,
//! with every variant's fields buffered and visited, cost the bundle 18 KB
//! of its gzip size.

use std::fmt::Display;

use serde_json::{Map, Value};

use crate::protocol::{ChatMessage, DecodeError, ErrorCode, RoomInfo, ServerMessage};
use crate::{ClientId, Epoch, MessageText, Nickname, RoomName};

type Fields = Map<String, Value>;

fn invalid(detail: impl Into<String>) -> DecodeError {
    DecodeError { code: ErrorCode::InvalidMessage, detail: detail.into() }
}

fn field<'a>(fields: &'a Fields, name: &str) -> Result<&'a Value, DecodeError> {
    fields.get(name).ok_or_else(|| invalid(format!("missing field `{name}`")))
}

/// A string field, validated by `parse` (a newtype's own rule, as serde applies it).
fn parsed<T, E: Display>(value: &Value, name: &str, parse: fn(String) -> Result<T, E>) -> Result<T, DecodeError> {
    let text = value.as_str().ok_or_else(|| invalid(format!("`{name}` is not a string")))?;
    parse(text.to_owned()).map_err(|error| invalid(format!("`{name}`: {error}")))
}

fn room(fields: &Fields) -> Result<RoomName, DecodeError> {
    parsed(field(fields, "room")?, "room", RoomName::parse)
}

fn nick(value: &Value) -> Result<Nickname, DecodeError> {
    parsed(value, "nick", Nickname::parse)
}

fn number(fields: &Fields, name: &str) -> Result<u64, DecodeError> {
    field(fields, name)?.as_u64().ok_or_else(|| invalid(format!("`{name}` is not a whole number")))
}

/// A boolean field; a missing one is `default`, if it has one.
fn flag(fields: &Fields, name: &str, default: Option<bool>) -> Result<bool, DecodeError> {
    match (fields.get(name), default) {
        (None, Some(default)) => Ok(default),
        (value, _) => value.and_then(Value::as_bool).ok_or_else(|| invalid(format!("`{name}` is not a boolean"))),
    }
}

/// An array field, each item read by `item`; a missing one is empty if `optional`.
fn list<T>(
    fields: &Fields,
    name: &str,
    optional: bool,
    item: impl Fn(&Value) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    match fields.get(name) {
        None if optional => Ok(Vec::new()),
        value => value
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(format!("`{name}` is not a list")))?
            .iter()
            .map(item)
            .collect(),
    }
}

fn object(value: &Value) -> Result<&Fields, DecodeError> {
    value.as_object().ok_or_else(|| invalid("expected an object"))
}

fn chat_message(fields: &Fields) -> Result<ChatMessage, DecodeError> {
    let client_id = match fields.get("client_id") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parsed(value, "client_id", ClientId::parse)?),
    };
    Ok(ChatMessage {
        room: room(fields)?,
        id: number(fields, "id")?,
        ts: number(fields, "ts")?,
        nick: nick(field(fields, "nick")?)?,
        text: parsed(field(fields, "text")?, "text", MessageText::parse)?,
        client_id,
        deletes: match fields.get("deletes") {
            None | Some(Value::Null) => None,
            Some(_) => Some(number(fields, "deletes")?),
        },
        deleted: flag(fields, "deleted", Some(false))?,
    })
}

fn room_info(value: &Value) -> Result<RoomInfo, DecodeError> {
    let fields = object(value)?;
    let online = u32::try_from(number(fields, "online")?).map_err(|_| invalid("`online` is too large"))?;
    Ok(RoomInfo { name: parsed(field(fields, "name")?, "name", RoomName::parse)?, online })
}

fn variant(kind: &str, fields: &Fields) -> Result<ServerMessage, DecodeError> {
    Ok(match kind {
        "joined" => ServerMessage::Joined {
            room: room(fields)?,
            nick: nick(field(fields, "nick")?)?,
            members: list(fields, "members", false, nick)?,
            epoch: parsed(field(fields, "epoch")?, "epoch", Epoch::parse)?,
            resumed: flag(fields, "resumed", None)?,
            rooms: list(fields, "rooms", true, room_info)?,
        },
        "history" => ServerMessage::History {
            room: room(fields)?,
            messages: list(fields, "messages", false, |value| chat_message(object(value)?))?,
            has_more: flag(fields, "has_more", None)?,
            has_newer: flag(fields, "has_newer", Some(false))?,
        },
        "message" => ServerMessage::Message(chat_message(fields)?),
        "ack" => ServerMessage::Ack {
            room: room(fields)?,
            client_id: parsed(field(fields, "client_id")?, "client_id", ClientId::parse)?,
            id: number(fields, "id")?,
        },
        "member_joined" => ServerMessage::MemberJoined { room: room(fields)?, nick: nick(field(fields, "nick")?)? },
        "member_left" => ServerMessage::MemberLeft { room: room(fields)?, nick: nick(field(fields, "nick")?)? },
        "members" => ServerMessage::Members { room: room(fields)?, members: list(fields, "members", false, nick)? },
        "typing" => ServerMessage::Typing { room: room(fields)?, nick: nick(field(fields, "nick")?)? },
        "rooms" => ServerMessage::Rooms { rooms: list(fields, "rooms", false, room_info)? },
        "authenticated" => ServerMessage::Authenticated {
            name: parsed(field(fields, "name")?, "name", Nickname::parse)?,
            expires_in: number(fields, "expires_in")?,
        },
        "token_expiring" => ServerMessage::TokenExpiring { expires_in: number(fields, "expires_in")? },
        "error" => ServerMessage::Error {
            code: field(fields, "code")?
                .as_str()
                .and_then(ErrorCode::from_name)
                .ok_or_else(|| invalid("`code` is not a known error code"))?,
            message: field(fields, "message")?.as_str().ok_or_else(|| invalid("`message` is not a string"))?.to_owned(),
        },
        other => return Err(invalid(format!("unknown variant `{other}`"))),
    })
}

impl ServerMessage {
    /// Decodes one text frame as [`ServerMessage::decode`] does, by hand
    /// (see the module doc): the web client's decoder.
    pub fn decode_light(frame: &str) -> Result<Self, DecodeError> {
        // serde_json's own wording of the error would bring its formatting
        // code along (2-3 KB): a frame from our server is JSON anyway.
        let value: Value = serde_json::from_str(frame)
            .map_err(|_| DecodeError { code: ErrorCode::InvalidJson, detail: "the frame is not JSON".to_owned() })?;
        let fields = object(&value)?;
        let kind = field(fields, "type")?.as_str().ok_or_else(|| invalid("`type` is not a string"))?;
        variant(kind, fields)
    }
}
