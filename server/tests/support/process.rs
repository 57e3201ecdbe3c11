//! The real `chat-server` binary as a child process, for what only a process
//! shows: signals, `kill -9`, the log.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `chat-server`, killed when dropped.
pub struct ServerProcess {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub address: SocketAddr,
}

impl ServerProcess {
    /// Starts the binary on a free loopback port with no rate limit, no web
    /// client, and `args`; returns once it logs its address.
    pub async fn start<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--bind", "127.0.0.1:0", "--static-dir", "does-not-exist", "--rate-limit", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let address = tokio::time::timeout(super::PATIENCE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(address) = line.split_whitespace().find_map(|w| w.strip_prefix("address=")) {
                    return address.parse().expect("address");
                }
            }
            panic!("exited before listening");
        })
        .await
        .expect("listening in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, address }
    }
}
