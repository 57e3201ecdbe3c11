//! The TCP options every accepted connection gets, and why.
//!
//! - `TCP_NODELAY`: chat frames are small and latency-bound; without it,
//!   Nagle's algorithm and delayed ACKs hold them back for up to 40 ms.
//! - `TCP_USER_TIMEOUT` (Linux), set to the write deadline: a peer that stops
//!   reading closes its TCP window, and a session that gives up on it ends at
//!   once, but actix-http goes on trying to flush what it already buffered for
//!   as long as the peer answers window probes, which is forever. The kernel
//!   then aborts the connection once its window has stayed shut (or its data
//!   unacknowledged) for the deadline, so the socket, its send buffer and its
//!   file descriptor are given back too, not only the session's place under
//!   the caps. A live peer that reads is not affected. Not covered: a peer
//!   that sends more often than the kernel's first window probe (200 ms):
//!   each segment re-arms the probe, which then never fires, and the user
//!   timeout never counts.

use std::any::Any;
use std::time::Duration;

use actix_web::rt::net::TcpStream;

/// Sets the options on `connection` (what actix-web's `on_connect` hands
/// over); other kinds of stream are left alone. Failures are logged: the
/// connection still works without them.
pub fn apply(connection: &dyn Any, write_deadline: Duration) {
    let Some(tcp) = connection.downcast_ref::<TcpStream>() else { return };
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    #[cfg(target_os = "linux")]
    if let Err(error) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(write_deadline)) {
        tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = write_deadline;
}
