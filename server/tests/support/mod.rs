//! Test support: the real app on port 0 and WebSocket clients that talk to it
//! over real sockets.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chat_server::config::Config;
use chat_server::startup::Application;
use chat_shared::{ClientMessage, MessageText, Nickname, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How long a test waits to be confident something does *not* happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Starts the real application on a free loopback port, serving `static_dir`.
pub fn spawn_app_serving(static_dir: &Path) -> SocketAddr {
    let config = Config::new("127.0.0.1:0".parse().expect("address"), static_dir);
    let app = Application::build(config).expect("app builds");
    let address = app.address();
    actix_web::rt::spawn(app.run_until_stopped());
    address
}

/// Starts the real application with no web client to serve.
pub fn spawn_app() -> SocketAddr {
    spawn_app_serving(Path::new("does-not-exist"))
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WebSocket client.
pub struct RawClient {
    socket: Socket,
}

impl RawClient {
    /// Connects to `path` on the app.
    pub async fn connect(address: SocketAddr, path: &str) -> Self {
        let (socket, response) =
            tokio_tungstenite::connect_async(format!("ws://{address}{path}")).await.expect("websocket connects");
        assert_eq!(response.status(), 101);
        Self { socket }
    }

    /// Sends one frame.
    pub async fn send(&mut self, message: Message) {
        self.socket.send(message).await.expect("frame sent");
    }

    /// The next data or close frame, skipping pings and pongs; `None` if the
    /// stream ended. Panics if nothing arrives in time.
    pub async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(message)) => return Some(message),
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("a frame arrives in time")
    }

    /// The next text frame; panics on anything else.
    pub async fn next_text(&mut self) -> String {
        match self.next().await {
            Some(Message::Text(text)) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Asserts that no data frame arrives for a while.
    pub async fn assert_silent(&mut self) {
        let next = tokio::time::timeout(QUIET, self.socket.next()).await;
        assert!(next.is_err(), "expected silence, got {next:?}");
    }

    /// Closes the connection cleanly.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// A client of the typed JSON protocol on `/ws`.
pub struct JsonClient {
    raw: RawClient,
}

impl JsonClient {
    /// Connects without joining.
    pub async fn connect(address: SocketAddr) -> Self {
        Self { raw: RawClient::connect(address, "/ws").await }
    }

    /// Connects and joins as `nick`, checking the welcome.
    pub async fn join(address: SocketAddr, nick: &str) -> Self {
        let mut client = Self::connect(address).await;
        client.send(&ClientMessage::Hello { nick: Nickname::parse(nick).expect("nick") }).await;
        assert_eq!(client.next().await, ServerMessage::Welcome { nick: Nickname::parse(nick).expect("nick") });
        client
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: &ClientMessage) {
        self.raw.send(Message::text(message.encode())).await;
    }

    /// Says `text` to everyone.
    pub async fn say(&mut self, text: &str) {
        self.send(&ClientMessage::Send { text: MessageText::parse(text).expect("text") }).await;
    }

    /// The next server message; panics if it is not valid protocol.
    pub async fn next(&mut self) -> ServerMessage {
        let text = self.raw.next_text().await;
        ServerMessage::decode(&text).unwrap_or_else(|e| panic!("server sent invalid protocol {text:?}: {e}"))
    }

    /// The underlying socket.
    pub fn raw(&mut self) -> &mut RawClient {
        &mut self.raw
    }

    /// Closes the connection cleanly.
    pub async fn close(self) {
        self.raw.close().await;
    }
}
