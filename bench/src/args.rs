//! Command-line options of `chat-load`.

use std::path::PathBuf;

use chat_shared::Endpoint;
use clap::Parser;

/// Load generator options.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-load", about = "Load generator for WebSocket chat servers")]
pub struct Args {
    /// Socket URL, e.g. ws://127.0.0.1:8080/ws (json) or ws://127.0.0.1:8080/ (plain).
    #[arg(long)]
    pub url: String,

    /// Protocol spoken by the clients: `json` (the chat's typed protocol of
    /// `/ws`: join a room, send, receive `message` events) or `plain` (text
    /// frames echoed to every client: `/`, or any broadcast server).
    #[arg(long, default_value = "plain")]
    pub protocol: Endpoint,

    /// Clients to open.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,

    /// How many of them publish.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,

    /// Messages per second per publisher; 0 = closed loop (see --window).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,

    /// Closed loop: messages each publisher keeps in flight (until its own echo returns).
    #[arg(long, default_value_t = 4)]
    pub window: usize,

    /// Stop each publisher after this many messages (0 = run for --duration).
    #[arg(long, default_value_t = 0)]
    pub messages: u64,

    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Payload size in bytes (the text of each message).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,

    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// Only connect and hold the connections (memory per idle connection).
    #[arg(long)]
    pub idle: bool,

    /// Reconnect storm: one publisher sends at --rate while the other clients
    /// join as fast as --connect-concurrency allows; publishing goes on for
    /// --duration after the last is in.
    #[arg(long, conflicts_with = "idle")]
    pub storm: bool,

    /// Seconds to wait, after connecting and after publishing, for things to settle.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,

    /// The server's process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Room to join (json).
    #[arg(long, default_value = "bench")]
    pub room: String,

    /// A label for the report.
    #[arg(long, default_value = "")]
    pub label: String,

    /// Write the report as JSON here too.
    #[arg(long)]
    pub json_out: Option<PathBuf>,

    /// Exit non-zero on any loss, connect error or disconnect (for smoke tests).
    #[arg(long)]
    pub fail_on_loss: bool,
}
