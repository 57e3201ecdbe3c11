//! The limits every session enforces, from the server's configuration.

use std::time::Duration;

use crate::config::Config;

/// The limits every session enforces.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Largest frame or reassembled message, in bytes.
    pub max_message_bytes: usize,
    /// Average data frames per second (0 = unlimited).
    pub rate_limit: u32,
    /// Burst above the average.
    pub rate_burst: u32,
    /// Bytes that may wait in the outbound queue.
    pub outbound_queue_bytes: usize,
    /// Silence before a ping.
    pub ping_interval: Duration,
    /// Silence before the peer is dropped.
    pub idle_timeout: Duration,
}

impl SessionSettings {
    /// The session limits of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes,
            rate_limit: config.rate_limit,
            rate_burst: config.rate_burst,
            // A queue must hold at least one message of the largest size a peer may send.
            outbound_queue_bytes: config.outbound_queue_bytes.max(config.max_message_bytes + 64 * 1024),
            ping_interval: config.ping_interval(),
            idle_timeout: config.idle_timeout(),
        }
    }
}
