//! Harness for the end-to-end tests: the release `chat-server` serving the
//! release trunk bundle, and headless Chromium sessions driven through
//! chromedriver. `./scripts/test` builds both artefacts before running these.

mod artefacts;
mod browser;
pub mod from_address;
mod nginx;
mod protocol_client;
mod proxy;
mod server;
mod shared_services;

pub use artefacts::{Artefacts, screenshot_dir};
pub use browser::{Browser, Chromedriver, LogLine};
pub use nginx::{Nginx, free_port};
pub use protocol_client::ProtocolClient;
pub use proxy::CuttableProxy;
pub use server::ServerProcess;
pub use shared_services::{RedisServer, fresh_postgres_database};

use std::future::Future;
use std::time::{Duration, Instant};

/// How long to wait for something a user would expect to see promptly.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Polls `probe` until it yields a value, panicking with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
