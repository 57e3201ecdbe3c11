//! Clients of their own loopback address (127.x.y.z): a WebSocket or an
//! HTTP request sent from it, so a proxy in front of the server (nginx)
//! forwards that address, as it would a real user's. Plain HTTP/1.1 on a
//! socket of its own: the API's answers are small, and no HTTP client here
//! could choose its source address.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::handshake::client::{Request, generate_key};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket opened by [`websocket_from`].
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A TCP connection from `source` to `to`.
pub async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((source, 0))).expect("bound to the source address");
    socket.connect(to).await.expect("connects")
}

/// Opens `/ws` at `to` from `source`, as a page of `origin` (with the
/// browser's `cookie`, if any): the socket, or the HTTP status it was refused with.
pub async fn websocket_from(
    source: Ipv4Addr,
    to: SocketAddr,
    origin: &str,
    cookie: Option<&str>,
) -> Result<Socket, u16> {
    let stream = connect_from(source, to).await;
    let mut request = Request::builder()
        .uri(format!("ws://{to}/ws"))
        .header("Host", to.to_string())
        .header("Origin", origin)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key());
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    match tokio_tungstenite::client_async(request.body(()).expect("request"), MaybeTlsStream::Plain(stream)).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

/// An HTTP answer: its status, the session cookie it set (`name=value`),
/// and its body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The first `Set-Cookie`, as `name=value`.
    pub cookie: Option<String>,
    /// The body (de-chunked).
    pub body: String,
}

/// Sends `method path` with a JSON `body` to `to` from `source`, as a page
/// of `origin` with `cookie`; reads the whole answer.
pub async fn http_from(
    source: Ipv4Addr,
    to: SocketAddr,
    method: &str,
    path: &str,
    origin: &str,
    cookie: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut stream = connect_from(source, to).await;
    let body = body.unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {to}\r\nOrigin: {origin}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("request sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("answer read");
    let raw = String::from_utf8_lossy(&raw);
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status");
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    let cookie = header("set-cookie").and_then(|value| value.split(';').next().map(str::to_owned));
    let chunked = header("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    Answer { status, cookie, body }
}

/// The body of a chunked transfer.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}
