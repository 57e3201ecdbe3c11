//! Server settings: command-line flags, environment variables and an optional
//! TOML file, in that order of precedence, over the defaults shown in `--help`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::bus::redis::RedisUrl;
use crate::store::location::StoreLocation;

pub use crate::store::sqlite::Durability;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

impl Switch {
    /// Whether it is on.
    pub fn is_on(self) -> bool {
        self == Self::On
    }
}

/// Settings of one chat server process.
#[derive(Debug, Clone, Parser, Serialize, Deserialize)]
#[command(name = "chat-server", version, about = "Real-time chat: WebSocket fan-out plus the web client.")]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// TOML file with any of these settings (keys as the long flags, e.g.
    /// `max-message-bytes = 1048576`); flags and environment win over it.
    #[arg(long, env = "CHAT_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free port (see `--port-file`).
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Once listening, write the bound address (`ip:port` and a newline) to
    /// this file, so scripts that bind port 0 learn the port without reading
    /// the log. The file appears complete (written aside, then renamed).
    #[arg(long, env = "CHAT_PORT_FILE")]
    pub port_file: Option<PathBuf>,

    /// Folder holding the built web client (trunk's `dist/`).
    #[arg(long, env = "CHAT_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// Where the message history lives: a SQLite file (created, with its
    /// folder, on first start) or a PostgreSQL URL (`postgres://user:password@host/db`,
    /// for several nodes sharing one history; the schema is created on start).
    #[arg(long, env = "CHAT_DATABASE", default_value = "data/chat.sqlite3")]
    pub database: StoreLocation,

    /// A Redis server (`redis://[:password@]host[:port][/db]`) through which
    /// several nodes sharing one PostgreSQL history hear each other's room
    /// events. Needs `--database postgres://...`.
    #[arg(long, env = "CHAT_REDIS_URL")]
    pub redis: Option<RedisUrl>,

    /// With `--redis`: seconds between checks of each room's member list
    /// against presence. A list that lost presence events to a fault (a
    /// Redis restart, a node buried) is corrected within this.
    #[arg(long, env = "CHAT_CHECK_MEMBERS_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub check_members_secs: u64,

    /// Seconds between checks that each signed-in socket's account still
    /// has a current session (one query per node for all of them); a socket
    /// whose account has none left is closed. Signing out everywhere closes
    /// sockets at once; this catches what a node did not hear of.
    #[arg(long, env = "CHAT_SESSION_SWEEP_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_sweep_secs: u64,

    /// How hard a SQLite commit waits for the disk: `full` (an acknowledged
    /// message survives a power loss) or `normal` (faster; survives a crash of
    /// the process, but the last acknowledged messages may vanish on power
    /// loss). PostgreSQL's own `synchronous_commit` decides for it.
    #[arg(long, env = "CHAT_DURABILITY", value_enum, default_value = "full")]
    pub durability: Durability,

    /// Another origin allowed to open sockets (repeatable; comma-separated in the
    /// environment). The server's own origin is always allowed.
    #[arg(long = "allowed-origin", env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    #[serde(default)]
    pub allowed_origins: Vec<String>,

    /// The origin browsers load the chat from (e.g. `https://chat.example.org`)
    /// when a proxy in front may rewrite `Host`: sockets must come from it
    /// (or an allowed origin) instead of from the request's `Host`.
    #[arg(long, env = "CHAT_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,

    /// A reverse proxy (CIDR, e.g. `127.0.0.1/32` or `10.0.0.0/8`) whose
    /// `Forwarded` / `X-Forwarded-For` headers name the client (repeatable;
    /// comma-separated in the environment). Other peers' headers are ignored.
    #[arg(long = "trusted-proxy", env = "CHAT_TRUSTED_PROXIES", value_delimiter = ',')]
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Development: also allow sockets from `trunk serve`'s pages
    /// (`http://127.0.0.1:8081`, `http://localhost:8081`).
    #[arg(long, env = "CHAT_DEV")]
    #[serde(default)]
    pub dev: bool,

    /// Whether people who are not signed in (and hold no connection token)
    /// may join rooms. `off` also closes the plain endpoint `/`, whose
    /// clients are anonymous.
    #[arg(long, env = "CHAT_GUESTS", value_enum, default_value = "on")]
    pub guests: Switch,

    /// An account that administers the server: it moderates every room
    /// (repeatable; `chat-server admin grant NAME` makes one durably).
    #[arg(long = "admin", env = "CHAT_ADMINS", value_delimiter = ',')]
    pub admins: Vec<String>,

    /// Accept connection tokens (JWT, HS256) signed with the secret in this
    /// file (at least 32 bytes; a trailing newline is ignored). See
    /// `chat-server token --help` to mint one.
    #[arg(long, env = "CHAT_JWT_HS256_SECRET_FILE", conflicts_with = "jwt_public_key")]
    pub jwt_hs256_secret_file: Option<PathBuf>,

    /// Accept connection tokens signed with the private half of this PEM
    /// public key: RS256 for an RSA key, ES256 for an EC P-256 key.
    #[arg(long, env = "CHAT_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// Require connection tokens to carry this audience (`aud`).
    #[arg(long, env = "CHAT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Require connection tokens to carry this issuer (`iss`).
    #[arg(long, env = "CHAT_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// A site that may show the chat in an iframe, as an origin
    /// (`https://app.example.org`; repeatable; comma-separated in the
    /// environment). Without any, no other site may frame it.
    #[arg(long = "frame-ancestor", env = "CHAT_FRAME_ANCESTORS", value_delimiter = ',')]
    #[serde(default)]
    pub frame_ancestors: Vec<String>,

    /// Largest frame, and largest reassembled message, a peer may send (bytes);
    /// larger ones close the socket with 1009.
    #[arg(long, env = "CHAT_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Messages per second a connection may send, on average (0 = unlimited).
    #[arg(long, env = "CHAT_RATE_LIMIT", default_value_t = 10)]
    pub rate_limit: u32,

    /// Messages a connection may send in a burst above the average rate.
    #[arg(long, env = "CHAT_RATE_BURST", default_value_t = 20)]
    pub rate_burst: u32,

    /// Open sockets allowed in all; more are refused with 503.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Open sockets allowed from one IP address; more are refused with 429.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 200)]
    pub max_connections_per_ip: usize,

    /// Rooms that may have members at once; joining a new room past this is
    /// refused with `room_limit`.
    #[arg(long, env = "CHAT_MAX_ROOMS", default_value_t = 10_000)]
    pub max_rooms: usize,

    /// Bytes that may wait to be written to one client; a client further
    /// behind is closed with 1008.
    #[arg(long, env = "CHAT_OUTBOUND_QUEUE_BYTES", default_value_t = 1024 * 1024)]
    pub outbound_queue_bytes: usize,

    /// Seconds of silence from a peer before the server pings it.
    #[arg(long, env = "CHAT_PING_INTERVAL_SECS", default_value_t = 20)]
    pub ping_interval_secs: u64,

    /// Seconds of silence (no frame, no pong) after which a peer is disconnected;
    /// at least twice the ping interval.
    #[arg(long, env = "CHAT_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Worker threads serving HTTP and sockets (default: one per CPU). Each
    /// runs its own sessions and delivers room events to them.
    #[arg(long, env = "CHAT_WORKERS")]
    pub workers: Option<std::num::NonZeroUsize>,

    /// Log line format; the filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag or environment variable is wrong (clap explains which).
    #[error(transparent)]
    Arguments(#[from] clap::Error),
    /// The config file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The config file is not valid TOML for these settings.
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    /// The settings contradict each other.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Settings for tests and embedding: listen on `bind`, serve the client
    /// from `static_dir`, keep history in `database`; everything else default.
    pub fn new(bind: SocketAddr, static_dir: impl Into<PathBuf>, database: impl Into<StoreLocation>) -> Self {
        let mut config = Self::parse_from(["chat-server"]);
        config.bind = bind;
        config.static_dir = static_dir.into();
        config.database = database.into();
        config
    }

    /// Reads flags and environment, then fills what neither set from the
    /// `--config` file, and checks the result.
    pub fn load_from<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(args)?;
        let mut config = Self::from_arg_matches(&matches)?;
        if let Some(path) = config.config.clone() {
            let file = Self::read_file(&path)?;
            let from_defaults = |id: &str| matches!(matches.value_source(id), None | Some(ValueSource::DefaultValue));
            config.merge_file(&path, file, from_defaults)?;
        }
        config.validate()?;
        Ok(config)
    }

    fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        // Parsed as a whole first, so unknown keys and bad values are reported with the file's name.
        let table: toml::Table = text.parse().map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        Ok(table)
    }

    /// Takes each setting present in `file` unless a flag or variable set it.
    fn merge_file(
        &mut self,
        path: &Path,
        file: toml::Table,
        from_defaults: impl Fn(&str) -> bool,
    ) -> Result<(), ConfigError> {
        let parse_error = |source| ConfigError::Parse { path: path.into(), source };
        let mut merged = toml::Table::try_from(&*self)
            .map_err(|e| ConfigError::Invalid(format!("settings do not serialize: {e}")))?;
        for (key, value) in file {
            // Unknown keys stay in, so deserializing reports them.
            if !merged.contains_key(&key) || from_defaults(&key.replace('-', "_")) {
                merged.insert(key, value);
            }
        }
        let config: Self = merged.try_into().map_err(parse_error)?;
        *self = Self { config: self.config.clone(), ..config };
        Ok(())
    }

    /// Checks rules that span settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ping_interval_secs == 0 || self.ping_interval_secs * 2 > self.idle_timeout_secs {
            return Err(ConfigError::Invalid(format!(
                "the ping interval ({} s) must be positive and at most half the idle timeout ({} s)",
                self.ping_interval_secs, self.idle_timeout_secs
            )));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::Invalid("max-message-bytes must be at least 1024".into()));
        }
        for origin in &self.frame_ancestors {
            if !is_origin(origin) {
                return Err(ConfigError::Invalid(format!(
                    "--frame-ancestor takes an origin like https://app.example.org, not {origin:?}"
                )));
            }
        }
        if self.redis.is_some() && self.database.sqlite_path().is_some() {
            return Err(ConfigError::Invalid(
                "--redis links nodes that share one history: it needs --database postgres://...".into(),
            ));
        }
        Ok(())
    }

    /// The ping interval.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

/// Whether `text` is an origin: `http(s)://host[:port]` with nothing after
/// it (it goes into a CSP header, where anything else would change its meaning).
fn is_origin(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")) else { return false };
    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::load_from(["chat-server"]).expect("defaults parse");
        assert_eq!(config.bind, "127.0.0.1:8080".parse().expect("address"));
        assert_eq!(config.static_dir, PathBuf::from("dist"));
        assert_eq!(config.database, StoreLocation::Sqlite("data/chat.sqlite3".into()));
        assert_eq!(config.max_message_bytes, 65_536);
        assert_eq!((config.rate_limit, config.rate_burst), (10, 20));
        assert_eq!(config.outbound_queue_bytes, 1 << 20);
        assert_eq!(config.log_format, LogFormat::Pretty);
    }

    #[test]
    fn flags_override_defaults() {
        let config = Config::load_from([
            "chat-server",
            "--bind",
            "0.0.0.0:9000",
            "--static-dir",
            "/srv/chat",
            "--database",
            "/var/lib/chat.db",
            "--allowed-origin",
            "https://chat.example.org",
            "--allowed-origin",
            "https://other.example.org",
            "--log-format",
            "json",
        ])
        .expect("flags parse");
        assert_eq!(config.bind.port(), 9000);
        assert_eq!(config.static_dir, PathBuf::from("/srv/chat"));
        assert_eq!(config.database, StoreLocation::Sqlite("/var/lib/chat.db".into()));
        assert_eq!(config.allowed_origins, ["https://chat.example.org", "https://other.example.org"]);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn a_config_file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("chat.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:7000\"\nmax-message-bytes = 2048\nrate-limit = 50\n").expect("write");
        let path = path.to_str().expect("utf-8 path");
        let config =
            Config::load_from(["chat-server", "--config", path, "--rate-limit", "5"]).expect("config file loads");
        assert_eq!(config.bind.port(), 7000, "from the file");
        assert_eq!(config.max_message_bytes, 2048, "from the file");
        assert_eq!(config.rate_limit, 5, "the flag wins");
        assert_eq!(config.idle_timeout_secs, 60, "default where neither says");
    }

    #[test]
    fn frame_ancestors_must_be_plain_origins() {
        let ok = Config::load_from(["chat-server", "--frame-ancestor", "https://app.example.org:8443"]);
        assert!(ok.is_ok());
        for bad in ["app.example.org", "https://a.example/path", "https://a.example; script-src *", "*"] {
            assert!(Config::load_from(["chat-server", "--frame-ancestor", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        assert!(Config::load_from(["chat-server", "--bind", "nowhere"]).is_err());
        let error = Config::load_from(["chat-server", "--ping-interval-secs", "40", "--idle-timeout-secs", "60"])
            .expect_err("ping too slow for the timeout");
        assert!(error.to_string().contains("at most half"), "{error}");

        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "no-such-setting = 1\n").expect("write");
        let error =
            Config::load_from(["chat-server", "--config", path.to_str().expect("path")]).expect_err("unknown key");
        assert!(error.to_string().contains("bad.toml"), "{error}");
    }
}
