//! Building and running the application: used by `main` and by the tests.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::hub::HubHandle;
use crate::routes;

/// How long a graceful shutdown waits for open connections.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// A bound, ready-to-run chat server.
pub struct Application {
    address: SocketAddr,
    server: Server,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and wires the app. Must be
    /// called inside a tokio runtime: it starts the hub task.
    pub fn build(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.bind)?;
        let address = listener.local_addr()?;
        let hub = web::Data::new(HubHandle::spawn());
        let static_dir = config.static_dir;
        let server =
            HttpServer::new(move || App::new().app_data(hub.clone()).configure(routes::configure(static_dir.clone())))
                .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
                .listen(listener)?
                .run();
        Ok(Self { address, server })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until the server is stopped (SIGINT or SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
