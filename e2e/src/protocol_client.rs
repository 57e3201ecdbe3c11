//! A client of the JSON protocol beside the browsers: it posts many messages
//! quickly (acknowledged in bursts) and records what the room shows it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_shared::{ClientId, ClientMessage, MessageText, Nickname, RoomName, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Numbers posted messages across every client of the test process.
static POSTED: AtomicU64 = AtomicU64::new(1);

/// A joined JSON client. Post with the server's rate limit off (`--rate-limit 0`).
pub struct ProtocolClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    room: RoomName,
    /// Every presence event seen, as `"<nick> joined"` / `"<nick> left"`.
    pub presence: Vec<String>,
}

impl ProtocolClient {
    /// Connects to `/ws` at `address` and joins the lobby as `nick`.
    pub async fn join(address: SocketAddr, nick: &str) -> Self {
        Self::join_room(address, chat_shared::DEFAULT_ROOM, nick).await
    }

    /// Connects to `/ws` at `address` and joins `room` as `nick`.
    pub async fn join_room(address: SocketAddr, room: &str, nick: &str) -> Self {
        let room = RoomName::parse(room).expect("room");
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws")).await.expect("connects");
        let mut client = Self { socket, room: room.clone(), presence: Vec::new() };
        let join = ClientMessage::Join {
            room,
            nick: Nickname::parse(nick).expect("nick"),
            tab: ClientId::parse(format!("{nick}-tab")).expect("tab"),
            after: None,
            epoch: None,
        };
        client.socket.send(Message::text(join.encode())).await.expect("join sent");
        while !matches!(client.next().await, ServerMessage::History { .. }) {}
        client
    }

    async fn next(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(crate::PATIENCE, self.socket.next())
                .await
                .expect("a frame in time")
                .expect("socket open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let message = ServerMessage::decode(&text).expect("valid protocol");
                match &message {
                    ServerMessage::MemberJoined { nick, .. } => self.presence.push(format!("{nick} joined")),
                    ServerMessage::MemberLeft { nick, .. } => self.presence.push(format!("{nick} left")),
                    _ => {}
                }
                return message;
            }
        }
    }

    /// Posts `texts`, 100 at a time, each burst acknowledged before the next;
    /// returns the id of the last.
    pub async fn post(&mut self, texts: impl IntoIterator<Item = String>) -> u64 {
        let texts: Vec<String> = texts.into_iter().collect();
        let mut last = 0;
        for burst in texts.chunks(100) {
            let mut waiting = Vec::new();
            for text in burst {
                // Unique across clients of this process, as a tab's ids are across reconnects.
                let number = POSTED.fetch_add(1, Ordering::Relaxed);
                let client_id = ClientId::parse(format!("post-{number}")).expect("client id");
                let send = ClientMessage::Send {
                    room: self.room.clone(),
                    client_id: client_id.clone(),
                    text: MessageText::parse(text.as_str()).expect("text"),
                };
                self.socket.send(Message::text(send.encode())).await.expect("sent");
                waiting.push(client_id);
            }
            while !waiting.is_empty() {
                match self.next().await {
                    ServerMessage::Ack { client_id, id, .. } => {
                        waiting.retain(|w| *w != client_id);
                        last = last.max(id);
                    }
                    ServerMessage::Error { code, message } => panic!("posting failed: {code:?}: {message}"),
                    _ => {}
                }
            }
        }
        last
    }

    /// Posts `text` and returns how long its ack took.
    pub async fn say_and_wait_for_ack(&mut self, text: &str) -> std::time::Duration {
        let started = std::time::Instant::now();
        self.post([text.to_owned()]).await;
        started.elapsed()
    }

    /// Reads until a message with `text` arrives (recording presence on the way).
    pub async fn wait_for_text(&mut self, text: &str) {
        loop {
            if let ServerMessage::Message(message) = self.next().await
                && message.text.as_str() == text
            {
                return;
            }
        }
    }
}
