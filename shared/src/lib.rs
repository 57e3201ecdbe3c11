//! The rules the chat server and the web client must agree on.
//!
//! Everything that crosses the `/ws` socket is defined here once: the message
//! types ([`protocol`]), the validated values they carry ([`Nickname`],
//! [`MessageText`], [`RoomName`], [`ClientId`]) and the limits that bound them
//! ([`limits`]). Both sides depend on this crate, so they cannot drift apart.

pub mod api;
mod client_id;
mod endpoint;
mod epoch;
pub mod limits;
mod message_text;
mod nickname;
pub mod protocol;
mod room_name;
mod server_frame;
mod validated_string;

pub use client_id::{ClientId, ClientIdError};
pub use endpoint::{Endpoint, UnknownEndpoint};
pub use epoch::{EPOCH_MAX_CHARS, Epoch, EpochError};
pub use message_text::{MessageText, MessageTextError};
pub use nickname::{Nickname, NicknameError};
pub use protocol::{ChatMessage, ClientMessage, DELETED_TEXT, DecodeError, ErrorCode, RoomInfo, ServerMessage};
pub use room_name::{DEFAULT_ROOM, RoomName, RoomNameError};
