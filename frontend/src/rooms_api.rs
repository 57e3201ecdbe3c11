//! The room API, as the page calls it (same-origin, with the session
//! cookie): the signed-in user's rooms, creating a private one, invite
//! links made and accepted. Answers are read by hand (see [`Answer::body`]).

use chat_shared::RoomName;
use chat_shared::api::{CreateRoom, Role};
use serde_json::Value;

use crate::account::{Answer, call};

/// A created room the user is in: its name, whether it is private, and
/// what the user is there (a [`chat_shared::api::RoomView`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyRoom {
    /// Its name.
    pub name: RoomName,
    /// Whether only members may enter.
    pub private: bool,
    /// What the user is in it.
    pub role: Role,
}

fn room_at(answer: &Answer, pointer: &str) -> Result<RoomName, String> {
    RoomName::parse(answer.text(pointer)?).map_err(|error| error.to_string())
}

/// The created rooms the signed-in user is a member of.
pub async fn mine() -> Result<Vec<MyRoom>, String> {
    let answer = call("GET", "/api/rooms", None).await?;
    let body = answer.body();
    let rooms = body.get("rooms").and_then(Value::as_array).filter(|_| answer.ok()).ok_or_else(|| answer.refusal())?;
    Ok(rooms
        .iter()
        .filter_map(|room| {
            Some(MyRoom {
                name: RoomName::parse(room.get("name")?.as_str()?).ok()?,
                private: room.get("private")?.as_bool()?,
                role: Role::from_name(room.get("role")?.as_str()?),
            })
        })
        .collect())
}

/// Creates a private room the user owns; its name.
pub async fn create_private(name: &RoomName) -> Result<RoomName, String> {
    let body = CreateRoom { name: name.to_string(), private: true };
    let answer = call("POST", "/api/rooms", serde_json::to_string(&body).ok()).await?;
    room_at(&answer, "/name")
}

/// A new invite link to `room`, for anyone (until revoked).
pub async fn invite(room: &RoomName) -> Result<String, String> {
    call("POST", &format!("/api/rooms/{room}/invites"), Some("{}".to_owned())).await?.text("/url")
}

/// Accepts the invite `code`: the room the user is now a member of.
pub async fn accept(code: &str) -> Result<RoomName, String> {
    room_at(&call("POST", &format!("/api/invites/{code}"), None).await?, "/room")
}
