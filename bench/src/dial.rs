//! Opening a client's TCP connection and WebSocket.
//!
//! Tens of thousands of connections from one address to one server port
//! exhaust the kernel's easy ephemeral ports: past about 15,000, every
//! `connect` searched the port range for a free one, and the load tool spent
//! most of its time (and half the machine's) in that search
//! (`__inet_hash_connect`), slowing the very storm it meant to measure. So
//! clients of a server on a 127.x.x.x address come from many loopback
//! addresses (127.0.1.1 to 127.0.1.250), a few hundred connections each.
//!
//! Also what every client of the load tool says: joining (JSON) and the
//! stamped messages publishers send.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use chat_shared::{ClientId, ClientMessage, Endpoint, MessageText, Nickname, RoomName};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::COOKIE;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected client socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Its write half.
pub type Sink = SplitSink<Socket, Message>;
/// Its read half.
pub type Stream = SplitStream<Socket>;

/// Loopback source addresses clients are spread over.
const SOURCE_ADDRESSES: usize = 250;

/// The source address of client `index` when the server is at `server`
/// (`None`: let the kernel choose, for servers off loopback or on IPv6).
pub fn source_for(server: IpAddr, index: usize) -> Option<IpAddr> {
    match server {
        IpAddr::V4(v4) if v4.is_loopback() => {
            // 1..=250: a valid host byte.
            let host = u8::try_from(index % SOURCE_ADDRESSES + 1).unwrap_or(1);
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 1, host)))
        }
        _ => None,
    }
}

/// Session tokens of signed-in clients, by client index (`--sessions`; see
/// the `chat-seed-accounts` tool): client `i` sends the `i`th as its
/// `chat_session` cookie, and speaks as that account. Set once, at start.
static SESSIONS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Makes clients sign in with `tokens` (one per client, by index).
pub fn use_sessions(tokens: Vec<String>) {
    let _ = SESSIONS.set(tokens);
}

/// Client `index`'s upgrade request: with its session cookie, if there are sessions.
fn upgrade_request(url: &str, index: usize) -> Result<Request, String> {
    let mut request = url.into_client_request().map_err(|e| format!("{url}: {e}"))?;
    if let Some(sessions) = SESSIONS.get() {
        let token = sessions.get(index).ok_or_else(|| format!("no session for client {index} (--sessions)"))?;
        let cookie = HeaderValue::from_str(&format!("chat_session={token}")).map_err(|e| e.to_string())?;
        request.headers_mut().insert(COOKIE, cookie);
    }
    Ok(request)
}

/// Opens client `index`'s WebSocket to `url` (small buffers: tens of
/// thousands of clients share this process).
pub async fn open(url: &str, index: usize) -> Result<Socket, String> {
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let request = upgrade_request(url, index)?;
    let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let server = host.parse::<IpAddr>().ok().zip(uri.port_u16().or(Some(80)));
    let Some((ip, port)) = server.filter(|(ip, _)| source_for(*ip, index).is_some()) else {
        // A name or a non-loopback address: the usual way.
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(socket);
    };
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(source) = source_for(ip, index) {
        socket.bind(SocketAddr::new(source, 0)).map_err(|e| format!("bind {source}: {e}"))?;
    }
    let stream = socket.connect(SocketAddr::new(ip, port)).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (socket, _) = tokio_tungstenite::client_async_with_config(request, MaybeTlsStream::Plain(stream), Some(config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// The `type` of a JSON event, read from its first field (every server
/// event starts with it), without parsing the rest.
pub fn event_type(frame: &str) -> &str {
    frame.strip_prefix("{\"type\":\"").and_then(|rest| rest.split('"').next()).unwrap_or("other")
}

/// Opens client `index`; for JSON, joins `room` (no resume: the latest page)
/// and returns once its history has arrived, telling `on_frame` the type of
/// every other event that came first.
pub async fn join(
    url: &str,
    protocol: Endpoint,
    room: &str,
    index: usize,
    mut on_frame: impl FnMut(&str),
) -> Result<(Sink, Stream), String> {
    let (mut sink, mut stream) = open(url, index).await?.split();
    if protocol == Endpoint::Json {
        let join = ClientMessage::Join {
            room: RoomName::parse(room).map_err(|e| e.to_string())?,
            nick: Nickname::parse(format!("load-{index}")).map_err(|e| e.to_string())?,
            tab: ClientId::parse(format!("load{index}")).map_err(|e| e.to_string())?,
            after: None,
            epoch: None,
        };
        sink.send(Message::text(join.encode())).await.map_err(|e| e.to_string())?;
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => match event_type(&text) {
                    "history" => break,
                    "error" => return Err(text.to_string()),
                    kind => on_frame(kind),
                },
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("closed while joining".into()),
            }
        }
    }
    Ok((sink, stream))
}

/// What makes this run's client ids its own: the server stores a resend of
/// a client id once and relays it to nobody, so a second run against the
/// same server reusing `p0-0`, `p0-1`... would see every message "lost".
fn run_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        format!("{}-{millis}", std::process::id())
    })
}

/// The frame a publisher sends with `text` (a stamp): the text itself
/// (plain), or a `send` to `room` with a client id unique to this run,
/// `publisher` and `seq` (JSON). `None` if the text is not valid chat text.
pub fn publish_frame(protocol: Endpoint, room: &RoomName, publisher: u32, seq: u64, text: String) -> Option<Message> {
    match protocol {
        Endpoint::Json => {
            let client_id = ClientId::parse(format!("{}-p{publisher}-{seq}", run_tag())).ok()?;
            let text = MessageText::parse(text).ok()?;
            Some(Message::text(ClientMessage::Send { room: room.clone(), client_id, text }.encode()))
        }
        Endpoint::Plain => Some(Message::text(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_clients_are_spread_over_many_addresses() {
        let server = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sources: std::collections::HashSet<_> = (0..1_000).filter_map(|i| source_for(server, i)).collect();
        assert_eq!(sources.len(), SOURCE_ADDRESSES);
        assert!(sources.iter().all(|ip| ip.is_loopback()));
        assert_eq!(source_for("10.0.0.1".parse().expect("ip"), 0), None, "off loopback: the kernel chooses");
        assert_eq!(source_for("::1".parse().expect("ip"), 0), None);
    }

    #[test]
    fn client_ids_differ_between_runs_and_fit_the_protocol() {
        let room = RoomName::lobby();
        let Some(Message::Text(frame)) = publish_frame(Endpoint::Json, &room, 9, u64::MAX, "x".into()) else {
            panic!("a send frame");
        };
        assert!(frame.as_str().contains(&format!("\"{}-p9-{}\"", run_tag(), u64::MAX)), "{frame}");
        assert!(frame.as_str().contains(&std::process::id().to_string()), "tagged with this run");
    }

    #[test]
    fn event_types_are_read_from_the_first_field() {
        assert_eq!(event_type(r#"{"type":"history","room":"x"}"#), "history");
        assert_eq!(event_type("not json"), "other");
    }
}
