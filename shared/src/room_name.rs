//! A validated room name: safe in URLs (`#/r/<room>`) and in logs.

use serde::{Deserialize, Serialize};

use crate::limits::ROOM_NAME_MAX_CHARS;
use crate::validated_string::validated_string;

/// The room everyone starts in, and where plain clients talk.
pub const DEFAULT_ROOM: &str = "lobby";

/// Why a string is not a valid [`RoomName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomNameError {
    /// Empty.
    #[error("a room name cannot be empty")]
    Empty,
    /// Longer than [`ROOM_NAME_MAX_CHARS`].
    #[error("a room name can have at most {ROOM_NAME_MAX_CHARS} characters")]
    TooLong,
    /// Something other than lowercase letters, digits, `-` and `_`, or a
    /// first character that is not a letter or digit.
    #[error("a room name uses lowercase letters, digits, - and _, starting with a letter or digit")]
    InvalidCharacter,
}

/// A room name: 1 to [`ROOM_NAME_MAX_CHARS`] of `a-z`, `0-9`, `-`, `_`,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    /// Validates `value` as a room name, as typed.
    pub fn parse(value: impl Into<String>) -> Result<Self, RoomNameError> {
        let value = value.into();
        let Some(first) = value.chars().next() else { return Err(RoomNameError::Empty) };
        if value.chars().count() > ROOM_NAME_MAX_CHARS {
            return Err(RoomNameError::TooLong);
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if !first.is_ascii_alphanumeric() || !value.chars().all(allowed) {
            return Err(RoomNameError::InvalidCharacter);
        }
        Ok(Self(value))
    }

    /// Like [`RoomName::parse`], after trimming and lowercasing what a person
    /// typed (ASCII only: a room name is ASCII, and Unicode's case tables
    /// would cost the web client 3 KB).
    pub fn from_input(value: &str) -> Result<Self, RoomNameError> {
        Self::parse(value.trim().to_ascii_lowercase())
    }

    /// The default room, `lobby`.
    pub fn lobby() -> Self {
        Self(DEFAULT_ROOM.to_owned())
    }
}

impl Default for RoomName {
    fn default() -> Self {
        Self::lobby()
    }
}

validated_string!(RoomName, RoomNameError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_url_safe_names() {
        for name in ["lobby", "rust-lang", "team_42", "9lives"] {
            assert!(RoomName::parse(name).is_ok(), "{name}");
        }
        assert_eq!(RoomName::lobby().as_str(), "lobby");
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(RoomName::parse(""), Err(RoomNameError::Empty));
        for name in ["Lobby", "-x", "a b", "a/b", "café", "a#b"] {
            assert_eq!(RoomName::parse(name), Err(RoomNameError::InvalidCharacter), "{name}");
        }
        assert_eq!(RoomName::parse("a".repeat(ROOM_NAME_MAX_CHARS + 1)), Err(RoomNameError::TooLong));
    }

    #[test]
    fn input_is_trimmed_and_lowercased() {
        assert_eq!(RoomName::from_input("  Rust-Lang "), RoomName::parse("rust-lang"));
    }
}
