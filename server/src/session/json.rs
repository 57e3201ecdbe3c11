//! A session on `/ws`, speaking the typed JSON protocol of `chat-shared`.

use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::limits::HISTORY_PAGE_MAX;
use chat_shared::{ClientMessage, ErrorCode, RoomName, ServerMessage};

use crate::hub::{ConnectionId, HubHandle, HubStopped, JoinRequest, Protocol};
use crate::session::{FrameHandler, Handled, SessionContext, serve};
use crate::store::{HistoryStore, Page, StoreError};

/// Runs one JSON connection until either side closes it.
pub async fn run(socket: actix_ws::Session, stream: actix_ws::MessageStream, context: SessionContext) {
    serve(socket, stream, context, Protocol::Json, |id, context| JsonSession {
        id,
        hub: context.hub.clone(),
        store: context.store.clone(),
    })
    .await;
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

fn frame(message: &ServerMessage) -> ByteString {
    ByteString::from(message.encode())
}

impl FrameHandler for JsonSession {
    async fn on_text(&mut self, text: ByteString) -> Result<Handled, HubStopped> {
        match ClientMessage::decode(&text) {
            Ok(message) => Ok(self.on_message(message).await?.map_or(Handled::Nothing, |m| Handled::Reply(frame(&m)))),
            Err(error) => Ok(Handled::Invalid(frame(&error.to_server_message()))),
        }
    }

    async fn on_binary(&mut self, _: Bytes) -> Result<Handled, HubStopped> {
        let reply = ServerMessage::error(ErrorCode::UnsupportedFrame, "this endpoint speaks JSON in text frames");
        Ok(Handled::Invalid(frame(&reply)))
    }

    fn rate_limited(&mut self) -> Option<ByteString> {
        Some(frame(&ServerMessage::error(ErrorCode::RateLimited, "too many messages; slow down")))
    }
}
