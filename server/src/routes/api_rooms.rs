//! The room routes of the HTTP API: create rooms, list one's own, hand out
//! and accept invite links, list and remove members. JSON in and out, as
//! the signed-in account of the session cookie. Every decision goes through
//! [`crate::policy::rules::decide`], as the socket's do; a private room the
//! caller may not see answers exactly as a room that does not exist (404).
//! A change (a member in or out, a room made private) is announced to every
//! node, whose sessions in the room check again at once.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;

use chat_shared::api::{
    ApiErrorCode, CreateInvite, CreateRoom, InviteAccepted, InviteCreated, InviteView, Invites, MemberView, Members,
    MyRooms, Role, RoomView,
};
use chat_shared::{DEFAULT_ROOM, RoomName};

use super::api_accounts::{foreign, refuse, session_user, unavailable};
use crate::accounts::session_token;
use crate::accounts::store::SessionUser;
use crate::app_state::AppState;
use crate::policy::now_ms;
use crate::policy::rules::{Action, Caller, Denial, Party, decide};
use crate::policy::store::{Accepted, NewInvite};
use crate::store::StoreError;

/// Most members listed by `GET /api/rooms/{room}/members`.
const MEMBERS_LISTED_MAX: i64 = 10_000;

/// Registers every room route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/rooms", web::post().to(create_room))
        .route("/api/rooms", web::get().to(my_rooms))
        .route("/api/rooms/{room}/invites", web::post().to(create_invite))
        .route("/api/rooms/{room}/invites", web::get().to(list_invites))
        .route("/api/rooms/{room}/invites/{id}", web::delete().to(revoke_invite))
        .route("/api/invites/{code}", web::post().to(accept_invite))
        .route("/api/rooms/{room}/members", web::get().to(list_members))
        .route("/api/rooms/{room}/members/{user}", web::delete().to(remove_member));
}

/// A refused request, as its response.
pub type Refused = Box<HttpResponse>;

/// The refusal when the database failed.
fn store_failed(error: &StoreError) -> Refused {
    tracing::error!(%error, "a room request failed");
    Box::new(unavailable())
}

/// A database result as a route's: its failure is the API's `503 unavailable`.
pub trait OrUnavailable<T> {
    /// The value, or the refusal of a failed database.
    fn or_unavailable(self) -> Result<T, Refused>;
}

impl<T> OrUnavailable<T> for Result<T, StoreError> {
    fn or_unavailable(self) -> Result<T, Refused> {
        self.map_err(|error| store_failed(&error))
    }
}

/// A 404 for `what`.
pub fn not_found(what: impl std::fmt::Display) -> Refused {
    Box::new(refuse(StatusCode::NOT_FOUND, ApiErrorCode::NotFound, format!("no {what}")))
}

/// The signed-in account a request acts as (a foreign page's writes refused).
pub async fn account(req: &HttpRequest, state: &AppState, writes: bool) -> Result<SessionUser, Refused> {
    if writes && let Some(refused) = foreign(req, state) {
        return Err(Box::new(refused));
    }
    match session_user(req, state).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => {
            Err(Box::new(refuse(StatusCode::UNAUTHORIZED, ApiErrorCode::Unauthorized, "sign in to manage rooms")))
        }
        Err(refused) => Err(Box::new(refused)),
    }
}

/// The room a path names (404 if it is no room name).
pub fn room_of(name: &str) -> Result<RoomName, Refused> {
    RoomName::parse(name).map_err(|_| not_found(format_args!("room #{name}")))
}

/// The JSON body of a request, or a 400 asking for `shape`.
pub fn body<T: DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<T, Refused> {
    // An empty body is an empty object: every field of these bodies is optional but a room's name.
    let bytes = if bytes.is_empty() { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|_| Box::new(refuse(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidRequest, format!("send {shape}"))))
}

/// Whether `user` may do `action` in `room`, by the database's current word.
pub async fn allowed(state: &AppState, user: &SessionUser, room: &RoomName, action: Action) -> Result<(), Refused> {
    let caller = Caller::Account(user.id);
    let standing = state.policy.fresh_standing(user, room).await.or_unavailable()?;
    decide(caller, standing, action).map_err(|denial| match denial {
        Denial::Hidden => not_found(format_args!("room #{room}")),
        Denial::Forbidden | Denial::Banned => Box::new(refuse(
            StatusCode::FORBIDDEN,
            ApiErrorCode::Forbidden,
            format!("only #{room}'s owner and moderators may do that"),
        )),
    })
}

/// The signed-in account a request acts as, and the room its path names,
/// once it may do `action` there (see [`account`], [`room_of`], [`allowed`]).
pub async fn acting_in(
    req: &HttpRequest,
    state: &AppState,
    room_name: &str,
    writes: bool,
    action: Action,
) -> Result<(SessionUser, RoomName), Refused> {
    let user = account(req, state, writes).await?;
    let room = room_of(room_name)?;
    allowed(state, &user, &room, action).await?;
    Ok((user, room))
}

/// The response of a route's result.
pub fn respond(result: Result<HttpResponse, Refused>) -> HttpResponse {
    result.unwrap_or_else(|refused| *refused)
}

async fn create_room(req: HttpRequest, bytes: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, true).await?;
            let asked: CreateRoom = body(&bytes, "{\"name\", \"private\"}")?;
            let room = RoomName::parse(asked.name).map_err(|error| {
                Box::new(refuse(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidRoom, error.to_string()))
            })?;
            let exists = || {
                let message = format!("#{room} already exists; pick another name");
                Box::new(refuse(StatusCode::CONFLICT, ApiErrorCode::RoomExists, message))
            };
            // A room people already talk in is theirs: it cannot be taken over (or hidden from them).
            let has_history = state.store.latest_id(&room).await.or_unavailable()?.is_some();
            if room.as_str() == DEFAULT_ROOM || has_history {
                return Err(exists());
            }
            let created = state.policy.store().create_room(room.as_str(), asked.private, user.id, now_ms()).await;
            if !created.or_unavailable()? {
                return Err(exists());
            }
            tracing::info!(%room, private = asked.private, owner = user.id, "room created");
            // Anyone already in it who may not stay leaves, on every node.
            state.policy.changed(&room).await;
            Ok(HttpResponse::Created().json(RoomView { name: room, private: asked.private, role: Role::Owner }))
        }
        .await,
    )
}

async fn my_rooms(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, false).await?;
            let rooms = state.policy.store().rooms_of(user.id).await.or_unavailable()?;
            let rooms = rooms
                .into_iter()
                .filter_map(|room| {
                    Some(RoomView { name: RoomName::parse(room.name).ok()?, private: room.private, role: room.role })
                })
                .collect();
            Ok(HttpResponse::Ok().json(MyRooms { rooms }))
        }
        .await,
    )
}

/// The origin links point at: `--public-origin`, else the request's own.
fn origin(req: &HttpRequest, state: &AppState) -> String {
    state.public_origin.clone().unwrap_or_else(|| {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    })
}

async fn create_invite(
    req: HttpRequest,
    path: web::Path<String>,
    bytes: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let (user, room) = acting_in(&req, &state, &path, true, Action::ManageMembers).await?;
            let asked: CreateInvite = body(&bytes, "{\"expires_in\"?, \"uses\"?}")?;
            let now = now_ms();
            let expires_ms = asked.expires_in.map(|seconds| {
                let ms = i64::try_from(Duration::from_secs(seconds).as_millis()).unwrap_or(i64::MAX);
                now.saturating_add(ms)
            });
            // 128 random bits; the store keeps their hash only.
            let code = session_token::fresh_short();
            let code_hash = session_token::stored_form(&code);
            let invite = NewInvite {
                code_hash: &code_hash,
                room: room.as_str(),
                created_by: user.id,
                now_ms: now,
                expires_ms,
                uses: asked.uses.map(i64::from),
            };
            let id = state.policy.store().create_invite(invite).await.or_unavailable()?;
            tracing::info!(%room, invite = id, by = user.id, "invite link created");
            let url = format!("{}/#/invite/{code}", origin(&req, &state));
            Ok(HttpResponse::Created().json(InviteCreated { id, code, url }))
        }
        .await,
    )
}

async fn list_invites(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (_, room) = acting_in(&req, &state, &path, false, Action::ManageMembers).await?;
            let invites = state.policy.store().invites(room.as_str(), now_ms()).await.or_unavailable()?;
            let invites = invites
                .into_iter()
                .map(|invite| InviteView {
                    id: invite.id,
                    created_by: invite.created_by,
                    expires_at_ms: invite.expires_ms,
                    uses_left: invite.uses_left,
                })
                .collect();
            Ok(HttpResponse::Ok().json(Invites { invites }))
        }
        .await,
    )
}

async fn revoke_invite(req: HttpRequest, path: web::Path<(String, i64)>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (room, id) = path.into_inner();
            let (user, room) = acting_in(&req, &state, &room, true, Action::ManageMembers).await?;
            if !state.policy.store().revoke_invite(room.as_str(), id).await.or_unavailable()? {
                return Err(not_found(format_args!("invite {id} in #{room}")));
            }
            tracing::info!(%room, invite = id, by = user.id, "invite link revoked");
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

async fn accept_invite(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, true).await?;
            let code_hash = session_token::stored_form(&path);
            let accepted = state.policy.store().accept_invite(&code_hash, user.id, now_ms()).await;
            let room = match accepted.or_unavailable()? {
                Accepted::Joined(room) => {
                    let room = room_of(&room)?;
                    tracing::info!(%room, user = user.id, "joined through an invite link");
                    // This node (and the others) may remember the account as a stranger.
                    state.policy.changed_for(&room, Party::User(user.id)).await;
                    room
                }
                Accepted::AlreadyMember(room) => room_of(&room)?,
                Accepted::Invalid => {
                    return Err(not_found("such invite link (it may have expired, been used up or revoked)"));
                }
            };
            Ok(HttpResponse::Ok().json(InviteAccepted { room }))
        }
        .await,
    )
}

async fn list_members(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, false).await?;
            let room = room_of(&path)?;
            let caller = Caller::Account(user.id);
            let standing = state.policy.fresh_standing(&user, &room).await.or_unavailable()?;
            if !standing.created || decide(caller, standing, Action::Read).is_err() {
                return Err(not_found(format_args!("room #{room}")));
            }
            let members = state.policy.store().members(room.as_str(), MEMBERS_LISTED_MAX).await;
            let members = members
                .or_unavailable()?
                .into_iter()
                .map(|member| MemberView { name: member.name, role: member.role })
                .collect();
            Ok(HttpResponse::Ok().json(Members { members }))
        }
        .await,
    )
}

/// Removes a member: its owner and moderators may remove anyone but the
/// owner; any member may remove themselves (leave).
async fn remove_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, true).await?;
            let (room, name) = path.into_inner();
            let room = room_of(&room)?;
            let target = match state.accounts.user_named(&name).await.or_unavailable()? {
                Some(target) if target.id == user.id => target,
                target => {
                    allowed(&state, &user, &room, Action::ManageMembers).await?;
                    target.ok_or_else(|| not_found(format_args!("member {name} in #{room}")))?
                }
            };
            match state.policy.role_of(target.id, &room).await.or_unavailable()? {
                None => return Err(not_found(format_args!("member {name} in #{room}"))),
                Some(Role::Owner) => {
                    let message = format!("the owner of #{room} cannot be removed");
                    return Err(Box::new(refuse(StatusCode::FORBIDDEN, ApiErrorCode::Forbidden, message)));
                }
                Some(Role::Member | Role::Moderator) => {}
            }
            state.policy.store().remove_member(room.as_str(), target.id).await.or_unavailable()?;
            if target.id != user.id {
                super::api_moderation::audit(&state, &room, &user, "remove_member", &target.name, "").await;
            }
            tracing::info!(%room, member = target.id, by = user.id, "member removed");
            // Their sockets in the room, on every node, leave it now.
            state.policy.changed_for(&room, Party::User(target.id)).await;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}
