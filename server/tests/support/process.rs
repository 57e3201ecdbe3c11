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

/// What a burst sent before its node was killed.
pub struct KilledBurst {
    /// Each message's text, by client id.
    pub texts: std::collections::HashMap<String, String>,
    /// The acks that reached the sender: id by client id.
    pub acked: std::collections::HashMap<String, u64>,
}

impl KilledBurst {
    /// The highest acknowledged id (0 if none).
    pub fn last_acked(&self) -> u64 {
        self.acked.values().copied().max().unwrap_or(0)
    }
}

/// Sends `count` messages from `sender` without waiting, SIGKILLs `node`
/// once `kill_after` acks arrived, then collects the acks that were already
/// on the wire (each was sent after its commit) until the socket goes quiet.
pub async fn burst_then_kill(
    sender: &mut super::JsonClient,
    node: &mut ServerProcess,
    count: usize,
    kill_after: usize,
) -> KilledBurst {
    use chat_shared::ServerMessage;
    use tokio_tungstenite::tungstenite::Message;

    let mut burst = KilledBurst { texts: Default::default(), acked: Default::default() };
    for n in 0..count {
        let text = format!("burst {n}");
        burst.texts.insert(sender.say(&text).await.to_string(), text);
    }
    while burst.acked.len() < kill_after {
        if let ServerMessage::Ack { client_id, id, .. } = sender.next().await {
            burst.acked.insert(client_id.to_string(), id);
        }
    }
    node.child.start_kill().expect("SIGKILL sent");
    let quiet = std::time::Duration::from_secs(2);
    while let Ok(Some(Message::Text(text))) = tokio::time::timeout(quiet, sender.raw().next()).await {
        if let Ok(ServerMessage::Ack { client_id, id, .. }) = ServerMessage::decode(&text) {
            burst.acked.insert(client_id.to_string(), id);
        }
    }
    let _ = node.child.wait().await;
    burst
}
