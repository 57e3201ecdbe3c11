//! A validated nickname: what people are called in the chat.

use serde::{Deserialize, Serialize};

use crate::limits::NICKNAME_MAX_CHARS;
use crate::validated_string::validated_string;

/// Why a string is not a valid [`Nickname`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NicknameError {
    /// Empty or only whitespace.
    #[error("a nickname cannot be empty")]
    Empty,
    /// Longer than [`NICKNAME_MAX_CHARS`].
    #[error("a nickname can have at most {NICKNAME_MAX_CHARS} characters")]
    TooLong,
    /// Starts or ends with whitespace, which would make two names look alike.
    #[error("a nickname cannot start or end with a space")]
    SurroundingWhitespace,
    /// Contains a control character (newline, tab, escape, ...).
    #[error("a nickname cannot contain control characters")]
    ControlCharacter,
    /// Contains an invisible or direction-changing character (zero-width
    /// space, bidi override, ...), which would let two names look alike or
    /// reverse the text around them.
    #[error("a nickname cannot contain invisible or text-direction characters")]
    InvisibleCharacter,
}

/// Characters that show nothing or change the direction of the text around
/// them: Unicode's format characters (category Cf: zero-width spaces and
/// joiners, bidi marks, embeddings, overrides and isolates, tags, ...), plus
/// the fillers that render as blanks.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A nickname: 1 to [`NICKNAME_MAX_CHARS`] characters, no control characters,
/// no leading or trailing whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nickname(String);

impl Nickname {
    /// Validates `value` as a nickname, taking it as typed (no trimming).
    pub fn parse(value: impl Into<String>) -> Result<Self, NicknameError> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err(NicknameError::Empty);
        }
        if value.chars().count() > NICKNAME_MAX_CHARS {
            return Err(NicknameError::TooLong);
        }
        if value.chars().any(char::is_control) {
            return Err(NicknameError::ControlCharacter);
        }
        if value.chars().any(is_invisible) {
            return Err(NicknameError::InvisibleCharacter);
        }
        if value.trim() != value {
            return Err(NicknameError::SurroundingWhitespace);
        }
        Ok(Self(value))
    }
}

validated_string!(Nickname, NicknameError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["alice", "Bob Smith", "ñandú", "李雷", "a"] {
            assert_eq!(Nickname::parse(name).map(|n| n.to_string()), Ok(name.to_owned()));
        }
    }

    #[test]
    fn accepts_exactly_the_limit_in_characters_not_bytes() {
        let name = "é".repeat(NICKNAME_MAX_CHARS);
        assert!(Nickname::parse(name).is_ok());
        let name = "é".repeat(NICKNAME_MAX_CHARS + 1);
        assert_eq!(Nickname::parse(name), Err(NicknameError::TooLong));
    }

    #[test]
    fn rejects_empty_and_blank() {
        assert_eq!(Nickname::parse(""), Err(NicknameError::Empty));
        assert_eq!(Nickname::parse(" \t "), Err(NicknameError::Empty));
    }

    #[test]
    fn rejects_control_characters() {
        for name in ["ali\nce", "bob\u{1b}[31m", "nul\0"] {
            assert_eq!(Nickname::parse(name), Err(NicknameError::ControlCharacter));
        }
    }

    #[test]
    fn rejects_invisible_and_direction_characters() {
        for name in ["alice\u{200B}", "a\u{200D}b", "\u{202E}nimda", "bob\u{2066}", "\u{FEFF}carol", "x\u{E0041}"] {
            assert_eq!(Nickname::parse(name), Err(NicknameError::InvisibleCharacter), "{name:?}");
        }
        assert!(Nickname::parse("ünïcödé 李 🙂").is_ok(), "visible characters stay allowed");
    }

    #[test]
    fn rejects_surrounding_whitespace() {
        assert_eq!(Nickname::parse(" alice"), Err(NicknameError::SurroundingWhitespace));
        assert_eq!(Nickname::parse("alice "), Err(NicknameError::SurroundingWhitespace));
    }
}
