//! The history's epoch: a token created with the server's database. Message
//! ids only mean something within one epoch; a client that held ids of another
//! epoch (a different database, or one restored from an older backup) must
//! drop its log instead of resuming after them.

use serde::{Deserialize, Serialize};

use crate::validated_string::{is_token, validated_string};

/// Longest epoch token, in bytes.
pub const EPOCH_MAX_CHARS: usize = 64;

/// Why a string is not a valid [`Epoch`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an epoch has 1 to {EPOCH_MAX_CHARS} ASCII letters, digits, - or _")]
pub struct EpochError;

/// 1 to [`EPOCH_MAX_CHARS`] ASCII letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Epoch(String);

impl Epoch {
    /// Validates `value` as an epoch token.
    pub fn parse(value: impl Into<String>) -> Result<Self, EpochError> {
        let value = value.into();
        if !is_token(&value, EPOCH_MAX_CHARS) {
            return Err(EpochError);
        }
        Ok(Self(value))
    }
}

validated_string!(Epoch, EpochError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tokens_and_rejects_the_rest() {
        assert!(Epoch::parse("3f9a0c17d2e4b5a6").is_ok());
        for bad in ["", "a b", "é", "x".repeat(EPOCH_MAX_CHARS + 1).as_str()] {
            assert_eq!(Epoch::parse(bad), Err(EpochError), "{bad}");
        }
    }
}
