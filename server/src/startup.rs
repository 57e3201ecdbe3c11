//! Building and running the application: used by `main` and by the tests.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::hub::HubHandle;
use crate::routes;
use crate::store::sqlite::SqliteStore;
use crate::store::{HistoryStore, StoreError};

/// How long a graceful shutdown waits for open connections.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Binding the listener failed.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// Opening the history store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A bound, ready-to-run chat server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    store: Arc<dyn HistoryStore>,
}

impl Application {
    /// Opens the store, binds the listener (port 0 picks a free one) and wires
    /// the app. Must be called inside a tokio runtime: it starts the hub task.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let store: Arc<dyn HistoryStore> = Arc::new(SqliteStore::open(&config.database).await?);
        let listener = TcpListener::bind(config.bind)?;
        let address = listener.local_addr()?;
        let hub = web::Data::new(HubHandle::spawn(store.clone()));
        let store_data: web::Data<dyn HistoryStore> = web::Data::from(store.clone());
        let static_dir = config.static_dir;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(hub.clone())
                .app_data(store_data.clone())
                .configure(routes::configure(static_dir.clone()))
        })
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen(listener)?
        .run();
        Ok(Self { address, server, store })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until the server is stopped (SIGINT or SIGTERM), then closes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.store.close().await;
        served
    }
}
