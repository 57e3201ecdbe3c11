//! The opening handshake over raw TCP: the seed's test vector, and bad
//! handshakes answered with 4xx instead of a crash.

mod support;

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` and returns the response head (up to the blank line).
async fn exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    stream.write_all(request.as_bytes()).await.expect("request written");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(support::PATIENCE, async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await
    .expect("response in time");
    String::from_utf8(head).expect("response head is text")
}

fn status_of(head: &str) -> u16 {
    head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"))
}

fn upgrade_request(method: &str, path: &str, extra: &[&str]) -> String {
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

const SEED_KEY: &str = "Sec-WebSocket-Key: xqBt3ImNzJbYqRINxEFlkg==";
const VERSION_13: &str = "Sec-WebSocket-Version: 13";

#[actix_web::test]
async fn seed_vector_is_accepted_on_both_endpoints() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
    // The seed's request, with its Origin (the page's own server) on our port.
    let origin = format!("Origin: http://localhost:{}", address.port());
    let host = format!("localhost:{}", address.port());
    for path in ["/", "/ws"] {
        let request = upgrade_request("GET", path, &[SEED_KEY, &origin, VERSION_13])
            .replace("Host: localhost\r\n", &format!("Host: {host}\r\n"));
        let head = exchange(address, &request).await;
        assert_eq!(status_of(&head), 101, "{path}: {head}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("upgrade: websocket"), "{head}");
        assert!(lower.contains("connection: upgrade"), "{head}");
        assert!(head.contains("K7DJLdLooIwIG/MOpvWFB3y3FE8="), "{path}: {head}");
    }
}

#[actix_web::test]
async fn missing_key_is_a_client_error() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
    for path in ["/", "/ws"] {
        let status = status_of(&exchange(address, &upgrade_request("GET", path, &[VERSION_13])).await);
        assert!((400..500).contains(&status), "{path}: {status}");
    }
}

#[actix_web::test]
async fn unsupported_version_is_a_client_error() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
    for path in ["/", "/ws"] {
        let request = upgrade_request("GET", path, &[SEED_KEY, "Sec-WebSocket-Version: 8"]);
        let status = status_of(&exchange(address, &request).await);
        assert!((400..500).contains(&status), "{path}: {status}");
    }
}

#[actix_web::test]
async fn wrong_method_is_a_client_error() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
    for path in ["/", "/ws"] {
        let request = upgrade_request("POST", path, &[SEED_KEY, VERSION_13, "Content-Length: 0"]);
        let status = status_of(&exchange(address, &request).await);
        assert!((400..500).contains(&status), "{path}: {status}");
    }
}

#[actix_web::test]
async fn plain_get_of_the_socket_path_is_a_client_error() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
    let status = status_of(&exchange(address, "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n").await);
    assert!((400..500).contains(&status), "{status}");
}

#[actix_web::test]
async fn server_survives_bad_handshakes() {
    let app = support::TestApp::spawn().await;
    let address = app.address;
    for request in [
        upgrade_request("GET", "/ws", &["Sec-WebSocket-Key: \u{1}\u{2}", VERSION_13]),
        upgrade_request("GET", "/ws", &[SEED_KEY, "Sec-WebSocket-Version: thirteen"]),
        "GARBAGE\r\n\r\n".to_owned(),
    ] {
        let _ = exchange(address, &request).await;
    }
    let head = exchange(address, &upgrade_request("GET", "/ws", &[SEED_KEY, VERSION_13])).await;
    assert_eq!(status_of(&head), 101, "{head}");
}

#[actix_web::test]
async fn a_foreign_origin_is_refused_and_a_missing_one_allowed() {
    let app = support::TestApp::spawn().await;
    for path in ["/", "/ws"] {
        let forged = upgrade_request("GET", path, &[SEED_KEY, VERSION_13, "Origin: https://evil.example"]);
        assert_eq!(status_of(&exchange(app.address, &forged).await), 403, "{path}");
        // `trunk serve`'s pages only with --dev (tests/behind_a_proxy.rs).
        let trunk_dev = upgrade_request("GET", path, &[SEED_KEY, VERSION_13, "Origin: http://127.0.0.1:8081"]);
        assert_eq!(status_of(&exchange(app.address, &trunk_dev).await), 403, "{path}");
        let tool = upgrade_request("GET", path, &[SEED_KEY, VERSION_13]);
        assert_eq!(status_of(&exchange(app.address, &tool).await), 101, "{path}");
    }
}
