//! The account routes of the HTTP API: `POST /api/register`, `/api/login`,
//! `/api/logout`, `/api/logout-all`, and `GET /api/me`. JSON in and out; a
//! session is a random token in an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` when the public origin is https). POSTs from a foreign page are
//! refused as the socket upgrade refuses them (its `Origin` check), which
//! also stops cross-site request forgery.

use std::net::IpAddr;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use chat_shared::api::{ApiError, ApiErrorCode, Credentials, Me};

use crate::accounts::store::SessionUser;
use crate::accounts::{AccountError, SESSION_LIFETIME, SignedIn};
use crate::app_state::AppState;
use crate::tokens::TokenError;

/// The cookie that carries a session's token.
pub const SESSION_COOKIE: &str = "chat_session";

/// Registers every account route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/register", web::post().to(register))
        .route("/api/login", web::post().to(login))
        .route("/api/logout", web::post().to(logout))
        .route("/api/logout-all", web::post().to(logout_all))
        .route("/api/me", web::get().to(me));
}

/// A refusal: `status` with an [`ApiError`] body.
pub fn refuse(status: StatusCode, code: ApiErrorCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(ApiError::new(code, message))
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The refusal while the database is away.
pub fn unavailable() -> HttpResponse {
    refuse(StatusCode::SERVICE_UNAVAILABLE, ApiErrorCode::Unavailable, "accounts are unavailable right now; retry soon")
}

/// The refusal for an account error.
fn refusal(error: &AccountError) -> HttpResponse {
    let message = error.to_string();
    match error {
        AccountError::InvalidUsername(_) => refuse(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidUsername, message),
        AccountError::InvalidPassword => refuse(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidPassword, message),
        AccountError::UsernameTaken(_) => refuse(StatusCode::CONFLICT, ApiErrorCode::UsernameTaken, message),
        AccountError::InvalidCredentials => refuse(StatusCode::UNAUTHORIZED, ApiErrorCode::InvalidCredentials, message),
        AccountError::RateLimited(wait) => {
            let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, ApiErrorCode::RateLimited, message);
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = header::HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        AccountError::Busy(_) => {
            let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, ApiErrorCode::Unavailable, message);
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            response
        }
        AccountError::Store(store) => {
            tracing::error!(error = %store, "an account request failed");
            unavailable()
        }
    }
}

/// A request from a page of a foreign origin: refused (as socket upgrades are).
pub fn foreign(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let origin = req.headers().get(header::ORIGIN).map(|v| v.to_str().unwrap_or("invalid"));
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    (!state.origins.allows(origin, host))
        .then(|| refuse(StatusCode::FORBIDDEN, ApiErrorCode::Forbidden, "requests from other sites are refused"))
}

/// The session cookie carrying `token` for `max_age_secs` (0 deletes it).
fn session_cookie(state: &AppState, token: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

fn signed_in(state: &AppState, status: StatusCode, signed: SignedIn) -> HttpResponse {
    let lifetime = i64::try_from(SESSION_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    HttpResponse::build(status)
        .cookie(session_cookie(state, signed.token, lifetime))
        .json(Me { username: signed.user.name })
}

fn client(req: &HttpRequest, state: &AppState) -> IpAddr {
    let direct = req.peer_addr().map(|address| address.ip());
    state.proxies.client_address(direct, req.headers()).unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The credentials of a register or login request and where it came from,
/// or the refusal (a foreign page, a body that is not credentials).
fn credentials(req: &HttpRequest, body: &[u8], state: &AppState) -> Result<(Credentials, IpAddr), Box<HttpResponse>> {
    if let Some(refused) = foreign(req, state) {
        return Err(Box::new(refused));
    }
    let credentials = serde_json::from_slice::<Credentials>(body).map_err(|_| {
        Box::new(refuse(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidRequest, "send {\"username\", \"password\"}"))
    })?;
    Ok((credentials, client(req, state)))
}

async fn register(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let (credentials, from) = match credentials(&req, &body, &state) {
        Ok(parts) => parts,
        Err(refused) => return *refused,
    };
    match state.accounts.register(&credentials.username, &credentials.password, from).await {
        Ok(signed) => signed_in(&state, StatusCode::CREATED, signed),
        Err(error) => refusal(&error),
    }
}

async fn login(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let (credentials, from) = match credentials(&req, &body, &state) {
        Ok(parts) => parts,
        Err(refused) => return *refused,
    };
    match state.accounts.sign_in(&credentials.username, &credentials.password, from).await {
        Ok(signed) => signed_in(&state, StatusCode::OK, signed),
        Err(error) => refusal(&error),
    }
}

/// The session's account, if the request carries a current session cookie.
pub async fn session_user(req: &HttpRequest, state: &AppState) -> Result<Option<SessionUser>, HttpResponse> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else { return Ok(None) };
    state.accounts.session_user(cookie.value()).await.map_err(|error| {
        tracing::error!(%error, "reading a session failed");
        unavailable()
    })
}

fn signed_out(state: &AppState) -> HttpResponse {
    HttpResponse::NoContent().cookie(session_cookie(state, String::new(), 0)).finish()
}

async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refused) = foreign(&req, &state) {
        return refused;
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE)
        && let Err(error) = state.accounts.sign_out(cookie.value()).await
    {
        tracing::error!(%error, "ending a session failed");
        return unavailable();
    }
    signed_out(&state)
}

async fn logout_all(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refused) = foreign(&req, &state) {
        return refused;
    }
    let user = match session_user(&req, &state).await {
        Ok(Some(user)) => user,
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, ApiErrorCode::Unauthorized, "sign in first"),
        Err(refused) => return refused,
    };
    if let Err(error) = state.accounts.sign_out_everywhere(&user).await {
        tracing::error!(%error, "ending a user's sessions failed");
        return unavailable();
    }
    state.revocations.revoke(user.id);
    if let Some(relay) = &state.signed_out_relay {
        relay.publish(user.id).await;
    }
    tracing::info!(user = user.id, "signed out everywhere");
    signed_out(&state)
}

/// Who the caller is: the user of an `Authorization: Bearer` connection
/// token, else the account of the session cookie.
async fn me(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(token) = bearer_token(&req) {
        let verified = state.tokens.as_ref().ok_or(TokenError::NotAccepted).and_then(|tokens| tokens.verify(token));
        return match verified {
            Ok(token) => HttpResponse::Ok().json(Me { username: token.name.to_string() }),
            Err(error) => refuse(StatusCode::UNAUTHORIZED, ApiErrorCode::Unauthorized, error.to_string()),
        };
    }
    match session_user(&req, &state).await {
        Ok(Some(user)) => HttpResponse::Ok().json(Me { username: user.name }),
        Ok(None) => refuse(StatusCode::UNAUTHORIZED, ApiErrorCode::Unauthorized, "not signed in"),
        Err(refused) => refused,
    }
}
