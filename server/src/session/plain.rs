//! A session on `/`, speaking the seed's plain protocol: every frame is echoed
//! verbatim to every plain client, the sender included.

use std::net::SocketAddr;

use bytes::Bytes;
use bytestring::ByteString;

use crate::hub::{ConnectionId, HubHandle, HubStopped, Outbound, Protocol, outbound_queue};
use crate::session::{FrameHandler, drive, going_away};

/// Runs one plain connection until either side closes it.
pub async fn run(
    mut socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    hub: HubHandle,
    peer: Option<SocketAddr>,
) {
    let id = hub.next_connection_id();
    tracing::info!(connection = id, ?peer, endpoint = "plain", "connected");
    let (sender, mut outbound) = outbound_queue();
    let mut session = PlainSession { id, hub };

    let close = match session.hub.connect(id, Protocol::Plain, sender).await {
        Ok(()) => drive(&mut socket, stream, &mut outbound, &mut session).await,
        Err(HubStopped) => Some(going_away()),
    };

    session.hub.disconnect(id).await;
    // The peer may already be gone; closing is best effort.
    let _ = socket.close(close).await;
    tracing::info!(connection = id, "disconnected");
}

struct PlainSession {
    id: ConnectionId,
    hub: HubHandle,
}

impl FrameHandler for PlainSession {
    async fn on_text(&mut self, text: ByteString) -> Result<Option<ByteString>, HubStopped> {
        self.hub.plain_frame(self.id, Outbound::Text(text)).await?;
        Ok(None)
    }

    async fn on_binary(&mut self, bytes: Bytes) -> Result<Option<ByteString>, HubStopped> {
        self.hub.plain_frame(self.id, Outbound::Binary(bytes)).await?;
        Ok(None)
    }
}
