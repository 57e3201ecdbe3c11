//! The two WebSocket endpoints of a chat server, each speaking its own protocol.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which socket a client opened, which decides the protocol it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `/ws`: the typed JSON protocol of [`crate::protocol`] (rooms, history, presence).
    Json,
    /// `/`: the seed's plain protocol, every frame echoed to every plain client.
    Plain,
}

impl Endpoint {
    /// Both endpoints.
    pub const ALL: [Endpoint; 2] = [Endpoint::Json, Endpoint::Plain];

    /// The path the socket is opened on.
    pub const fn path(self) -> &'static str {
        match self {
            Endpoint::Json => "/ws",
            Endpoint::Plain => "/",
        }
    }

    /// Its name in flags, logs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Endpoint::Json => "json",
            Endpoint::Plain => "plain",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not `json` or `plain`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown endpoint {0:?}: expected `json` or `plain`")]
pub struct UnknownEndpoint(String);

impl FromStr for Endpoint {
    type Err = UnknownEndpoint;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name).ok_or_else(|| UnknownEndpoint(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_paths_differ() {
        for endpoint in Endpoint::ALL {
            assert_eq!(endpoint.name().parse::<Endpoint>(), Ok(endpoint));
        }
        assert_ne!(Endpoint::Json.path(), Endpoint::Plain.path());
        assert!("xml".parse::<Endpoint>().is_err());
    }
}
