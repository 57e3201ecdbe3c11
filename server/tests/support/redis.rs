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
        // A port found free may be taken before our server binds it (tests
        // run in parallel); then try another, rather than share another
        // test's Redis (whose end would cut this test's connections).
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            let mut redis = Self { port, child: None };
            if redis.try_start().await {
                return Some(redis);
            }
        }
        panic!("no redis-server of this test's own could start");
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

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered, as
    /// when every node is cut off from it.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets it go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let sent = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
            assert!(sent.is_ok_and(|status| status.success()), "kill -{signal} redis-server");
        }
    }

    /// Starts it again on the same port (empty: nothing is saved) and waits until it answers.
    pub async fn start_again(&mut self) {
        assert!(self.try_start().await, "redis-server did not start again on port {}", self.port);
    }

    /// Starts it on its port and waits until it answers; false if another
    /// process holds the port.
    async fn try_start(&mut self) -> bool {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let pid = child.id();
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.child.as_mut().is_some_and(|child| child.try_wait().is_ok_and(|exited| exited.is_some())) {
                self.child = None;
                return false;
            }
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && let Ok(info) = redis::cmd("INFO").arg("server").query_async::<String>(&mut connection).await
            {
                // Answering is not enough: it must be ours.
                if info.lines().any(|line| line.trim() == format!("process_id:{pid}")) {
                    return true;
                }
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

/// The history epoch `app` reports (read by joining its lobby).
pub async fn epoch_of(app: &super::TestApp) -> chat_shared::Epoch {
    let mut client = super::JsonClient::connect(app.address).await;
    client.send_join("lobby", "epoch-reader", None).await;
    match client.next().await {
        chat_shared::ServerMessage::Joined { epoch, .. } => epoch,
        other => panic!("expected joined, got {other:?}"),
    }
}

/// The presence events `client` hears within `wait`, as "nick joined" / "nick left".
pub async fn presence_events(client: &mut super::JsonClient, wait: Duration) -> Vec<String> {
    use chat_shared::ServerMessage;
    let deadline = tokio::time::Instant::now() + wait;
    let mut events = Vec::new();
    while let Ok(message) = tokio::time::timeout_at(deadline, client.next()).await {
        match message {
            ServerMessage::MemberJoined { nick, .. } => events.push(format!("{nick} joined")),
            ServerMessage::MemberLeft { nick, .. } => events.push(format!("{nick} left")),
            _ => {}
        }
    }
    events
}
