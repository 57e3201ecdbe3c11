//! The HTTP API's bodies (`/api/...`): what the web client, bots and admin
//! scripts send and get back. JSON in and out; a refusal is an HTTP status
//! with an [`ApiError`] body.

use serde::{Deserialize, Serialize};

use crate::RoomName;

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

/// `POST /api/rooms`: create a room; the caller owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoom {
    /// Its name (a room name: lowercase letters, digits, `-`, `_`).
    pub name: String,
    /// Whether only its members may enter it (default: open to everyone).
    #[serde(default)]
    pub private: bool,
}

/// What a member is in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Entered through an invite.
    Member,
    /// May moderate the room.
    Moderator,
    /// Created it.
    Owner,
}

impl Role {
    /// Its name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Owner => "owner",
        }
    }

    /// The role named `name` (an unknown name is a plain member's).
    pub fn from_name(name: &str) -> Self {
        [Self::Owner, Self::Moderator].into_iter().find(|role| role.as_str() == name).unwrap_or(Self::Member)
    }
}

/// A created room as the caller sees it: `POST /api/rooms`, `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    /// Its name.
    pub name: RoomName,
    /// Whether only members may enter it.
    pub private: bool,
    /// What the caller is in it.
    pub role: Role,
}

/// `GET /api/rooms`: the created rooms the caller is a member of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyRooms {
    /// By name.
    pub rooms: Vec<RoomView>,
}

/// `POST /api/rooms/{room}/invites`: an invite link's limits (none: it
/// lasts until revoked, for any number of people).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInvite {
    /// Seconds until the link stops working.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// How many people may enter with it.
    #[serde(default)]
    pub uses: Option<u32>,
}

/// A new invite link. Its code is shown once; the server keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCreated {
    /// The invite's id, to revoke it (`DELETE /api/rooms/{room}/invites/{id}`).
    pub id: i64,
    /// The code to accept (`POST /api/invites/{code}`).
    pub code: String,
    /// The link to hand out: the web client accepts it when opened signed in.
    pub url: String,
}

/// An invite link, as its room's owner and moderators list it (without its code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    /// Its id.
    pub id: i64,
    /// Who created it.
    pub created_by: String,
    /// When it stops working, in ms since the Unix epoch (none: never).
    pub expires_at_ms: Option<i64>,
    /// How many more people may enter with it (none: any number).
    pub uses_left: Option<i64>,
}

/// `GET /api/rooms/{room}/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invites {
    /// Oldest first.
    pub invites: Vec<InviteView>,
}

/// `POST /api/invites/{code}`: the room the caller is now a member of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteAccepted {
    /// The room.
    pub room: RoomName,
}

/// A member of a created room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Their account's name.
    pub name: String,
    /// What they are in the room.
    pub role: Role,
}

/// `GET /api/rooms/{room}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// By name.
    pub members: Vec<MemberView>,
}

/// `POST /api/rooms/{room}/moderators` and `/kicks`: an account (or, for
/// kicks, any name in the room: a guest's too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The name.
    pub user: String,
}

/// `POST /api/rooms/{room}/bans`: an account, or (for guests) an address,
/// for `seconds` or for ever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBan {
    /// An account's name.
    #[serde(default)]
    pub user: Option<String>,
    /// An IP address (a guest's: see the room's member list and the audit log).
    #[serde(default)]
    pub address: Option<String>,
    /// How long (none: until lifted).
    #[serde(default)]
    pub seconds: Option<u64>,
}

/// A ban in force, as moderators list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    /// What to lift it with (`DELETE /api/rooms/{room}/bans/{target}`):
    /// the account's name or the address.
    pub target: String,
    /// Whether it names an address (else an account).
    pub address: bool,
    /// Until when, in ms since the Unix epoch (none: until lifted).
    pub until_ms: Option<i64>,
}

/// `GET /api/rooms/{room}/bans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bans {
    /// Oldest first.
    pub bans: Vec<BanView>,
}

/// `PUT /api/rooms/{room}/slow-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowMode {
    /// Seconds one poster waits between two messages (0: off).
    pub seconds: u32,
}

/// One entry of a room's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    /// Who did it.
    pub actor: String,
    /// What: `ban`, `unban`, `kick`, `remove_member`, `slow_mode`, `moderator`.
    pub action: String,
    /// To whom.
    pub target: String,
    /// More (a ban's length, slow mode's seconds).
    pub detail: String,
    /// When, in ms since the Unix epoch.
    pub at_ms: i64,
}

/// `GET /api/rooms/{room}/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    /// Newest first.
    pub entries: Vec<AuditView>,
}

/// `POST /api/reports`: a message to bring to its room's moderators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateReport {
    /// The room.
    pub room: String,
    /// The message's id.
    pub id: u64,
    /// Why (1 to [`REPORT_REASON_MAX_CHARS`] characters).
    pub reason: String,
}

/// The answer to `POST /api/reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportCreated {
    /// The report's id.
    pub id: i64,
}

/// The answer to `DELETE /api/rooms/{room}/messages/{id}`: the deletion is
/// entry `id` of the room's log (every member's client hears it there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeleted {
    /// The deletion's own id in the room's order.
    pub id: u64,
}

/// The longest reason a report may give, in characters.
pub const REPORT_REASON_MAX_CHARS: usize = 500;

/// A report, as moderators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportView {
    /// The report's id.
    pub id: i64,
    /// The message's id.
    pub message_id: u64,
    /// Who wrote the message.
    pub author: String,
    /// The message as it is stored.
    pub text: String,
    /// Who reported it.
    pub reporter: String,
    /// Why.
    pub reason: String,
    /// `open`, `resolved` or `dismissed`.
    pub status: String,
    /// When it was reported, in ms since the Unix epoch.
    pub created_ms: i64,
}

/// `GET /api/rooms/{room}/reports` (`?all` for closed ones too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reports {
    /// Newest first.
    pub reports: Vec<ReportView>,
}

/// `POST /api/rooms/{room}/reports/{id}`: how a moderator closes a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseReport {
    /// `resolved` (acted on) or `dismissed` (nothing wrong).
    pub status: String,
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
    /// No such room, invite or member (or one the caller may not know of).
    NotFound,
    /// A room with that name exists, or has a history.
    RoomExists,
    /// Not a valid room name.
    InvalidRoom,
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
    fn roles_are_named_as_serde_names_them() {
        for role in [Role::Member, Role::Moderator, Role::Owner] {
            assert_eq!(serde_json::to_string(&role).ok(), Some(format!("\"{}\"", role.as_str())));
            assert_eq!(Role::from_name(role.as_str()), role);
        }
    }

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
