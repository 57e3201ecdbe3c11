//! The validated text of a chat message.

use serde::{Deserialize, Serialize};

use crate::limits::MESSAGE_TEXT_MAX_CHARS;
use crate::validated_string::validated_string;

/// Why a string is not a valid [`MessageText`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageTextError {
    /// Empty or only whitespace.
    #[error("a message cannot be empty")]
    Empty,
    /// Longer than [`MESSAGE_TEXT_MAX_CHARS`].
    #[error("a message can have at most {MESSAGE_TEXT_MAX_CHARS} characters")]
    TooLong,
    /// Contains a control character other than newline or tab.
    #[error("a message cannot contain control characters")]
    ControlCharacter,
}

/// The text of a message: not blank, at most [`MESSAGE_TEXT_MAX_CHARS`]
/// characters, no control characters except newline and tab (so pasted
/// multi-line text survives, but terminal escapes and NULs do not).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageText(String);

impl MessageText {
    /// Validates `value` as message text, taking it as typed (no trimming).
    pub fn parse(value: impl Into<String>) -> Result<Self, MessageTextError> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err(MessageTextError::Empty);
        }
        if value.chars().count() > MESSAGE_TEXT_MAX_CHARS {
            return Err(MessageTextError::TooLong);
        }
        if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(MessageTextError::ControlCharacter);
        }
        Ok(Self(value))
    }
}

validated_string!(MessageText, MessageTextError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_text_markup_and_newlines() {
        for text in ["hi", "<img src=x onerror=alert(1)>", "line one\nline two", "  padded  "] {
            assert_eq!(MessageText::parse(text).map(String::from), Ok(text.to_owned()));
        }
    }

    #[test]
    fn rejects_blank() {
        assert_eq!(MessageText::parse(""), Err(MessageTextError::Empty));
        assert_eq!(MessageText::parse("\n \t"), Err(MessageTextError::Empty));
    }

    #[test]
    fn limit_counts_characters() {
        assert!(MessageText::parse("ü".repeat(MESSAGE_TEXT_MAX_CHARS)).is_ok());
        assert_eq!(MessageText::parse("a".repeat(MESSAGE_TEXT_MAX_CHARS + 1)), Err(MessageTextError::TooLong));
    }

    #[test]
    fn rejects_control_characters_but_newline_and_tab() {
        for text in ["bell\u{7}", "esc\u{1b}[2J", "cr\r", "nul\0"] {
            assert_eq!(MessageText::parse(text), Err(MessageTextError::ControlCharacter));
        }
    }
}
