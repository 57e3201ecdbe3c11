//! A session on `/`, speaking the seed's plain protocol: every frame is echoed
//! verbatim to every plain client, the sender included.

use bytes::Bytes;
use bytestring::ByteString;

use crate::hub::{ConnectionId, HubHandle, HubStopped, Outbound};
use crate::session::{FrameHandler, Handled, SessionContext, serve};
use chat_shared::Endpoint;

/// Registers one plain connection now, and runs it (the future) until either side closes it.
pub fn run(
    socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    context: SessionContext,
) -> impl Future<Output = ()> {
    serve(socket, stream, context, Endpoint::Plain, |id, context| PlainSession { id, hub: context.hub.clone() })
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
