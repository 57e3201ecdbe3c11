//! WebSocket upgrades: the handshake, then a session task per connection.
//!
//! actix-http checks the handshake (method, `Upgrade`, `Connection`,
//! `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`) and answers a bad one
//! with a 4xx response, so no peer input reaches a panic here.

use actix_web::guard::GuardContext;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::hub::HubHandle;
use crate::session;
use crate::store::HistoryStore;

/// Upgrades `/ws` to the typed JSON protocol.
pub async fn json(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<HubHandle>,
    store: web::Data<dyn HistoryStore>,
) -> actix_web::Result<HttpResponse> {
    let (response, socket, stream) = actix_ws::handle(&req, body)?;
    let store = store.into_inner();
    actix_web::rt::spawn(session::json::run(socket, stream, hub.get_ref().clone(), store, req.peer_addr()));
    Ok(response)
}

/// Upgrades `/` to the seed's plain echo-to-everyone protocol.
pub async fn plain(req: HttpRequest, body: web::Payload, hub: web::Data<HubHandle>) -> actix_web::Result<HttpResponse> {
    let (response, socket, stream) = actix_ws::handle(&req, body)?;
    actix_web::rt::spawn(session::plain::run(socket, stream, hub.get_ref().clone(), req.peer_addr()));
    Ok(response)
}

/// Whether a request asks to switch to WebSocket (`Upgrade: websocket`, any case),
/// which tells a socket on `/` apart from a browser loading the page.
pub fn asks_for_websocket(ctx: &GuardContext<'_>) -> bool {
    ctx.head()
        .headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("websocket"))
}
