//! Requests to the account routes, as a browser page or a script sends them.

use std::net::SocketAddr;

use chat_shared::api::{ApiError, ApiErrorCode, Me};

/// An answer: status, `Set-Cookie` (the session's `name=value` part, and the
/// whole header), and body.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The session cookie set, as a `Cookie` header sends it back (`name=value`).
    pub cookie: Option<String>,
    /// The whole `Set-Cookie` header.
    pub set_cookie: Option<String>,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The code of an error body.
    pub fn error(&self) -> ApiErrorCode {
        serde_json::from_str::<ApiError>(&self.body)
            .unwrap_or_else(|e| panic!("an error body: {e}: {}", self.body))
            .error
            .code
    }

    /// The username of a `me` body.
    pub fn me(&self) -> String {
        serde_json::from_str::<Me>(&self.body).unwrap_or_else(|e| panic!("a me body: {e}: {}", self.body)).username
    }
}

/// Sends a request as a browser page of `origin` would (no origin: a script).
pub async fn request(
    method: reqwest::Method,
    address: SocketAddr,
    path: &str,
    body: Option<serde_json::Value>,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("http://{address}{path}"));
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("the server answers");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let set_cookie = header("set-cookie");
    let retry_after = header("retry-after");
    let cookie = set_cookie.as_deref().and_then(|value| value.split(';').next()).map(str::to_owned);
    Answer {
        status: response.status().as_u16(),
        cookie,
        set_cookie,
        retry_after,
        body: response.text().await.unwrap_or_default(),
    }
}

/// A script's POST of a JSON body.
pub async fn post(address: SocketAddr, path: &str, body: serde_json::Value) -> Answer {
    request(reqwest::Method::POST, address, path, Some(body), None, None).await
}

/// Registers or signs in (`path`) with a username and password.
pub async fn credentials(address: SocketAddr, path: &str, username: &str, password: &str) -> Answer {
    post(address, path, serde_json::json!({ "username": username, "password": password })).await
}

/// `GET /api/me` with a session cookie.
pub async fn me(address: SocketAddr, cookie: &str) -> Answer {
    request(reqwest::Method::GET, address, "/api/me", None, Some(cookie), None).await
}

/// A script's request to the API as the account of `cookie` (no page origin).
pub async fn api(
    method: reqwest::Method,
    address: SocketAddr,
    path: &str,
    body: Option<serde_json::Value>,
    cookie: &str,
) -> Answer {
    request(method, address, path, body, Some(cookie), None).await
}

/// Registers `username` and returns its session cookie.
pub async fn registered(address: SocketAddr, username: &str) -> String {
    let answer = credentials(address, "/api/register", username, "correct horse").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.cookie.expect("a session cookie")
}
