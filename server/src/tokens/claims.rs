//! The claims a connection token carries, as this server reads and mints them.

use serde::{Deserialize, Serialize};

/// A connection token's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user, as the embedding site knows them.
    pub sub: String,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: u64,
    /// The name the user speaks under (default: `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The rooms the token grants (see [`super::grants`]); absent: every room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
}
