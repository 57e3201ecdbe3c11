//! The documented deployment: a real nginx in front, the server told to trust
//! it and which origin browsers use. Browsers chat through it, and 300
//! clients from 300 addresses are not taken for one (the per-address cap is 200).

use std::net::{Ipv4Addr, SocketAddr};

use chat_e2e::from_address::websocket_from;
use chat_e2e::{Artefacts, Chromedriver, Nginx, free_port};

/// Opens `/ws` through nginx from the loopback address `source`; the HTTP status.
async fn open_from(source: Ipv4Addr, nginx: SocketAddr, origin: &str) -> (u16, Option<impl Sized>) {
    match websocket_from(source, nginx, origin, None).await {
        Ok(socket) => (101, Some(socket)),
        Err(status) => (status, None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_chat_through_nginx_and_clients_keep_their_own_addresses() {
    let public = free_port();
    let origin = format!("http://{public}");
    let (server, _data) =
        Artefacts::locate().start_server(&["--trusted-proxy", "127.0.0.1/32", "--public-origin", &origin]).await;
    let nginx = Nginx::start(public, server.address).await;
    let driver = Chromedriver::start().await;

    let alice = driver.user(&nginx.url("/"), "alice").await;
    let bob = driver.user(&nginx.url("/"), "bob").await;
    alice.send_with_enter("hello through nginx").await;
    bob.wait_for_message("alice", "hello through nginx").await;
    bob.send_with_enter("hi back").await;
    alice.wait_for_message("bob", "hi back").await;

    // 300 clients, each from its own loopback address: nginx names each in
    // X-Forwarded-For, so none meets the per-address cap of 200.
    let mut open = Vec::new();
    for n in 0..300_u32 {
        let source = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 1)) + n);
        let (status, socket) = open_from(source, nginx.address, &origin).await;
        assert_eq!(status, 101, "client {n} from {source}");
        open.push(socket);
    }
    // A page of another origin is still refused through the proxy.
    let (status, _) = open_from(Ipv4Addr::new(127, 0, 3, 1), nginx.address, "https://evil.example").await;
    assert_eq!(status, 403);

    alice.close().await;
    bob.close().await;
    server.kill().await;
}
