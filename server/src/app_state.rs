//! What every request handler can reach: built by `startup`, read by `routes`.

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::accounts::revocations::Revocations;
use crate::accounts::signed_out_relay::SignedOutRelay;
use crate::admission::{ConnectionLimiter, OriginPolicy};
use crate::bus::redis::BusHealth;
use crate::client_address::TrustedProxies;
use crate::hub::HubHandle;
use crate::metrics::Metrics;
use crate::policy::RoomPolicy;
use crate::presence::Presence;
use crate::session::SessionSettings;
use crate::shutdown::ShutdownSignal;
use crate::store::HistoryStore;
use crate::tokens::TokenVerifier;
use tokio_util::task::TaskTracker;

/// What every request handler can reach.
pub struct AppState {
    /// The hub.
    pub hub: HubHandle,
    /// The history store (instrumented).
    pub store: Arc<dyn HistoryStore>,
    /// Who holds which nickname where.
    pub presence: Arc<dyn Presence>,
    /// Whether the Redis bus is connected (none: a single node).
    pub bus_health: Option<BusHealth>,
    /// Per-session limits.
    pub settings: SessionSettings,
    /// Metrics.
    pub metrics: Metrics,
    /// Which origins may open sockets.
    pub origins: OriginPolicy,
    /// Whose forwarding headers name the client.
    pub proxies: TrustedProxies,
    /// Connection caps.
    pub limiter: Arc<ConnectionLimiter>,
    /// Fires on graceful shutdown.
    pub shutdown: ShutdownSignal,
    /// Every session task, so shutdown can wait for them to finish.
    pub sessions: TaskTracker,
    /// Accounts and their sessions.
    pub accounts: Arc<Accounts>,
    /// Signed-in sockets of this node, by account, for signing out everywhere.
    pub revocations: Arc<Revocations>,
    /// Tells the other nodes of accounts signed out everywhere (several nodes).
    pub signed_out_relay: Option<SignedOutRelay>,
    /// Whether the session cookie is `Secure` (the public origin is https).
    pub secure_cookies: bool,
    /// Checks connection tokens (none: the server accepts none).
    pub tokens: Option<Arc<TokenVerifier>>,
    /// Whether guests may join rooms (`--guests`).
    pub guests: bool,
    /// Created rooms and who may enter them.
    pub policy: Arc<RoomPolicy>,
    /// The origin the server is reached at (`--public-origin`), for the links it hands out.
    pub public_origin: Option<String>,
}
