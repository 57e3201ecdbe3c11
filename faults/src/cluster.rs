//! The system under test, as child processes this run can kill, pause and
//! restart: several `chat-server` nodes, one Redis, one PostgreSQL database,
//! and between each node and each service a [`Proxy`] the run can cut.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chat_e2e::free_port;
use tokio::process::{Child, Command};

use crate::proxy::Proxy;

/// Runs `kill -SIGNAL pid` (SIGKILL, SIGSTOP, SIGCONT).
async fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().await;
    if !sent.is_ok_and(|status| status.success()) {
        eprintln!("kill -{signal} {pid} failed");
    }
}

/// Waits until something listens on `address`.
async fn listening(address: SocketAddr, what: &str) {
    chat_e2e::eventually(&format!("{what} to listen on {address}"), || async move {
        tokio::net::TcpStream::connect(address).await.ok()
    })
    .await;
}

/// One `chat-server` node, on the same port across restarts.
pub struct Node {
    /// Its index in the cluster, as the report names it.
    pub index: usize,
    /// Where it listens.
    pub address: SocketAddr,
    bin: PathBuf,
    flags: Vec<String>,
    /// Its log (JSON lines, with the record of names held).
    pub log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    /// Starts node `index` on a free port.
    async fn start(index: usize, bin: &Path, flags: Vec<String>, dir: &Path) -> Self {
        let mut node = Self {
            index,
            address: free_port(),
            bin: bin.to_owned(),
            flags,
            log: dir.join(format!("node-{index}.log")),
            child: None,
            paused: false,
        };
        node.spawn().await;
        listening(node.address, &format!("node {index}")).await;
        node
    }

    /// Starts the process (it listens once it has reached its services).
    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("node log opens");
        let child = Command::new(&self.bin)
            .args(&self.flags)
            .arg("--bind")
            .arg(self.address.to_string())
            .args(["--log-format", "json"])
            // The record of names held (claimed, released) is what the checker reads.
            .env("RUST_LOG", "info,chat_server::presence::record=debug")
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.bin.display()));
        self.child = Some(child);
        self.paused = false;
    }

    /// Whether its process has exited (a node that cannot reach its
    /// services at startup gives up, as under a service manager).
    fn exited(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| child.try_wait().is_ok_and(|status| status.is_some()))
    }

    /// Kills it with SIGKILL: no goodbye to anyone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self.paused = false;
    }

    /// Starts it again on the same port, if it is not running, and gives it
    /// a moment to listen (under another fault, such as a partition from its
    /// database, it may not until that is healed).
    pub async fn restart(&mut self) {
        if self.child.is_none() || self.exited() {
            self.spawn().await;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            while tokio::time::Instant::now() < deadline && tokio::net::TcpStream::connect(self.address).await.is_err()
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }

    /// Freezes it (SIGSTOP): its sockets stay open and silent.
    pub async fn pause(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            signal(pid, "STOP").await;
            self.paused = true;
        }
    }

    /// Lets a frozen node go on (SIGCONT).
    pub async fn resume(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id)
            && self.paused
        {
            signal(pid, "CONT").await;
            self.paused = false;
        }
    }

    /// Running, listening and not paused again (every fault healed, it must come up).
    pub async fn heal(&mut self) {
        self.resume().await;
        self.restart().await;
        if self.exited() {
            self.restart().await;
        }
        listening(self.address, &format!("node {}", self.index)).await;
    }
}

/// A private `redis-server` without persistence: a restart comes back empty.
pub struct Redis {
    /// Where it listens.
    pub address: SocketAddr,
    child: Option<Child>,
}

impl Redis {
    async fn start() -> Self {
        let mut redis = Self { address: free_port(), child: None };
        redis.spawn().await;
        redis
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.address.port().to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        self.child = Some(child);
        listening(self.address, "redis").await;
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.address)
    }

    /// Has Redis close every pub/sub connection it has from one of
    /// `ends` (a node's side of its connections); how many it closed.
    pub async fn kill_pubsub_clients(&self, ends: &[SocketAddr]) -> usize {
        let port = self.address.port().to_string();
        let Ok(listed) =
            Command::new("redis-cli").args(["-p", &port, "CLIENT", "LIST", "TYPE", "pubsub"]).output().await
        else {
            return 0;
        };
        let mut killed = 0;
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name)).map(str::to_owned);
            let (Some(id), Some(addr)) = (field("id="), field("addr=")) else { continue };
            if ends.iter().any(|end| end.to_string() == addr) {
                let done = Command::new("redis-cli").args(["-p", &port, "CLIENT", "KILL", "ID", &id]).output().await;
                killed += usize::from(done.is_ok_and(|out| out.status.success()));
            }
        }
        killed
    }

    /// Kills it (everything it held is gone).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again, empty, on the same port.
    pub async fn restart(&mut self) {
        if self.child.is_none() {
            self.spawn().await;
        }
    }
}

/// The database the nodes share, on the PostgreSQL server `scripts/faults`
/// started, which this run restarts through `pg_ctl` (as its owner).
pub struct Postgres {
    /// The nodes' database.
    pub database: String,
    running: bool,
}

impl Postgres {
    /// Creates a fresh database on the server `scripts/faults` started
    /// (`CHAT_TEST_POSTGRES_URL`).
    async fn create() -> Self {
        let database = chat_e2e::fresh_postgres_database("chat_faults")
            .await
            .expect("CHAT_TEST_POSTGRES_URL names a PostgreSQL server (scripts/faults starts one)");
        Self { database, running: true }
    }

    /// Runs `pg_ctl` with `action` on the private server, as its owner.
    async fn pg_ctl(&self, action: &[&str]) {
        let (Ok(pg_ctl), Ok(dir)) = (std::env::var("CHAT_TEST_PG_CTL"), std::env::var("CHAT_TEST_POSTGRES_DIR")) else {
            panic!("CHAT_TEST_PG_CTL and CHAT_TEST_POSTGRES_DIR (set by scripts/faults) say how to restart PostgreSQL");
        };
        let (data, log) = (format!("{dir}/data"), format!("{dir}/server.log"));
        let mut args = vec![pg_ctl.as_str(), "-D", data.as_str(), "-l", log.as_str(), "-w"];
        args.extend(action);
        let user = std::env::var("CHAT_TEST_POSTGRES_USER").unwrap_or_default();
        let mut command = if !user.is_empty() && user != "root" {
            let mut command = Command::new("runuser");
            command.args(["-u", &user, "--"]).args(&args);
            command
        } else {
            let mut command = Command::new(args[0]);
            command.args(&args[1..]);
            command
        };
        let status = command.stdout(Stdio::null()).status().await;
        assert!(status.is_ok_and(|s| s.success()), "pg_ctl {action:?} failed");
    }

    /// Stops the server at once (as a crash would: no checkpoint).
    pub async fn stop(&mut self) {
        if self.running {
            self.pg_ctl(&["-m", "immediate", "stop"]).await;
            self.running = false;
        }
    }

    /// Starts it again.
    pub async fn start(&mut self) {
        if !self.running {
            self.pg_ctl(&["start"]).await;
            self.running = true;
        }
    }

    /// `room`'s deletions and deleted messages: (id, message it deletes, deleted).
    pub async fn deletions(&self, room: &str) -> Vec<(u64, Option<u64>, bool)> {
        let sql = format!(
            "SELECT id, coalesce(deletes, 0), deleted FROM messages \
             WHERE room = '{room}' AND (deletes IS NOT NULL OR deleted) ORDER BY id"
        );
        let output = Command::new("psql").arg(&self.database).args(["-At", "-F", "\t", "-c", &sql]).output().await;
        let output = output.expect("psql runs");
        assert!(output.status.success(), "reading the deletions: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let id = fields.next()?.parse().ok()?;
                let deletes = fields.next()?.parse().ok().filter(|target| *target != 0);
                Some((id, deletes, fields.next()? == "t"))
            })
            .collect()
    }

    /// Every stored message: (room, id, client id).
    pub async fn messages(&self) -> Vec<(String, u64, Option<String>)> {
        let output = Command::new("psql")
            .arg(&self.database)
            .args(["-At", "-F", "\t", "-c", "SELECT room, id, coalesce(client_id, '') FROM messages ORDER BY room, id"])
            .output()
            .await
            .expect("psql runs");
        assert!(output.status.success(), "reading the stored messages: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let room = fields.next()?.to_owned();
                let id = fields.next()?.parse().ok()?;
                let client_id = fields.next().filter(|c| !c.is_empty()).map(str::to_owned);
                Some((room, id, client_id))
            })
            .collect()
    }
}

/// `url` (`scheme://user@host:port/database`) with `host:port` replaced by `through`.
fn via(url: &str, through: SocketAddr) -> String {
    let (head, rest) = url.split_once('@').expect("a user in the database URL");
    let (_, database) = rest.split_once('/').expect("a database in the URL");
    format!("{head}@{through}/{database}")
}

/// Everything under test.
pub struct Cluster {
    /// The server nodes.
    pub nodes: Vec<Node>,
    /// Each node's way to Redis.
    pub redis_proxies: Vec<Proxy>,
    /// Each node's way to PostgreSQL.
    pub postgres_proxies: Vec<Proxy>,
    /// Their Redis.
    pub redis: Redis,
    /// Their history.
    pub postgres: Postgres,
    /// Node logs.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts Redis, a fresh database and `nodes` nodes on them.
    pub async fn start(server: &Path, nodes: usize) -> Self {
        let dir = tempfile::Builder::new().prefix("chat-faults.").tempdir().expect("run dir");
        let redis = Redis::start().await;
        let postgres = Postgres::create().await;
        let postgres_address: SocketAddr = {
            let (_, rest) = postgres.database.split_once('@').expect("a user in the database URL");
            rest.split('/').next().and_then(|host| host.parse().ok()).expect("host:port in the database URL")
        };
        let (mut started, mut redis_proxies, mut postgres_proxies) = (Vec::new(), Vec::new(), Vec::new());
        for index in 0..nodes {
            let (to_redis, to_postgres) = (Proxy::start(redis.address).await, Proxy::start(postgres_address).await);
            let flags = vec![
                "--database".to_owned(),
                via(&postgres.database, to_postgres.address),
                "--redis".to_owned(),
                format!("redis://{}/", to_redis.address),
                "--static-dir".to_owned(),
                dir.path().join("no-static").display().to_string(),
            ];
            started.push(Node::start(index, server, flags, dir.path()).await);
            redis_proxies.push(to_redis);
            postgres_proxies.push(to_postgres);
        }
        Self { nodes: started, redis_proxies, postgres_proxies, redis, postgres, dir }
    }

    /// Every node's address (clients pick among them; a dead one refuses).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|node| node.address).collect()
    }

    /// Undoes every fault: PostgreSQL and Redis up, every node running.
    pub async fn heal(&mut self) {
        for proxy in self.redis_proxies.iter().chain(&self.postgres_proxies) {
            proxy.heal();
        }
        self.postgres.start().await;
        self.redis.restart().await;
        for node in &mut self.nodes {
            node.heal().await;
        }
    }
}
