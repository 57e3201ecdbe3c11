//! A session on `/ws`, speaking the typed JSON protocol of `chat-shared`.

use std::net::SocketAddr;

use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::{ClientMessage, ErrorCode, Nickname, ServerMessage};
use tokio::sync::mpsc;

use crate::hub::{ConnectionId, HubHandle, HubStopped, Outbound, outbound_queue};
use crate::session::{FrameHandler, drive};

/// Runs one JSON connection until either side closes it.
pub async fn run(
    mut socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    hub: HubHandle,
    peer: Option<SocketAddr>,
) {
    let id = hub.next_connection_id();
    tracing::info!(connection = id, ?peer, endpoint = "json", "connected");
    let (sender, mut outbound) = outbound_queue();
    let mut session = JsonSession { id, hub, nick: None, sender: Some(sender) };

    let close = drive(&mut socket, stream, &mut outbound, &mut session).await;

    session.hub.leave(id).await;
    // The peer may already be gone; closing is best effort.
    let _ = socket.close(close).await;
    tracing::info!(connection = id, nick = session.nick.as_ref().map(Nickname::as_str), "disconnected");
}

/// What one JSON connection knows about itself.
struct JsonSession {
    id: ConnectionId,
    hub: HubHandle,
    /// Set once `hello` is accepted.
    nick: Option<Nickname>,
    /// Our outbound queue's sender until `hello` hands it to the hub.
    sender: Option<mpsc::Sender<Outbound>>,
}

impl JsonSession {
    /// Handles one client message and returns what to answer directly, if anything.
    async fn on_message(&mut self, message: ClientMessage) -> Result<Option<ServerMessage>, HubStopped> {
        match (message, &self.nick) {
            (ClientMessage::Hello { .. }, Some(nick)) => {
                Ok(Some(ServerMessage::error(ErrorCode::AlreadyJoined, format!("already joined as {nick}"))))
            }
            (ClientMessage::Hello { nick }, None) => {
                let Some(sender) = self.sender.take() else { return Err(HubStopped) };
                self.hub.join_json(self.id, sender).await?;
                tracing::info!(connection = self.id, %nick, "joined");
                self.nick = Some(nick.clone());
                Ok(Some(ServerMessage::Welcome { nick }))
            }
            (ClientMessage::Send { .. }, None) => {
                Ok(Some(ServerMessage::error(ErrorCode::NotJoined, "say hello with a nickname before sending")))
            }
            (ClientMessage::Send { text }, Some(nick)) => {
                self.hub.say(nick.clone(), text).await?;
                Ok(None)
            }
        }
    }
}

impl FrameHandler for JsonSession {
    async fn on_text(&mut self, text: ByteString) -> Result<Option<ByteString>, HubStopped> {
        let reply = match ClientMessage::decode(&text) {
            Ok(message) => self.on_message(message).await?,
            Err(error) => Some(error.to_server_message()),
        };
        Ok(reply.map(|reply| ByteString::from(reply.encode())))
    }

    async fn on_binary(&mut self, _: Bytes) -> Result<Option<ByteString>, HubStopped> {
        let reply = ServerMessage::error(ErrorCode::UnsupportedFrame, "this endpoint speaks JSON in text frames");
        Ok(Some(ByteString::from(reply.encode())))
    }
}
