//! Server settings, from command-line flags or environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Settings of one chat server process.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-server", version, about = "Real-time chat: WebSocket fan-out plus the web client.")]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Folder holding the built web client (trunk's `dist/`).
    #[arg(long, env = "CHAT_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// SQLite file holding the message history; created, with its folder, on first start.
    #[arg(long, env = "CHAT_DATABASE", default_value = "data/chat.sqlite3")]
    pub database: PathBuf,
}

impl Config {
    /// Settings for tests and embedding: listen on `bind`, serve the client
    /// from `static_dir`, keep history in `database`.
    pub fn new(bind: SocketAddr, static_dir: impl Into<PathBuf>, database: impl Into<PathBuf>) -> Self {
        Self { bind, static_dir: static_dir.into(), database: database.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_dist_on_8080() {
        let config = Config::try_parse_from(["chat-server"]).expect("defaults parse");
        assert_eq!(config.bind, "127.0.0.1:8080".parse().expect("address"));
        assert_eq!(config.static_dir, PathBuf::from("dist"));
        assert_eq!(config.database, PathBuf::from("data/chat.sqlite3"));
    }

    #[test]
    fn flags_override_defaults() {
        let config = Config::try_parse_from([
            "chat-server",
            "--bind",
            "0.0.0.0:9000",
            "--static-dir",
            "/srv/chat",
            "--database",
            "/var/lib/chat.db",
        ])
        .expect("flags parse");
        assert_eq!(config.bind.port(), 9000);
        assert_eq!(config.static_dir, PathBuf::from("/srv/chat"));
        assert_eq!(config.database, PathBuf::from("/var/lib/chat.db"));
    }

    #[test]
    fn bad_address_is_refused() {
        assert!(Config::try_parse_from(["chat-server", "--bind", "nowhere"]).is_err());
    }
}
