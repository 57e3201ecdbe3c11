//! The chat server as a child process on a free port.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `chat-server`, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
}

impl ServerProcess {
    /// Starts `bin` on a free port serving `static_dir`, with history in `database`.
    pub async fn start(bin: &Path, static_dir: &Path, database: &Path) -> Self {
        Self::start_with(bin, static_dir, database, SocketAddr::from(([127, 0, 0, 1], 0)), &[]).await
    }

    /// Starts `bin` on `bind`, and waits until it listens.
    pub async fn start_on(bin: &Path, static_dir: &Path, database: &Path, bind: SocketAddr) -> Self {
        Self::start_with(bin, static_dir, database, bind, &[]).await
    }

    /// Like [`ServerProcess::start_on`], with extra flags. The server tells
    /// its address through `--port-file`, written beside the database.
    pub async fn start_with(bin: &Path, static_dir: &Path, database: &Path, bind: SocketAddr, extra: &[&str]) -> Self {
        let mut port_file = database.as_os_str().to_owned();
        port_file.push(".address");
        Self::spawn(bin, static_dir, database.as_os_str(), bind, &std::path::PathBuf::from(port_file), extra).await
    }

    /// A node of several: `bin` on a free port with history at `database`
    /// (a `postgres://` URL), its port file in `state`, plus `extra` flags.
    pub async fn start_node(bin: &Path, static_dir: &Path, database: &str, state: &Path, extra: &[&str]) -> Self {
        static NODES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let port_file =
            state.join(format!("node-{}.address", NODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        Self::spawn(bin, static_dir, database.as_ref(), any_port, &port_file, extra).await
    }

    async fn spawn(
        bin: &Path,
        static_dir: &Path,
        database: &std::ffi::OsStr,
        bind: SocketAddr,
        port_file: &Path,
        extra: &[&str],
    ) -> Self {
        // A server restarted on the same database must not be mistaken for its predecessor.
        let _ = std::fs::remove_file(port_file);
        let mut child = Command::new(bin)
            .args(extra)
            .arg("--bind")
            .arg(bind.to_string())
            .arg("--port-file")
            .arg(port_file)
            .arg("--static-dir")
            .arg(static_dir)
            .arg("--database")
            .arg(database)
            // To debug a failing test: CHAT_E2E_SHOW_LOGS=1, and CHAT_E2E_RUST_LOG for more than `info`.
            .env("RUST_LOG", std::env::var("CHAT_E2E_RUST_LOG").unwrap_or_else(|_| "info".to_owned()))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chat-server starts");
        // Keep draining the log so the server never blocks on a full pipe (shown with CHAT_E2E_SHOW_LOGS).
        let stdout = child.stdout.take().expect("stdout piped");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("CHAT_E2E_SHOW_LOGS").is_some() {
                    eprintln!("SERVER {line}");
                }
            }
        });
        let address = tokio::time::timeout(crate::PATIENCE, async {
            loop {
                if let Ok(text) = std::fs::read_to_string(port_file) {
                    return text.trim().parse::<SocketAddr>().expect("the port file holds an address");
                }
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("chat-server exited before listening: {status}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("chat-server listens in time");
        Self { child, address }
    }

    /// `http://address/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops the server abruptly.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops the server with SIGTERM, as a service manager would, and checks
    /// it exits cleanly within 5 s.
    pub async fn terminate(mut self) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        let status = tokio::time::timeout(std::time::Duration::from_secs(5), self.child.wait())
            .await
            .expect("exits within 5 s of SIGTERM")
            .expect("exit status");
        assert!(status.success(), "clean exit: {status}");
    }
}
