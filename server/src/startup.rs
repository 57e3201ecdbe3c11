//! Building and running the application: used by `main` and by the tests.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::accounts::attempts::{AttemptLimits, SharedCounts};
use crate::accounts::postgres::PostgresAccounts;
use crate::accounts::revocations::Revocations;
use crate::accounts::signed_out_relay::SignedOutRelay;
use crate::accounts::sqlite::SqliteAccounts;
use crate::accounts::store::AccountStore;
use crate::accounts::{self, Accounts};
use crate::admission::{ConnectionLimiter, OriginPolicy};
use crate::app_state::AppState;
use crate::bus::redis::{BusHealth, exchange_counts, random_node_id};
use crate::bus::{InProcessBus, RedisBus, RoomBus};
use crate::client_address::TrustedProxies;
use crate::config::Config;
use crate::hub::{HubHandle, HubSettings, HubTasks, OtherNodes};
use crate::metrics::Metrics;
use crate::policy::RoomPolicy;
use crate::policy::slow_mode::SlowModeGate;
use crate::policy::sql::{PostgresRooms, SqliteRooms};
use crate::policy::store::RoomStore;
use crate::presence::{InProcessPresence, LostName, Presence, RedisPresence};
use crate::routes;
use crate::routes::static_files::StaticBundle;
use crate::session::SessionSettings;
use crate::shutdown::{self, ShutdownTrigger};
use crate::store::instrumented::InstrumentedStore;
use crate::store::latest_page_cache::LatestPageCache;
use crate::store::location::StoreLocation;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{HistoryStore, StoreError};
use crate::tcp_options;
use crate::tokens::TokenVerifier;
use crate::tokens::verifier::KeyError;

/// How long each step of a graceful shutdown may take: sessions closing
/// their sockets, then HTTP connections, then the hub committing what it holds.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Binding the listener failed.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// Opening the history store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Starting the hub's threads failed.
    #[error("cannot start the hub: {0}")]
    Hub(std::io::Error),
    /// The Redis URL is not usable.
    #[error("invalid redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    /// The connection token key is not usable.
    #[error("connection tokens: {0}")]
    TokenKey(#[from] KeyError),
}

/// What the hub and the sessions rely on: where history is kept, how room
/// events travel, who holds which nickname. The one place that picks their
/// implementations (one process: a SQLite file, in-process bus and presence;
/// several nodes: PostgreSQL and a Redis bus).
struct Services {
    store: Arc<dyn HistoryStore>,
    /// Accounts and sessions, in the history's database.
    accounts: Arc<dyn AccountStore>,
    /// Created rooms, members, invites: there too.
    rooms: Arc<dyn RoomStore>,
    /// One per hub shard.
    buses: Vec<Box<dyn RoomBus>>,
    /// Whether the Redis buses are connected, if there are any.
    bus_health: Option<BusHealth>,
    presence: Arc<dyn Presence>,
    /// The other nodes' member counts, with several nodes.
    other_nodes: Option<OtherNodes>,
    /// Names presence found taken from this node's connections, with several nodes.
    lost_names: Option<mpsc::UnboundedReceiver<LostName>>,
    /// Redis, with several nodes (sign-outs travel through it).
    redis: Option<redis::Client>,
}

impl Services {
    async fn connect(config: &Config, metrics: &Metrics, shards: usize) -> Result<Self, StartupError> {
        let Stores { store, accounts, rooms } = open_store(&config.database, config.durability, metrics).await?;
        let Some(url) = &config.redis else {
            let buses = (0..shards).map(|_| Box::new(InProcessBus::default()) as Box<dyn RoomBus>).collect();
            let presence = Arc::new(InProcessPresence::default());
            return Ok(Self {
                store,
                accounts,
                rooms,
                buses,
                bus_health: None,
                presence,
                other_nodes: None,
                lost_names: None,
                redis: None,
            });
        };
        let node = random_node_id();
        tracing::info!(redis = %url, node, "room events and presence go through redis");
        let client = url.client()?;
        let (buses, health) = RedisBus::for_shards(&client, &store, node, shards, metrics);
        // A node of a history in use that starts after Redis lost its data
        // must not take it for a new one: others may hold names it lost.
        let in_use = store.has_messages().await.unwrap_or(true);
        let presence = RedisPresence::start(client.clone(), store.epoch(), node, in_use)?;
        // Before the port opens: a new history's first claims wait for a beat.
        if let Err(error) = presence.first_beat().await {
            tracing::warn!(%error, "presence is unavailable for now; joins wait for it");
        }
        let lost_names = presence.lost_names();
        let other_nodes = Some(exchange_counts(client.clone(), store.epoch(), node)?);
        let buses = buses.into_iter().map(|bus| Box::new(bus) as Box<dyn RoomBus>).collect();
        let redis = Some(client);
        Ok(Self { store, accounts, rooms, buses, bus_health: Some(health), presence, other_nodes, lost_names, redis })
    }
}

/// The history and what is kept beside it, in one database.
pub(crate) struct Stores {
    /// The history.
    pub(crate) store: Arc<dyn HistoryStore>,
    /// Accounts and sessions.
    pub(crate) accounts: Arc<dyn AccountStore>,
    /// Created rooms, members, invites, bans, the audit log.
    pub(crate) rooms: Arc<dyn RoomStore>,
}

/// Opens the history store at `location` (bringing the schema up to date)
/// and the accounts and rooms kept beside it (on a pool of their own).
pub(crate) async fn open_store(
    location: &StoreLocation,
    durability: crate::store::sqlite::Durability,
    metrics: &Metrics,
) -> Result<Stores, StoreError> {
    Ok(match location {
        StoreLocation::Sqlite(path) => {
            let sqlite = Arc::new(SqliteStore::open_with(path, durability).await?);
            let accounts = SqliteAccounts::open(path).await?;
            let rooms = Arc::new(SqliteRooms::new(accounts.pool()));
            // This process is the file's only writer, so the newest pages can be
            // kept in memory (in front: its hits are no database reads, not timed as ones).
            let store = Arc::new(LatestPageCache::new(Arc::new(InstrumentedStore::new(sqlite, metrics.clone()))));
            Stores { store, accounts: Arc::new(accounts), rooms }
        }
        // Other nodes may write to it: every page is read from the database.
        StoreLocation::Postgres(url) => {
            let postgres = Arc::new(PostgresStore::open(url).await?);
            let accounts = PostgresAccounts::connect(url).await?;
            let rooms = Arc::new(PostgresRooms::new(accounts.pool()));
            Stores {
                store: Arc::new(InstrumentedStore::new(postgres, metrics.clone())),
                accounts: Arc::new(accounts),
                rooms,
            }
        }
    })
}

/// Closes the connections whose names presence gave to others, until the hub stops.
async fn close_lost_names(mut lost_names: mpsc::UnboundedReceiver<LostName>, hub: HubHandle) {
    while let Some(LostName { room, connection }) = lost_names.recv().await {
        tracing::warn!(%room, connection, "a nickname held here was taken while presence was lost; closing its connection");
        if hub.name_lost(connection, room).await.is_err() {
            return;
        }
    }
}

/// The checker of connection tokens the settings ask for, if any.
fn token_verifier(config: &Config) -> Result<Option<TokenVerifier>, StartupError> {
    let verifier = match (&config.jwt_hs256_secret_file, &config.jwt_public_key) {
        (Some(secret), _) => TokenVerifier::hs256_from_file(secret)?,
        (None, Some(public_key)) => TokenVerifier::public_key_from_file(public_key)?,
        (None, None) => return Ok(None),
    };
    let verifier = match &config.jwt_audience {
        Some(audience) => verifier.with_audience(audience),
        None => verifier,
    };
    Ok(Some(match &config.jwt_issuer {
        Some(issuer) => verifier.with_issuer(issuer),
        None => verifier,
    }))
}

/// A bound, ready-to-run chat server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    store: Arc<dyn HistoryStore>,
    /// Closed before the history (see [`AccountStore::close`]).
    account_store: Arc<dyn AccountStore>,
    trigger: ShutdownTrigger,
    sessions: TaskTracker,
    hub: HubTasks,
}

impl Application {
    /// Opens the store, binds the listener (port 0 picks a free one) and wires
    /// the app. Starts the hub's threads, one shard per worker.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let metrics = Metrics::new();
        let workers = config.workers.map_or_else(default_workers, std::num::NonZeroUsize::get);
        let Services { store, accounts, rooms, buses, bus_health, presence, other_nodes, lost_names, redis } =
            Services::connect(&config, &metrics, workers).await?;
        let slow_mode = match &redis {
            Some(client) => SlowModeGate::shared(client.clone(), store.epoch())?,
            None => SlowModeGate::local(),
        };
        let reads = metrics.standing_reads.clone();
        let policy = Arc::new(RoomPolicy::new(rooms, redis.is_none(), slow_mode, &config.admins, reads).await);
        if let Some(client) = &redis {
            policy.relay_through(client.clone(), store.epoch());
        }
        // Compressing the bundle takes a moment and transient memory: done before
        // the port opens, so nothing sees a half-started server.
        let private = config.database.sqlite_path().map(SqliteStore::files).unwrap_or_default();
        let bundle = web::Data::from(StaticBundle::load(&config.static_dir, &private, &config.frame_ancestors));
        let listener = TcpListener::bind(config.bind)?;
        let address = listener.local_addr()?;
        let (trigger, signal) = shutdown::channel();
        // One process loses no presence events: only joins are checked there.
        let check_members_every = config.redis.as_ref().map(|_| Duration::from_secs(config.check_members_secs));
        let settings = HubSettings {
            max_rooms: config.max_rooms,
            workers,
            other_nodes,
            presence: presence.clone(),
            check_members_every,
            held: metrics.held.clone(),
            unlisted: {
                let policy = policy.clone();
                Arc::new(move |room: &chat_shared::RoomName| policy.is_private(room))
            },
        };
        let (hub_handle, hub) = HubHandle::spawn(store.clone(), buses, settings).map_err(StartupError::Hub)?;
        if let Some(lost_names) = lost_names {
            tokio::spawn(close_lost_names(lost_names, hub_handle.clone()));
        }
        // Half the cores hash passwords at most: the chat keeps the rest.
        let account_store = accounts.clone();
        // With several nodes, guesses are counted by all of them together.
        let limits = match &redis {
            Some(client) => AttemptLimits::shared(SharedCounts::new(client.clone(), store.epoch())?),
            None => AttemptLimits::default(),
        };
        let accounts = Arc::new(Accounts::new(accounts, workers.div_ceil(2), limits));
        let revocations = Arc::new(Revocations::default());
        let signed_out_relay = redis.map(|client| SignedOutRelay::start(client, store.epoch(), revocations.clone()));
        let sweep_every = Duration::from_secs(config.session_sweep_secs);
        tokio::spawn(accounts::sweep::run(accounts.clone(), revocations.clone(), sweep_every));
        let tokens = token_verifier(&config)?.map(Arc::new);
        let sessions = TaskTracker::new();
        // A session's writes wait at most its idle timeout; so may the kernel's.
        let write_deadline = config.idle_timeout();
        let (relay_hub, slow_closes) = (hub_handle.clone(), metrics.slow_consumer_closes.clone());
        let state = web::Data::new(AppState {
            hub: hub_handle,
            store: store.clone(),
            presence,
            bus_health,
            settings: SessionSettings::from_config(&config),
            metrics,
            origins: OriginPolicy::new(config.public_origin.as_deref(), &config.allowed_origins, config.dev),
            proxies: TrustedProxies::new(&config.trusted_proxies),
            limiter: ConnectionLimiter::new(config.max_connections, config.max_connections_per_ip),
            shutdown: signal,
            sessions: sessions.clone(),
            accounts,
            revocations,
            signed_out_relay,
            secure_cookies: config.public_origin.as_deref().is_some_and(|origin| origin.starts_with("https://")),
            tokens,
            guests: config.guests.is_on(),
            policy,
            public_origin: config.public_origin.clone(),
        });
        let server = HttpServer::new(move || {
            // Called once per worker thread: each worker gets its own relay.
            let worker = web::Data::new(relay_hub.worker_link(slow_closes.clone()));
            App::new().app_data(state.clone()).app_data(bundle.clone()).app_data(worker).configure(routes::configure)
        })
        .on_connect(move |connection, _| tcp_options::apply(connection, write_deadline))
        .workers(workers)
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
        // We handle SIGINT/SIGTERM ourselves, to close sockets with 1001 first.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self { address, server, store, account_store, trigger, sessions, hub })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A trigger that shuts the server down gracefully, as SIGTERM does.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Serves until SIGINT, SIGTERM or the shutdown trigger; then shuts down
    /// in order, each step once the one before has finished (or timed out):
    /// every session closes its socket with 1001 and leaves the hub; the HTTP
    /// server stops; the hub, whose last handles went with the server, hands
    /// its last batch to the store; the accounts' connections close, then the
    /// store commits and closes.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let trigger = self.trigger.clone();
        let mut fired = self.trigger.subscribe();
        let sessions = self.sessions.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = wait_for_signal() => tracing::info!("shutting down"),
                () = fired.fired() => tracing::info!("shutdown requested"),
            }
            trigger.fire();
            sessions.close();
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, sessions.wait()).await.is_err() {
                tracing::warn!(open = sessions.len(), "sessions still open at shutdown");
            }
            handle.stop(true).await;
        });
        let served = self.server.await;
        if !self.hub.finished(SHUTDOWN_TIMEOUT).await {
            tracing::warn!("the hub did not finish in time");
        }
        self.account_store.close().await;
        self.store.close().await;
        tracing::info!("stopped");
        served
    }
}

/// Writes `address` to `path` for scripts to read: to a file beside it
/// first, then renamed, so a reader never sees half of it.
pub fn write_address_file(path: &std::path::Path, address: SocketAddr) -> std::io::Result<()> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".partial");
    std::fs::write(&aside, format!("{address}\n"))?;
    std::fs::rename(&aside, path)
}

/// One worker per CPU, as actix-web does by default.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
