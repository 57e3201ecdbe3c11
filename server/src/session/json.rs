//! A session on `/ws`, speaking the typed JSON protocol of `chat-shared`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::limits::HISTORY_PAGE_MAX;
use chat_shared::{ClientMessage, ErrorCode, RoomName, ServerMessage};

use crate::hub::{ConnectionId, HubHandle, HubStopped, JoinRequest, Protocol, outbound_queue};
use crate::session::{FrameHandler, drive, going_away};
use crate::store::{HistoryStore, Page, StoreError};

/// Runs one JSON connection until either side closes it.
pub async fn run(
    mut socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    hub: HubHandle,
    store: Arc<dyn HistoryStore>,
    peer: Option<SocketAddr>,
) {
    let id = hub.next_connection_id();
    tracing::info!(connection = id, ?peer, endpoint = "json", "connected");
    let (sender, mut outbound) = outbound_queue();
    let mut session = JsonSession { id, hub, store };

    let close = match session.hub.connect(id, Protocol::Json, sender).await {
        Ok(()) => drive(&mut socket, stream, &mut outbound, &mut session).await,
        Err(HubStopped) => Some(going_away()),
    };

    session.hub.disconnect(id).await;
    // The peer may already be gone; closing is best effort.
    let _ = socket.close(close).await;
    tracing::info!(connection = id, "disconnected");
}

/// What one JSON connection needs to serve its peer.
struct JsonSession {
    id: ConnectionId,
    hub: HubHandle,
    store: Arc<dyn HistoryStore>,
}

impl JsonSession {
    /// Handles one client message; returns what to answer directly, if anything.
    /// Answers that must be ordered with room events come from the hub instead.
    async fn on_message(&mut self, message: ClientMessage) -> Result<Option<ServerMessage>, HubStopped> {
        match message {
            ClientMessage::Join { room, nick, tab, after } => {
                tracing::info!(connection = self.id, %nick, %room, ?after, "joining");
                self.hub.join(self.id, JoinRequest { room, nick, tab, after }).await?;
                Ok(None)
            }
            ClientMessage::Send { room, client_id, text } => {
                self.hub.say(self.id, room, client_id, text).await?;
                Ok(None)
            }
            ClientMessage::Typing { room } => {
                self.hub.typing(self.id, room).await?;
                Ok(None)
            }
            ClientMessage::History { room, before, limit } => Ok(Some(self.older(room, before, limit).await)),
        }
    }

    /// A page of older history. Served here, not by the hub: old messages
    /// never change, so no ordering with live events is needed.
    async fn older(&self, room: RoomName, before: u64, limit: u32) -> ServerMessage {
        let limit = limit.clamp(1, HISTORY_PAGE_MAX);
        let page = async {
            let messages = self.store.page(&room, Page::Before { id: before, limit }).await?;
            let has_more = match messages.first() {
                Some(oldest) => self.store.has_before(&room, oldest.id).await?,
                None => false,
            };
            Ok::<_, StoreError>((messages, has_more))
        };
        match page.await {
            Ok((messages, has_more)) => ServerMessage::History { room, messages, has_more },
            Err(error) => {
                tracing::error!(%error, %room, "reading history failed");
                ServerMessage::error(ErrorCode::StoreUnavailable, "history is unavailable right now")
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
