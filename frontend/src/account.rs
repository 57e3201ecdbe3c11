//! The account API, as the page calls it: who is signed in, registering,
//! signing in and out. Same-origin `fetch`, so the session cookie goes with
//! every call (and with the socket's upgrade); the page never sees the
//! token (the cookie is `HttpOnly`).

use chat_shared::api::{ApiError, Credentials, Me};
use gloo_net::http::{Request, Response};

/// Register a new account, or sign in to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `POST /api/register`.
    Register,
    /// `POST /api/login`.
    SignIn,
}

/// What to tell the user when a call fails.
fn failure(response: Option<&Response>, body: Option<ApiError>) -> String {
    match (response, body) {
        (_, Some(refused)) => refused.error.message,
        (Some(response), None) => format!("the server answered {}", response.status()),
        (None, None) => "the server cannot be reached; try again".to_owned(),
    }
}

async fn read_error(response: &Response) -> String {
    failure(Some(response), response.json::<ApiError>().await.ok())
}

/// The signed-in account's name; `None` for a guest.
pub async fn current() -> Result<Option<String>, String> {
    let response = Request::get("/api/me").send().await.map_err(|_| failure(None, None))?;
    match response.status() {
        200 => response.json::<Me>().await.map(|me| Some(me.username)).map_err(|_| failure(Some(&response), None)),
        401 => Ok(None),
        _ => Err(read_error(&response).await),
    }
}

/// Registers or signs in; the account's name as the server spells it.
pub async fn enter(entry: Entry, username: String, password: String) -> Result<String, String> {
    let path = match entry {
        Entry::Register => "/api/register",
        Entry::SignIn => "/api/login",
    };
    let request = Request::post(path).json(&Credentials { username, password }).map_err(|_| failure(None, None))?;
    let response = request.send().await.map_err(|_| failure(None, None))?;
    if response.ok() {
        return response.json::<Me>().await.map(|me| me.username).map_err(|_| failure(Some(&response), None));
    }
    Err(read_error(&response).await)
}

/// Signs this browser out, or (`everywhere`) every session of the account.
pub async fn sign_out(everywhere: bool) -> Result<(), String> {
    let path = if everywhere { "/api/logout-all" } else { "/api/logout" };
    let response = Request::post(path).send().await.map_err(|_| failure(None, None))?;
    if response.ok() { Ok(()) } else { Err(read_error(&response).await) }
}
