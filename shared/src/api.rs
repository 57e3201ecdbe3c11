//! The HTTP API's bodies (`/api/...`): what the web client, bots and admin
//! scripts send and get back. JSON in and out; a refusal is an HTTP status
//! with an [`ApiError`] body.

use serde::{Deserialize, Serialize};

/// The shortest password an account may have, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;

/// The longest password accepted, in bytes: hashing cost grows with it, and
/// no passphrase needs more.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// `POST /api/register` and `POST /api/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The account's name, which is also its name in every room.
    pub username: String,
    /// Its password (sent over the connection, never stored or logged).
    pub password: String,
}

/// Who the caller is: the answer to `GET /api/me`, `register` and `login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The account's name, as registered.
    pub username: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    /// The body was not what the route takes.
    InvalidRequest,
    /// The username is not a valid nickname.
    InvalidUsername,
    /// The password is too short or too long.
    InvalidPassword,
    /// An account with that name (or one that looks the same) exists.
    UsernameTaken,
    /// Wrong username or password (which of the two is not said).
    InvalidCredentials,
    /// Not signed in (or the session ended).
    Unauthorized,
    /// Signed in, but not allowed; or the request came from a foreign page.
    Forbidden,
    /// Too many attempts; retry after the `Retry-After` seconds.
    RateLimited,
    /// The server cannot answer now (its database is away, or it is busy).
    Unavailable,
}

/// The body of every refusal: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: ApiErrorDetail,
}

/// The code and message of an [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// Machine-readable reason.
    pub code: ApiErrorCode,
    /// Human-readable explanation, fit to show to the user.
    pub message: String,
}

impl ApiError {
    /// A refusal with `code` and `message`.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self { error: ApiErrorDetail { code, message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_documented_shape() {
        let refused = ApiError::new(ApiErrorCode::UsernameTaken, "taken");
        assert_eq!(
            serde_json::to_string(&refused).expect("encodes"),
            r#"{"error":{"code":"username_taken","message":"taken"}}"#
        );
        let credentials: Credentials =
            serde_json::from_str(r#"{"username":"alice","password":"correct horse"}"#).expect("decodes");
        assert_eq!(credentials.username, "alice");
        assert_eq!(
            serde_json::to_string(&Me { username: "alice".into() }).expect("encodes"),
            r#"{"username":"alice"}"#
        );
    }
}
