//! A TCP proxy between one node and one service (Redis or PostgreSQL): the
//! nemesis's hand on the network.
//!
//! A *partition* stops everything passing, both ways, until healed, with the
//! connections left open: as when a network drops packets (TCP holds what
//! was sent, and it arrives after, if nobody gave up meanwhile). In front of
//! PostgreSQL it can also *lose a commit's reply*: it passes the commit to
//! the server, then breaks the node's connection before the node hears
//! `COMMIT` back, so the node does not know its batch was stored.
//! It also remembers its own address on each upstream connection, which is
//! how Redis names the node's clients (to kill one of them).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A `CommandComplete` message with the tag `COMMIT`, as PostgreSQL sends it:
/// `C`, the length (4 + 7), `COMMIT` and its terminating zero.
const COMMIT_COMPLETE: &[u8] = b"C\0\0\0\x0bCOMMIT\0";

/// What the nemesis controls, shared by every connection of the proxy.
#[derive(Debug)]
struct Control {
    /// True while partitioned.
    partitioned: watch::Sender<bool>,
    /// Lose the reply of the next commit.
    lose_commit_reply: AtomicBool,
    /// Commit replies lost so far.
    commit_replies_lost: AtomicUsize,
    /// This proxy's end of each upstream connection open now.
    upstream_ends: Mutex<Vec<SocketAddr>>,
}

/// A proxy to one upstream service.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// Where the node connects.
    pub address: SocketAddr,
    control: Arc<Control>,
}

impl Proxy {
    /// Listens on a free port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the proxy binds");
        let address = listener.local_addr().expect("its address");
        let control = Arc::new(Control {
            partitioned: watch::channel(false).0,
            lose_commit_reply: AtomicBool::new(false),
            commit_replies_lost: AtomicUsize::new(0),
            upstream_ends: Mutex::default(),
        });
        let accepting = control.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, accepting.clone()));
            }
        });
        Self { address, control }
    }

    /// Cuts the node off from the service until [`Proxy::heal`].
    pub fn partition(&self) {
        self.control.partitioned.send_replace(true);
    }

    /// Lets traffic pass again, and stops waiting to lose a commit's reply.
    pub fn heal(&self) {
        self.reconnect();
        self.disarm();
    }

    /// Ends a partition.
    pub fn reconnect(&self) {
        self.control.partitioned.send_replace(false);
    }

    /// Stops waiting to lose a commit's reply.
    pub fn disarm(&self) {
        self.control.lose_commit_reply.store(false, Ordering::Relaxed);
    }

    /// Loses the reply of the next commit that passes (PostgreSQL only).
    pub fn lose_next_commit_reply(&self) {
        self.control.lose_commit_reply.store(true, Ordering::Relaxed);
    }

    /// How many commit replies it lost.
    pub fn commit_replies_lost(&self) -> usize {
        self.control.commit_replies_lost.load(Ordering::Relaxed)
    }

    /// Its own address on each upstream connection open now (how the service sees the node).
    pub fn upstream_ends(&self) -> Vec<SocketAddr> {
        self.control.upstream_ends.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Forwards one connection both ways until either side closes (or a
/// commit's reply is lost: then both are closed).
async fn relay(client: TcpStream, upstream: SocketAddr, control: Arc<Control>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let end = server.local_addr().ok();
    if let Some(end) = end {
        control.upstream_ends.lock().unwrap_or_else(PoisonError::into_inner).push(end);
    }
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    tokio::select! {
        () = pump(from_client, to_server, &control, false) => {}
        () = pump(from_server, to_client, &control, true) => {}
    }
    if let Some(end) = end {
        control.upstream_ends.lock().unwrap_or_else(PoisonError::into_inner).retain(|open| *open != end);
    }
}

/// Copies `from` to `to`, holding everything while partitioned. On the
/// server's side (`replies`), drops the connection instead of passing a
/// commit's reply when one is to be lost.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, control: &Control, replies: bool) {
    let mut partitioned = control.partitioned.subscribe();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        if partitioned.wait_for(|cut| !cut).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        if replies
            && control.lose_commit_reply.load(Ordering::Relaxed)
            && chunk.windows(COMMIT_COMPLETE.len()).any(|window| window == COMMIT_COMPLETE)
            && control.lose_commit_reply.swap(false, Ordering::Relaxed)
        {
            control.commit_replies_lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // What was read before a partition began waits until it ends.
        if partitioned.wait_for(|cut| !cut).await.is_err() || to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
