//! A private Redis server per test (`redis-server` on a free loopback port,
//! no persistence), which the test may stop and start again. `./scripts/test`
//! makes sure `redis-server` is installed and sets `CHAT_REQUIRE_REDIS`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of this test's own; killed when dropped.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one; `None` (the test is skipped, and says so) when
    /// `redis-server` is missing, unless `CHAT_REQUIRE_REDIS` is set: then
    /// its absence fails the test.
    pub async fn start() -> Option<Self> {
        let found = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !found {
            assert!(
                std::env::var_os("CHAT_REQUIRE_REDIS").is_none(),
                "CHAT_REQUIRE_REDIS is set but redis-server is missing"
            );
            eprintln!("skipped: no redis-server (./scripts/test installs it)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut redis = Self { port, child: None };
        redis.start_again().await;
        Some(redis)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it at once (as a crash would): every connection breaks.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing is saved) and waits until it answers.
    pub async fn start_again(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// PostgreSQL and Redis for a test of several nodes, or `None` if it is skipped.
pub async fn services() -> Option<(String, PrivateRedis)> {
    let database = super::postgres::fresh_database().await?;
    let redis = PrivateRedis::start().await?;
    Some((database, redis))
}

/// A node on `database`, linked to the others through `redis`.
pub async fn node(database: &str, redis: &PrivateRedis) -> super::TestApp {
    let (database, redis) = (database.to_owned(), redis.url());
    super::TestApp::spawn_configured(move |config| {
        config.database = chat_server::store::location::StoreLocation::Postgres(database);
        config.redis = Some(redis.parse().expect("redis url"));
    })
    .await
}
