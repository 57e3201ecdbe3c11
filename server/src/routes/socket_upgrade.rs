//! WebSocket upgrades: admission (Origin, connection caps), the handshake,
//! then a session task per connection.
//!
//! actix-http checks the handshake (method, `Upgrade`, `Connection`,
//! `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`) and answers a bad one
//! with a 4xx response, so no peer input reaches a panic here.

use actix_web::guard::GuardContext;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use chat_shared::{Endpoint, Nickname};

use super::api_accounts;
use crate::app_state::AppState;
use crate::hub::WorkerLink;
use crate::metrics::RefusalReason;
use crate::session::identity::{HeldToken, Identity};
use crate::session::{self, SessionContext};
use crate::tokens::TokenError;

/// The query of an upgrade that carries a connection token.
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Upgrades `/ws` to the typed JSON protocol: as the user of `?token=` if
/// it has one (a refused token is told why and closed), else as the account
/// of the request's session cookie if it has a current one, else as a guest.
pub async fn json(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerLink>,
) -> HttpResponse {
    let token = web::Query::<TokenQuery>::from_query(req.query_string()).ok().and_then(|query| query.0.token);
    let identity = match token {
        Some(token) => {
            let verified =
                state.tokens.as_ref().ok_or(TokenError::NotAccepted).and_then(|tokens| tokens.verify(&token));
            match verified {
                Ok(token) => Identity::Token(HeldToken::new(token)),
                Err(error) => Identity::Refused(error),
            }
        }
        None => match api_accounts::session_user(&req, &state).await {
            Ok(Some(user)) => Identity::Account {
                user: user.id,
                // Registered names are valid nicknames; one that no longer is speaks as a guest.
                name: Nickname::parse(user.name).ok(),
                revoked: state.revocations.listen(user.id),
            },
            Ok(None) => Identity::Guest,
            Err(refused) => return refused,
        },
    };
    upgrade(req, body, &state, &worker, Endpoint::Json, identity)
}

/// Upgrades `/` to the seed's plain echo-to-everyone protocol, whose
/// clients are anonymous: refused where guests are not admitted.
pub async fn plain(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    worker: web::Data<WorkerLink>,
) -> HttpResponse {
    if !state.guests {
        state.metrics.refused(RefusalReason::Guests);
        return HttpResponse::Forbidden().body("this server admits signed-in users only; plain clients are guests");
    }
    upgrade(req, body, &state, &worker, Endpoint::Plain, Identity::Guest)
}

fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: &AppState,
    worker: &WorkerLink,
    endpoint: Endpoint,
    identity: Identity,
) -> HttpResponse {
    let origin = req.headers().get(header::ORIGIN).map(|v| v.to_str().unwrap_or("invalid"));
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    if !state.origins.allows(origin, host) {
        state.metrics.refused(RefusalReason::Origin);
        tracing::warn!(?origin, "refused a socket from a foreign origin");
        return HttpResponse::Forbidden().body("this origin may not open chat sockets");
    }
    let client = state.proxies.client_address(req.peer_addr().map(|a| a.ip()), req.headers());
    let permit = match state.limiter.admit(client) {
        Ok(permit) => permit,
        Err(reason) => {
            state.metrics.refused(reason);
            return match reason {
                RefusalReason::IpLimit => {
                    HttpResponse::TooManyRequests().body("too many connections from your address")
                }
                _ => HttpResponse::ServiceUnavailable().body("the server is full; try again later"),
            };
        }
    };
    let (response, socket, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(error) => {
            state.metrics.refused(RefusalReason::Handshake);
            return error.error_response();
        }
    };
    let context = SessionContext {
        hub: state.hub.clone(),
        worker: worker.address(),
        store: state.store.clone(),
        presence: state.presence.clone(),
        settings: state.settings.clone(),
        metrics: state.metrics.endpoint(endpoint),
        rate_limited: state.metrics.rate_limited_frames.clone(),
        slow_closes: state.metrics.slow_consumer_closes.clone(),
        shutdown: state.shutdown.clone(),
        permit,
        peer: client,
        accounts: state.accounts.clone(),
        identity,
        tokens: state.tokens.clone(),
        guests: state.guests,
        policy: state.policy.clone(),
    };
    match endpoint {
        Endpoint::Json => {
            actix_web::rt::spawn(state.sessions.track_future(session::json::run(socket, stream, context)))
        }
        Endpoint::Plain => {
            actix_web::rt::spawn(state.sessions.track_future(session::plain::run(socket, stream, context)))
        }
    };
    response
}

/// Whether a request asks to switch to WebSocket (`Upgrade: websocket`, any case),
/// which tells a socket on `/` apart from a browser loading the page.
pub fn asks_for_websocket(ctx: &GuardContext<'_>) -> bool {
    ctx.head()
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("websocket"))
}
