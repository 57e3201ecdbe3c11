//! Where the built server binary and web bundle are.

use std::path::{Path, PathBuf};

/// The release artefacts under test.
pub struct Artefacts {
    /// The `chat-server` binary.
    pub server_bin: PathBuf,
    /// trunk's output folder.
    pub dist: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Artefacts {
    /// From `CHAT_SERVER_BIN` and `CHAT_DIST`, defaulting to
    /// `target/release/chat-server` and `dist/`; panics with how to build them.
    pub fn locate() -> Self {
        let root = workspace_root();
        let server_bin = std::env::var_os("CHAT_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release/chat-server"));
        let dist = std::env::var_os("CHAT_DIST").map(PathBuf::from).unwrap_or_else(|| root.join("dist"));
        assert!(
            server_bin.is_file() && dist.join("index.html").is_file(),
            "end-to-end tests need the release server ({}) and bundle ({}): run ./scripts/test",
            server_bin.display(),
            dist.display()
        );
        Self { server_bin, dist }
    }

    /// The release server on a free port, serving the bundle, with a fresh
    /// history file in the returned folder (kept alive by the caller), plus `extra` flags.
    pub async fn start_server(&self, extra: &[&str]) -> (crate::ServerProcess, tempfile::TempDir) {
        let data = tempfile::tempdir().expect("data dir");
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let database = data.path().join("chat.sqlite3");
        let server = crate::ServerProcess::start_with(&self.server_bin, &self.dist, &database, any_port, extra).await;
        (server, data)
    }

    /// A copy of the bundle plus the seed-style plain client page, so one
    /// server serves both pages from the same origin.
    pub fn site_with_plain_client(&self) -> tempfile::TempDir {
        let site = tempfile::tempdir().expect("temp dir");
        for entry in std::fs::read_dir(&self.dist).expect("dist readable") {
            let entry = entry.expect("dist entry");
            std::fs::copy(entry.path(), site.path().join(entry.file_name())).expect("bundle copied");
        }
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plain_client.html");
        std::fs::copy(fixture, site.path().join("plain_client.html")).expect("fixture copied");
        site
    }
}

/// Where screenshots for review go: `target/e2e/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = workspace_root().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}
