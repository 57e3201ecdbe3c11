//! Command-line options of `chat-load`.

use std::path::PathBuf;

use chat_shared::Endpoint;
use clap::Parser;

/// Load generator options.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-load", about = "Load generator for WebSocket chat servers")]
pub struct Args {
    /// Socket URL, e.g. ws://127.0.0.1:8080/ws (json) or ws://127.0.0.1:8080/ (plain).
    /// Repeat it for several nodes: clients take them in turn.
    #[arg(long = "url", required = true)]
    pub urls: Vec<String>,

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

    /// The server's process id, to read its CPU time and memory from /proc;
    /// repeat it for several nodes (their CPU and memory are added up).
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,

    /// Room to join (json).
    #[arg(long, default_value = "bench")]
    pub room: String,

    /// Spread clients over this many rooms (json): client i joins
    /// `<room>-<i mod rooms>`; publisher i publishes to its own room.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,

    /// Wrong-password sign-ins per second beside the load, while publishing
    /// (see `login_flood`; run the server with `--trusted-proxy 127.0.0.1/32`).
    #[arg(long, default_value_t = 0.0)]
    pub login_flood: f64,

    /// Clients sign in: a file of session tokens, one per line, one per
    /// client (client 0 first), as `chat-seed-accounts` writes it.
    #[arg(long)]
    pub sessions: Option<std::path::PathBuf>,

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

impl Args {
    /// The URL client `index` connects to.
    pub fn url_for(&self, index: usize) -> &str {
        self.urls.get(index % self.urls.len().max(1)).map_or("", String::as_str)
    }

    /// The room client `index` joins.
    pub fn room_for(&self, index: usize) -> String {
        if self.rooms <= 1 { self.room.clone() } else { format!("{}-{}", self.room, index % self.rooms) }
    }

    /// The servers' CPU time and memory, added up (`None` without pids, or if one is gone).
    pub fn sample_servers(&self) -> Option<crate::procstat::ProcSample> {
        if self.server_pids.is_empty() {
            return None;
        }
        self.server_pids.iter().try_fold(crate::procstat::ProcSample::default(), |total, pid| {
            let sample = crate::procstat::sample(*pid)?;
            Some(crate::procstat::ProcSample {
                cpu_seconds: total.cpu_seconds + sample.cpu_seconds,
                rss_bytes: total.rss_bytes + sample.rss_bytes,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_take_the_urls_in_turn_and_rooms_by_index() {
        let args = Args::parse_from(["chat-load", "--url", "ws://a/ws", "--url", "ws://b/ws", "--rooms", "3"]);
        assert_eq!([args.url_for(0), args.url_for(1), args.url_for(2)], ["ws://a/ws", "ws://b/ws", "ws://a/ws"]);
        assert_eq!([args.room_for(0), args.room_for(4)], ["bench-0", "bench-1"]);
        let one = Args::parse_from(["chat-load", "--url", "ws://a/"]);
        assert_eq!(one.room_for(7), "bench");
        assert!(one.sample_servers().is_none());
        let this = Args::parse_from(["chat-load", "--url", "ws://a/", "--server-pid", &std::process::id().to_string()]);
        assert!(this.sample_servers().is_some_and(|s| s.rss_bytes > 0));
    }
}
