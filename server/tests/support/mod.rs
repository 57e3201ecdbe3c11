//! Test support: the real app on port 0 and WebSocket clients that talk to it
//! over real sockets.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod accounts;
pub mod postgres;
pub mod process;
pub mod raw_frames;
pub mod redis;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_server::config::Config;
use chat_server::shutdown::ShutdownTrigger;
use chat_server::startup::Application;
use chat_shared::{ChatMessage, ClientId, ClientMessage, MessageText, Nickname, RoomName, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How long a test waits to be confident something does *not* happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// The real application on a free loopback port, with its own history file.
pub struct TestApp {
    /// Where it listens.
    pub address: SocketAddr,
    /// The history file.
    pub database: PathBuf,
    _dir: Arc<tempfile::TempDir>,
}

impl TestApp {
    /// Starts the app with a fresh history file, no web client to serve, and
    /// no rate limit (most tests send faster than people type).
    pub async fn spawn() -> Self {
        Self::spawn_configured(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with settings changed by `configure`.
    pub async fn spawn_configured(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database = dir.path().join("chat.sqlite3");
        Self::spawn_with(dir, database, Path::new("does-not-exist"), configure).await.0
    }

    /// Starts the app serving `static_dir`.
    pub async fn spawn_serving(static_dir: &Path) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database = dir.path().join("chat.sqlite3");
        Self::spawn_with(dir, database, static_dir, |_| {}).await.0
    }

    /// Starts the app and returns the trigger of its graceful shutdown too.
    pub async fn spawn_with_shutdown() -> (Self, ShutdownTrigger) {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database = dir.path().join("chat.sqlite3");
        Self::spawn_with(dir, database, Path::new("does-not-exist"), |_| {}).await
    }

    /// Starts a second app on the same history file, as after a restart.
    pub async fn restart_on_same_file(&self) -> Self {
        Self::spawn_with(self._dir.clone(), self.database.clone(), Path::new("does-not-exist"), |_| {}).await.0
    }

    async fn spawn_with(
        dir: Arc<tempfile::TempDir>,
        database: PathBuf,
        static_dir: &Path,
        configure: impl FnOnce(&mut Config),
    ) -> (Self, ShutdownTrigger) {
        let mut config = Config::new("127.0.0.1:0".parse().expect("address"), static_dir, database.clone());
        config.rate_limit = 0;
        configure(&mut config);
        let app = Application::build(config).await.expect("app builds");
        let address = app.address();
        let trigger = app.shutdown_trigger();
        actix_web::rt::spawn(app.run_until_stopped());
        (Self { address, database, _dir: dir }, trigger)
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WebSocket client.
pub struct RawClient {
    socket: Socket,
    /// Frames read while waiting for something else, returned first.
    early: VecDeque<Message>,
}

impl RawClient {
    /// Connects to `path` on the app, and returns once the server's session
    /// is registered with the hub (so nothing sent afterwards can miss it).
    pub async fn connect(address: SocketAddr, path: &str) -> Self {
        Self::connect_with_cookie(address, path, None).await
    }

    /// Like [`RawClient::connect`], sending `cookie` (a `Cookie` header's value) with the upgrade.
    pub async fn connect_with_cookie(address: SocketAddr, path: &str, cookie: Option<&str>) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{address}{path}").into_client_request().expect("a request");
        if let Some(cookie) = cookie {
            request.headers_mut().insert("cookie", cookie.parse().expect("a header value"));
        }
        let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
        assert_eq!(response.status(), 101);
        let mut client = Self { socket, early: VecDeque::new() };
        client.wait_until_registered().await;
        client
    }

    /// The session answers pings only once it has registered with the hub.
    async fn wait_until_registered(&mut self) {
        self.send(Message::Ping(b"registered?".to_vec().into())).await;
        tokio::time::timeout(PATIENCE, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Pong(_))) => return,
                    Some(Ok(Message::Ping(_))) => continue,
                    Some(Ok(other)) => self.early.push_back(other),
                    Some(Err(e)) => panic!("socket failed while connecting: {e}"),
                    None => panic!("socket closed while connecting"),
                }
            }
        })
        .await
        .expect("the session answers in time");
    }

    /// Sends one frame.
    pub async fn send(&mut self, message: Message) {
        self.socket.send(message).await.expect("frame sent");
    }

    /// The next data or close frame, skipping pings and pongs; `None` if the
    /// stream ended. Panics if nothing arrives in time.
    pub async fn next(&mut self) -> Option<Message> {
        if let Some(early) = self.early.pop_front() {
            return Some(early);
        }
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

    /// Skips data frames until the server's close frame, and returns its code;
    /// panics if the socket ends without one.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            match self.next().await {
                Some(Message::Close(Some(frame))) => return u16::from(frame.code),
                Some(Message::Close(None)) => panic!("a close frame without a code"),
                Some(_) => continue,
                None => panic!("the socket ended without a close frame"),
            }
        }
    }

    /// Like [`RawClient::close_code`], waiting up to `within` for it
    /// (frames may be far apart); `None` if it did not come by then.
    pub async fn close_code_within(&mut self, within: Duration) -> Option<u16> {
        tokio::time::timeout(within, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                    Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => panic!("the socket ended without a close frame"),
                }
            }
        })
        .await
        .ok()
    }

    /// Asserts that no data frame arrives for a while.
    pub async fn assert_silent(&mut self) {
        assert!(self.early.is_empty(), "expected silence, got {:?}", self.early);
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
    tab: ClientId,
    room: RoomName,
    sent: u64,
    /// Live events that arrived between `joined` and `history`, returned first.
    early: VecDeque<ServerMessage>,
    /// Room lists [`JsonClient::next`] skipped.
    pub skipped_room_lists: usize,
}

static TABS: AtomicU64 = AtomicU64::new(1);
static SAID: AtomicU64 = AtomicU64::new(1);

/// Shorthand for a valid nickname.
pub fn nick(s: &str) -> Nickname {
    Nickname::parse(s).expect("nick")
}

/// Shorthand for a valid room name.
pub fn room(s: &str) -> RoomName {
    RoomName::parse(s).expect("room")
}

impl JsonClient {
    /// Connects without joining, as a fresh browser tab.
    pub async fn connect(address: SocketAddr) -> Self {
        Self::connect_with_cookie(address, None).await
    }

    /// Like [`JsonClient::connect`], as a tab whose browser has `cookie` (a `Cookie` header's value).
    pub async fn connect_with_cookie(address: SocketAddr, cookie: Option<&str>) -> Self {
        Self::connect_at(address, "/ws", cookie).await
    }

    /// Like [`JsonClient::connect`], with a connection token on the upgrade
    /// (`/ws?token=`); returns once the server said it took it, with the
    /// name it gives and the seconds it has left.
    pub async fn connect_with_token(address: SocketAddr, token: &str) -> (Self, Nickname, u64) {
        let mut client = Self::connect_at(address, &format!("/ws?token={token}"), None).await;
        match client.next().await {
            ServerMessage::Authenticated { name, expires_in } => (client, name, expires_in),
            other => panic!("expected authenticated, got {other:?}"),
        }
    }

    async fn connect_at(address: SocketAddr, path: &str, cookie: Option<&str>) -> Self {
        let tab = ClientId::parse(format!("tab-{}", TABS.fetch_add(1, Ordering::Relaxed))).expect("tab");
        Self {
            raw: RawClient::connect_with_cookie(address, path, cookie).await,
            tab,
            room: RoomName::lobby(),
            sent: 0,
            early: VecDeque::new(),
            skipped_room_lists: 0,
        }
    }

    /// Connects as the given tab (to test takeovers).
    pub async fn connect_as_tab(address: SocketAddr, tab: &str) -> Self {
        let mut client = Self::connect(address).await;
        client.tab = ClientId::parse(tab).expect("tab");
        client
    }

    /// Connects as the given tab of a browser that has `cookie`.
    pub async fn connect_with_cookie_as_tab(address: SocketAddr, cookie: &str, tab: &str) -> Self {
        let mut client = Self::connect_with_cookie(address, Some(cookie)).await;
        client.tab = ClientId::parse(tab).expect("tab");
        client
    }

    /// Connects and joins the lobby as `nick`; returns the client and the history it got.
    pub async fn join(address: SocketAddr, nick: &str) -> Self {
        let mut client = Self::connect(address).await;
        client.enter("lobby", nick, None).await;
        client
    }

    /// Sends `join` and checks the answer: `joined`, then `history`, which is returned.
    pub async fn enter(&mut self, room_name: &str, nick_name: &str, after: Option<u64>) -> (Vec<ChatMessage>, bool) {
        let (messages, has_more, _) = self.enter_paged(room_name, nick_name, after).await;
        (messages, has_more)
    }

    /// Like [`JsonClient::enter`]; also returns `joined`'s `resumed` and
    /// the page's `has_newer`: `(messages, has_more, (resumed, has_newer))`.
    pub async fn enter_paged(
        &mut self,
        room_name: &str,
        nick_name: &str,
        after: Option<u64>,
    ) -> (Vec<ChatMessage>, bool, (bool, bool)) {
        self.send_join(room_name, nick_name, after).await;
        let resumed = match self.next().await {
            ServerMessage::Joined { room: r, nick: n, members, resumed, .. } => {
                assert_eq!((r, &n), (room(room_name), &nick(nick_name)));
                assert!(members.contains(&n), "members include the joiner: {members:?}");
                resumed
            }
            other => panic!("expected joined, got {other:?}"),
        };
        // History is read beside the live events, which may come first: they
        // are kept aside (not put back where `next` would return them again).
        let mut live_events = VecDeque::new();
        loop {
            match self.next().await {
                ServerMessage::History { room: r, messages, has_more, has_newer } => {
                    assert_eq!(r, room(room_name));
                    live_events.extend(self.early.drain(..));
                    self.early = live_events;
                    return (messages, has_more, (resumed, has_newer));
                }
                live @ (ServerMessage::Message(_)
                | ServerMessage::MemberJoined { .. }
                | ServerMessage::MemberLeft { .. }
                | ServerMessage::Typing { .. }
                | ServerMessage::Ack { .. }) => live_events.push_back(live),
                other => panic!("expected history, got {other:?}"),
            }
        }
    }

    /// Joins `room_name` as `nick_name`: `joined`'s member list (once its
    /// history followed), or the error code it was refused with.
    pub async fn try_join(&mut self, room_name: &str, nick_name: &str) -> Result<Vec<String>, chat_shared::ErrorCode> {
        self.send_join(room_name, nick_name, None).await;
        let members = match self.next().await {
            ServerMessage::Joined { members, .. } => members.iter().map(|m| m.to_string()).collect(),
            ServerMessage::Error { code, .. } => return Err(code),
            other => panic!("expected joined or an error, got {other:?}"),
        };
        while !matches!(self.next().await, ServerMessage::History { .. }) {}
        Ok(members)
    }

    /// Sends `join` without waiting for the answer.
    pub async fn send_join(&mut self, room_name: &str, nick_name: &str, after: Option<u64>) {
        self.room = room(room_name);
        let join = ClientMessage::Join {
            room: room(room_name),
            nick: nick(nick_name),
            tab: self.tab.clone(),
            after,
            epoch: None,
        };
        self.send(&join).await;
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: &ClientMessage) {
        self.raw.send(Message::text(message.encode())).await;
    }

    /// Says `text` in the current room with a fresh client id, which is returned.
    pub async fn say(&mut self, text: &str) -> ClientId {
        // Numbered across connections, as a browser tab's ids are unique across reconnects.
        self.sent = SAID.fetch_add(1, Ordering::Relaxed);
        let client_id = ClientId::parse(format!("{}-{}", self.tab, self.sent)).expect("client id");
        self.say_with_id(text, &client_id).await;
        client_id
    }

    /// Says `text` with the given client id (to test resends).
    pub async fn say_with_id(&mut self, text: &str, client_id: &ClientId) {
        let send = ClientMessage::Send {
            room: self.room.clone(),
            client_id: client_id.clone(),
            text: MessageText::parse(text).expect("text"),
        };
        self.send(&send).await;
    }

    /// The next server message, skipping room-list updates (which come on a
    /// timer); panics if it is not valid protocol.
    pub async fn next(&mut self) -> ServerMessage {
        if let Some(early) = self.early.pop_front() {
            return early;
        }
        loop {
            let message = self.next_any().await;
            if !matches!(message, ServerMessage::Rooms { .. }) {
                return message;
            }
            self.skipped_room_lists += 1;
        }
    }

    /// The next server message of any kind.
    pub async fn next_any(&mut self) -> ServerMessage {
        let text = self.raw.next_text().await;
        ServerMessage::decode(&text).unwrap_or_else(|e| panic!("server sent invalid protocol {text:?}: {e}"))
    }

    /// Skips events until a chat message arrives, and returns it.
    pub async fn next_chat(&mut self) -> ChatMessage {
        loop {
            match self.next().await {
                ServerMessage::Message(message) => return message,
                ServerMessage::MemberJoined { .. }
                | ServerMessage::MemberLeft { .. }
                | ServerMessage::Members { .. }
                | ServerMessage::Typing { .. } => {}
                ServerMessage::Ack { .. } => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// Skips presence and typing events until the ack of `client_id`; returns the stored id.
    pub async fn next_ack(&mut self, client_id: &ClientId) -> u64 {
        loop {
            match self.next().await {
                ServerMessage::Ack { client_id: acked, id, .. } if &acked == client_id => return id,
                ServerMessage::Message(_)
                | ServerMessage::MemberJoined { .. }
                | ServerMessage::MemberLeft { .. }
                | ServerMessage::Members { .. }
                | ServerMessage::Typing { .. } => {}
                other => panic!("expected ack of {client_id}, got {other:?}"),
            }
        }
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
