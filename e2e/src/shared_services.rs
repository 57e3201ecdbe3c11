//! What several nodes share, for the multi-node tests: a fresh database on
//! the private PostgreSQL `./scripts/test` starts (`CHAT_TEST_POSTGRES_URL`),
//! and a private Redis server (`redis-server` on a free loopback port, no
//! persistence), killed when dropped.

use std::process::Stdio;

use tokio::process::{Child, Command};

/// A new, empty database's URL; `None` (the test is skipped, and says so)
/// without a configured PostgreSQL, unless `CHAT_REQUIRE_POSTGRES` is set.
pub async fn fresh_postgres_database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CHAT_REQUIRE_POSTGRES").is_none(),
            "CHAT_REQUIRE_POSTGRES set without CHAT_TEST_POSTGRES_URL"
        );
        eprintln!("skipped: no CHAT_TEST_POSTGRES_URL (./scripts/test starts a private PostgreSQL)");
        return None;
    };
    let database = format!("{name}_{}", std::process::id());
    let created = Command::new("psql")
        .arg(&admin)
        .args(["-q", "-c", &format!("CREATE DATABASE {database}")])
        .stdout(Stdio::null())
        .status()
        .await
        .expect("psql runs (it comes with postgresql)");
    assert!(created.success(), "CREATE DATABASE {database}");
    let server = admin.rsplit_once('/').map_or(admin.as_str(), |(server, _)| server);
    Some(format!("{server}/{database}"))
}

/// A private `redis-server`.
pub struct RedisServer {
    child: Child,
    port: u16,
    /// Its URL.
    pub url: String,
}

impl RedisServer {
    /// Starts one and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = crate::free_port().port();
        Self { child: Self::spawn(port).await, port, url: format!("redis://127.0.0.1:{port}/") }
    }

    /// Kills it (as a crash would) and starts it again on its port, empty.
    pub async fn restart_empty(&mut self) {
        let _ = self.child.kill().await;
        self.child = Self::spawn(self.port).await;
    }

    async fn spawn(port: u16) -> Child {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        // Without persistence there is nothing to load: listening is ready.
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        crate::eventually("redis to listen", || async move { tokio::net::TcpStream::connect(address).await.ok() })
            .await;
        child
    }
}
