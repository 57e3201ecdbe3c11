//! Identifiers a client makes up: for its messages (so a resend is stored
//! once) and for its browser tab (so a reconnect takes over its own nickname).

use serde::{Deserialize, Serialize};

use crate::limits::CLIENT_ID_MAX_CHARS;
use crate::validated_string::{is_token, validated_string};

/// Why a string is not a valid [`ClientId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a client id has 1 to {CLIENT_ID_MAX_CHARS} ASCII letters, digits, - or _")]
pub struct ClientIdError;

/// 1 to [`CLIENT_ID_MAX_CHARS`] ASCII letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// Validates `value` as a client id.
    pub fn parse(value: impl Into<String>) -> Result<Self, ClientIdError> {
        let value = value.into();
        if !is_token(&value, CLIENT_ID_MAX_CHARS) {
            return Err(ClientIdError);
        }
        Ok(Self(value))
    }
}

validated_string!(ClientId, ClientIdError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tokens_and_rejects_the_rest() {
        assert!(ClientId::parse("tab-3f9a_17").is_ok());
        for bad in ["", "a b", "ü", "x".repeat(CLIENT_ID_MAX_CHARS + 1).as_str()] {
            assert_eq!(ClientId::parse(bad), Err(ClientIdError), "{bad}");
        }
    }
}
