//! A session on `/`, speaking the seed's plain protocol: every frame is echoed
//! verbatim to every plain client, the sender included.

use bytes::Bytes;
use bytestring::ByteString;

use crate::hub::{ConnectionId, HubHandle, HubStopped, Outbound, Protocol, outbound_queue};
use crate::session::{FrameHandler, Handled, SessionContext, drive, going_away};

/// Runs one plain connection until either side closes it.
pub async fn run(mut socket: actix_ws::Session, stream: actix_ws::MessageStream, mut context: SessionContext) {
    let id = context.hub.next_connection_id();
    tracing::info!(connection = id, peer = ?context.peer, endpoint = "plain", "connected");
    context.metrics.open_connections.inc();
    let (sender, mut outbound) = outbound_queue(context.settings.outbound_queue_bytes);
    let mut session = PlainSession { id, hub: context.hub.clone() };

    let close = match session.hub.connect(id, Protocol::Plain, sender).await {
        Ok(()) => drive(&mut socket, stream, &mut outbound, &mut session, &mut context).await,
        Err(HubStopped) => Some(going_away()),
    };

    session.hub.disconnect(id).await;
    // The peer may already be gone; closing is best effort.
    let _ = socket.close(close.clone()).await;
    context.metrics.open_connections.dec();
    tracing::info!(connection = id, close = ?close.map(|c| c.code), "disconnected");
}

struct PlainSession {
    id: ConnectionId,
    hub: HubHandle,
}

impl FrameHandler for PlainSession {
    async fn on_text(&mut self, text: ByteString) -> Result<Handled, HubStopped> {
        self.hub.plain_frame(self.id, Outbound::Text(text)).await?;
        Ok(Handled::Nothing)
    }

    async fn on_binary(&mut self, bytes: Bytes) -> Result<Handled, HubStopped> {
        self.hub.plain_frame(self.id, Outbound::Binary(bytes)).await?;
        Ok(Handled::Nothing)
    }

    /// The plain protocol has no error frames: an excess frame is just not relayed.
    fn rate_limited(&mut self) -> Option<ByteString> {
        None
    }
}
