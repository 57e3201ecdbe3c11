//! Behind a reverse proxy: forwarded client addresses count for the
//! per-address cap only when the TCP peer is a trusted proxy, and the Origin
//! check uses the configured public origin instead of a rewritten `Host`.

mod support;

use std::net::SocketAddr;

use support::TestApp;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error;
use tokio_tungstenite::tungstenite::handshake::client::{Request, generate_key};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/ws` with extra headers: the socket, or the HTTP status it was refused with.
async fn open(address: SocketAddr, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    let mut request = Request::builder()
        .uri(format!("ws://{address}/ws"))
        .header("Host", address.to_string())
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    match tokio_tungstenite::connect_async(request.body(()).expect("request")).await {
        Ok((socket, _)) => Ok(socket),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[actix_web::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    let app = TestApp::spawn_configured(|c| {
        c.max_connections_per_ip = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    // 30 clients behind the proxy, two sockets each: none is capped.
    let mut open_sockets = Vec::new();
    for n in 0..30 {
        let client = format!("198.51.100.{n}");
        for _ in 0..2 {
            let socket = open(app.address, &[("X-Forwarded-For", client.as_str())]).await;
            open_sockets.push(socket.expect("a distinct client is not capped"));
        }
    }
    // A third from one client is, and so is one that forged an earlier hop.
    assert_eq!(open(app.address, &[("X-Forwarded-For", "198.51.100.7")]).await.err(), Some(429));
    assert_eq!(open(app.address, &[("X-Forwarded-For", "203.0.113.1, 198.51.100.7")]).await.err(), Some(429));
    assert_eq!(open(app.address, &[("Forwarded", "for=198.51.100.7")]).await.err(), Some(429));
}

#[actix_web::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let app = TestApp::spawn_configured(|c| c.max_connections_per_ip = 2).await;
    let _first = open(app.address, &[("X-Forwarded-For", "198.51.100.1")]).await.expect("first");
    let _second = open(app.address, &[("X-Forwarded-For", "198.51.100.2")]).await.expect("second");
    assert_eq!(
        open(app.address, &[("X-Forwarded-For", "198.51.100.3")]).await.err(),
        Some(429),
        "a direct peer cannot pose as many clients"
    );
}

#[actix_web::test]
async fn the_public_origin_is_checked_instead_of_a_rewritten_host() {
    let app = TestApp::spawn_configured(|c| c.public_origin = Some("https://chat.example.org".to_owned())).await;
    assert!(open(app.address, &[("Origin", "https://chat.example.org")]).await.is_ok());
    let own = format!("http://{}", app.address);
    assert_eq!(open(app.address, &[("Origin", own.as_str())]).await.err(), Some(403));
    assert_eq!(open(app.address, &[("Origin", "http://localhost:8081")]).await.err(), Some(403), "not in production");

    let dev = TestApp::spawn_configured(|c| c.dev = true).await;
    assert!(open(dev.address, &[("Origin", "http://localhost:8081")]).await.is_ok(), "trunk serve with --dev");
}
