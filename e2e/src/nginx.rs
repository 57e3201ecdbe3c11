//! A private nginx (from apt) in front of the chat server, as the README's
//! deployment section configures it: its own prefix, config and port on
//! loopback, stopped when dropped (one process, `master_process off`: killing
//! a master left its worker running after every test).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// A running nginx reverse proxy.
pub struct Nginx {
    _child: Child,
    _dir: tempfile::TempDir,
    /// Where browsers connect.
    pub address: SocketAddr,
}

/// A free loopback port, for a server that must be told its address before it starts.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port")
}

impl Nginx {
    /// Starts nginx on `address`, proxying everything (WebSocket upgrades
    /// included) to `upstream` and naming the client in `X-Forwarded-For`.
    pub async fn start(address: SocketAddr, upstream: SocketAddr) -> Self {
        Self::balancing(address, &[upstream]).await
    }

    /// Like [`Nginx::start`], spreading requests and sockets over `nodes`
    /// in turn (a node that refuses connections is skipped). A browser whose
    /// `chat_node` cookie names a node's index (see [`Nginx::PIN_COOKIE`]) is
    /// sent to that node instead, and to the others only while it is down: a
    /// test chooses a browser's node without depending on how many requests
    /// a page load makes.
    pub async fn balancing(address: SocketAddr, nodes: &[SocketAddr]) -> Self {
        let server = |node: &SocketAddr| format!("server {node} max_fails=1 fail_timeout=5s;");
        let servers: String = nodes.iter().map(server).collect::<Vec<_>>().join(" ");
        // One upstream per node: that node first, the others as backups.
        let pinned: String = (0..nodes.len())
            .map(|index| {
                let backups: String = nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != index)
                    .map(|(_, n)| format!("server {n} backup; "))
                    .collect();
                format!("upstream node{index} {{ {} {backups}}}\n    ", server(&nodes[index]))
            })
            .collect();
        let routes: String = (0..nodes.len()).map(|index| format!("\"{index}\" node{index}; ")).collect();
        let dir = tempfile::tempdir().expect("nginx dir");
        let path = |name: &str| -> PathBuf { dir.path().join(name) };
        let config = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {pid};
error_log {log} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream chat {{ {servers} }}
    {pinned}map $cookie_{cookie} $chat_upstream {{ default chat; {routes}}}
    server {{
        listen {address};
        location / {{
            proxy_pass http://$chat_upstream;
            proxy_next_upstream error timeout;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 120s;
        }}
    }}
}}
"#,
            pid = path("nginx.pid").display(),
            log = path("error.log").display(),
            tmp = dir.path().display(),
            cookie = Self::PIN_COOKIE,
        );
        std::fs::write(path("nginx.conf"), config).expect("config written");
        let program = std::env::var("NGINX").unwrap_or_else(|_| "nginx".into());
        let child = Command::new(&program)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(path("nginx.conf"))
            .arg("-e")
            .arg(path("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} starts (apt-get install nginx): {e}"));
        crate::eventually("nginx to listen", || async move { tokio::net::TcpStream::connect(address).await.ok() })
            .await;
        Self { _child: child, _dir: dir, address }
    }

    /// The cookie that pins a browser to one node of [`Nginx::balancing`]: its value is the node's index.
    pub const PIN_COOKIE: &str = "chat_node";

    /// `http://address/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}
