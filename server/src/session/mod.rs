//! One task per connection: it owns the socket, reads the peer's frames,
//! writes what the hub queues for it, pings idle peers, enforces the
//! connection's limits, and leaves the hub when it ends.
//!
//! [`json`] speaks the typed protocol of `/ws`; [`plain`] speaks the seed's
//! echo-to-everyone protocol of `/`. Both run [`drive`], the shared loop.
//!
//! Everything written to the peer goes through the session's byte-bounded
//! outbound queue (replies and history pages too), and every write has a
//! deadline: a peer that stops reading is dropped once its queue is full or a
//! write waits longer than the idle timeout, and its place under the caps and
//! in the open-connections gauge is given back then, without writing what was
//! still queued for it. Only its close frame may wait (up to the deadline)
//! for the peer to read again.

mod close;
mod direct_write;
mod driver;
mod held_name;
pub mod history_pages;
pub mod identity;
pub mod json;
mod live_order;
pub mod plain;
pub mod rate_limit;
mod settings;

pub use settings::SessionSettings;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::{Endpoint, RoomName};
use tracing::Instrument;

use crate::accounts::Accounts;
use crate::admission::ConnectionPermit;
use crate::hub::{ConnectionId, HubHandle, HubStopped, Outbound, SessionSink, WorkerAddress, outbound_queue};
use crate::metrics::EndpointMetrics;
use crate::policy::RoomPolicy;
use crate::presence::{Departure, Presence};
use crate::shutdown::ShutdownSignal;
use crate::store::HistoryStore;
use crate::tokens::TokenVerifier;
use close::going_away;
use driver::drive;

/// Invalid frames tolerated on one connection before it is closed with 1008.
pub const MAX_INVALID_FRAMES: u32 = 20;

/// Pings a peer may send per second on average (each costs a pong), and in a burst.
pub const PINGS_PER_SECOND: u32 = 5;
/// See [`PINGS_PER_SECOND`].
pub const PING_BURST: u32 = 10;
/// Unanswered pings in a row (past the rate) before the connection is closed with 1008.
pub const MAX_EXCESS_PINGS: u32 = 50;

/// Everything a session task needs besides its socket.
pub struct SessionContext {
    /// The hub.
    pub hub: HubHandle,
    /// The relay of the worker thread this session runs on.
    pub worker: WorkerAddress,
    /// The history store.
    pub store: Arc<dyn HistoryStore>,
    /// Who holds which nickname where.
    pub presence: Arc<dyn Presence>,
    /// Limits.
    pub settings: SessionSettings,
    /// This endpoint's counters.
    pub metrics: EndpointMetrics,
    /// Counts rate-limited frames.
    pub rate_limited: prometheus_client::metrics::counter::Counter,
    /// Counts sessions closed for not keeping up with their writes.
    pub slow_closes: prometheus_client::metrics::counter::Counter,
    /// Fires on graceful shutdown.
    pub shutdown: ShutdownSignal,
    /// Our place under the connection caps, held for the session's life.
    pub permit: ConnectionPermit,
    /// The client's address (behind a trusted proxy, the one it forwarded), for logs.
    pub peer: Option<IpAddr>,
    /// Accounts: whose names guests may not take.
    pub accounts: Arc<Accounts>,
    /// Who the socket speaks for (taken by the JSON session).
    pub identity: identity::Identity,
    /// Checks connection tokens (none: the server accepts none).
    pub tokens: Option<Arc<TokenVerifier>>,
    /// Whether guests may join rooms (`--guests`).
    pub guests: bool,
    /// Who may enter which room.
    pub policy: Arc<RoomPolicy>,
}

/// What handling one data frame produced.
pub(crate) enum Handled {
    /// Nothing to write back.
    Nothing,
    /// A reply for this peer only.
    Reply(ByteString),
    /// The frame was invalid: a reply, and a strike against the connection.
    Invalid(ByteString),
}

/// What a handler's background work came to.
pub(crate) enum Background {
    /// A frame to queue for the peer (a history page).
    Frame(Outbound),
    /// The connection's identity lapsed or is about to (a token expiring,
    /// an account signed out everywhere).
    Lapse(identity::Lapse),
    /// The connection's room changed: [`FrameHandler::check_room`] is to
    /// decide whether it may stay (outside the loop's `select!`, so a frame
    /// arriving meanwhile cannot cancel it half done), for whom: the party
    /// whose standing changed, `None` for anyone's.
    RoomChanged(Option<crate::policy::rules::Party>),
}

/// What a protocol does with the data frames of its peer.
pub(crate) trait FrameHandler {
    /// Handles a complete text message.
    async fn on_text(&mut self, text: ByteString) -> Result<Handled, HubStopped>;
    /// Handles a complete binary message.
    async fn on_binary(&mut self, bytes: Bytes) -> Result<Handled, HubStopped>;
    /// Tells the peer a frame was dropped by the rate limit, if the protocol can.
    fn rate_limited(&mut self) -> Option<ByteString>;
    /// What the handler waits for beside the connection loop (history
    /// reads, its identity lapsing); resolves when one is done. Must be
    /// cancel-safe.
    async fn background(&mut self) -> Background {
        std::future::pending().await
    }
    /// Checks again whether the connection may stay in its room after a
    /// change `concerning` one party (`None`: anyone); if not, it leaves
    /// it, and the answer is what to tell the peer.
    async fn check_room(&mut self, _concerning: Option<crate::policy::rules::Party>) -> Option<Outbound> {
        None
    }
    /// The room the hub has this connection in, which it leaves when it
    /// ends, and whether the room is to hear its name leave (see
    /// [`Departure`]); asked once, as it ends.
    async fn departing(&mut self) -> Option<(RoomName, Departure)> {
        None
    }
    /// Called once the connection is over and the hub told to forget it.
    async fn finish(&mut self) {}
}

/// A session's whole life, the same for both protocols: register with the hub,
/// run [`drive`], leave the hub, close the socket with the reason `drive` gave.
/// Registers at once, when called (before the handshake's response is sent:
/// see [`HubHandle::connect`]); the rest is the returned future.
pub(crate) fn serve<H: FrameHandler>(
    mut socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    mut context: SessionContext,
    endpoint: Endpoint,
    handler: impl FnOnce(ConnectionId, &mut SessionContext) -> H,
) -> impl Future<Output = ()> {
    let id = context.hub.next_connection_id(context.worker.id);
    let (sender, mut outbound) = outbound_queue(context.settings.outbound_queue_bytes);
    let replies = sender.replies();
    let shortcut = direct_write::SocketShortcut::new(socket.clone(), context.metrics.clone());
    let sink = SessionSink { queue: sender, direct: Some(Box::new(shortcut)) };
    let registration = context.hub.connect(id, endpoint, sink, &context.worker);
    // Everything this session logs (and what its handler logs) carries these fields.
    let span = tracing::info_span!("session", connection = id, %endpoint, peer = ?context.peer);
    async move {
        tracing::info!("connected");
        context.metrics.open_connections.inc();
        let mut handler = handler(id, &mut context);
        let hub = context.hub.clone();
        let registered = match registration {
            Ok(registration) => registration.finish().await,
            Err(stopped) => Err(stopped),
        };
        let close = match registered {
            Ok(()) => drive(&mut socket, stream, &mut outbound, &replies, &mut handler, &mut context).await,
            Err(HubStopped) => Some(going_away()),
        };

        hub.disconnect(id, endpoint, handler.departing().await, &context.worker).await;
        let SessionContext { metrics, permit, settings, .. } = context;
        tracing::info!(close = ?close.as_ref().map(|c| c.code), "disconnected");
        // The peer may already be gone (or not reading); closing is best effort,
        // and goes out beside the release (which may wait on a presence that
        // does not answer), not after it.
        let closing = tokio::time::timeout(settings.idle_timeout, socket.close(close));
        let releasing = async move {
            // After the hub has it queued: whoever claims the name next joins after we left.
            handler.finish().await;
            drop(handler);
            // The session is over: its place under the caps and in the gauge is
            // free now, not once a peer that stopped reading takes the close frame.
            metrics.open_connections.dec();
            drop(permit);
        };
        let _ = tokio::join!(closing, releasing);
    }
    .instrument(span)
}
