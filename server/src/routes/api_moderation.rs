//! The moderation routes of the HTTP API: moderators appointed, kicks,
//! bans (an account, or a guest's address; for a while or until lifted),
//! slow mode, and the audit log every one of these actions is written to.
//! Owners, moderators and server administrators may use them (appointing
//! moderators: owners and administrators); the room's owner and moderators
//! cannot be kicked or banned. Each change reaches every node at once: the
//! sessions of a banned or kicked user leave the room.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use chat_shared::RoomName;
use chat_shared::api::{ApiErrorCode, AuditLog, AuditView, BanView, Bans, CreateBan, Role, SlowMode, Target};

use super::api_accounts::{refuse, unavailable};
use super::api_rooms::{OrUnavailable, Refused, account, acting_in, allowed, body, not_found, respond, room_of};
use crate::accounts::name_key::name_key;
use crate::accounts::store::SessionUser;
use crate::app_state::AppState;
use crate::policy::kicks::AddressBan;
use crate::policy::known::KnownBan;
use crate::policy::now_ms;
use crate::policy::rules::{Action, Party};
use crate::policy::store::{AuditEntry, NewBan, ban_target, party_of_target};

/// The longest slow mode: a day.
const SLOW_MODE_MAX_SECS: u32 = 24 * 3600;

/// Entries of the audit log listed at most.
const AUDIT_LISTED_MAX: i64 = 500;

/// Registers every moderation route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/rooms/{room}/moderators", web::post().to(appoint_moderator))
        .route("/api/rooms/{room}/kicks", web::post().to(kick))
        .route("/api/rooms/{room}/bans", web::post().to(ban))
        .route("/api/rooms/{room}/bans", web::get().to(list_bans))
        .route("/api/rooms/{room}/bans/{target}", web::delete().to(unban))
        .route("/api/rooms/{room}/slow-mode", web::put().to(set_slow_mode))
        .route("/api/rooms/{room}/audit", web::get().to(audit_log));
}

/// Writes one action to `room`'s audit log (a failure is logged: the action stands).
pub async fn audit(state: &AppState, room: &RoomName, actor: &SessionUser, action: &str, target: &str, detail: &str) {
    let entry = AuditEntry {
        room: room.to_string(),
        actor: actor.name.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_owned(),
        at_ms: now_ms(),
    };
    tracing::info!(%room, actor = %actor.name, action, target, detail, "moderation");
    if let Err(error) = state.policy.store().record(&entry).await {
        tracing::error!(%error, %room, action, "cannot write the audit log");
    }
}

fn conflict(code: ApiErrorCode, status: StatusCode, message: String) -> Refused {
    Box::new(refuse(status, code, message))
}

/// The account named `name`, which must not moderate `room` (a moderator
/// cannot kick or ban another, nor the owner).
async fn ordinary_account(state: &AppState, room: &RoomName, name: &str) -> Result<Option<SessionUser>, Refused> {
    let Some(user) = state.accounts.user_named(name).await.or_unavailable()? else {
        return Ok(None);
    };
    let standing = state.policy.fresh_standing(&user, room).await.or_unavailable()?;
    if standing.admin || matches!(standing.role, Some(Role::Owner | Role::Moderator)) {
        let message = format!("{} moderates #{room}: they cannot be kicked or banned", user.name);
        return Err(conflict(ApiErrorCode::Forbidden, StatusCode::FORBIDDEN, message));
    }
    Ok(Some(user))
}

async fn appoint_moderator(
    req: HttpRequest,
    path: web::Path<String>,
    bytes: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let (user, room) = acting_in(&req, &state, &path, true, Action::AppointModerators).await?;
            let asked: Target = body(&bytes, "{\"user\"}")?;
            let named = state.accounts.user_named(&asked.user).await.or_unavailable()?;
            let target = named.ok_or_else(|| not_found(format_args!("account {}", asked.user)))?;
            let set = state.policy.store().set_role(room.as_str(), target.id, Role::Moderator, now_ms()).await;
            if !set.or_unavailable()? {
                let message = format!("{} owns #{room}", target.name);
                return Err(conflict(ApiErrorCode::InvalidRequest, StatusCode::CONFLICT, message));
            }
            audit(&state, &room, &user, "moderator", &target.name, "").await;
            state.policy.changed_for(&room, Party::User(target.id)).await;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

async fn kick(
    req: HttpRequest,
    path: web::Path<String>,
    bytes: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let (user, room) = acting_in(&req, &state, &path, true, Action::Moderate).await?;
            let asked: Target = body(&bytes, "{\"user\"}")?;
            // An account's name, or any name in the room (a guest's).
            let name = ordinary_account(&state, &room, &asked.user).await?.map_or(asked.user, |target| target.name);
            audit(&state, &room, &user, "kick", &name, "").await;
            state.policy.kick(&room, &name, None).await;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

/// What a ban or unban names: an account by its name, or an address.
async fn ban_subject(
    state: &AppState,
    room: &RoomName,
    user: Option<&str>,
    address: Option<&str>,
) -> Result<(String, String), Refused> {
    match (user, address) {
        (Some(name), None) => {
            let target = ordinary_account(state, room, name).await?;
            let target = target.ok_or_else(|| not_found(format_args!("account {name}")))?;
            Ok((ban_target(Party::User(target.id)).unwrap_or_default(), target.name))
        }
        (None, None) => Err(conflict(
            ApiErrorCode::InvalidRequest,
            StatusCode::BAD_REQUEST,
            "name a \"user\" or an \"address\"".into(),
        )),
        (None, Some(address)) => {
            let address: IpAddr = address.trim().parse().map_err(|_| {
                let message = format!("“{address}” is not an IP address");
                conflict(ApiErrorCode::InvalidRequest, StatusCode::BAD_REQUEST, message)
            })?;
            Ok((ban_target(Party::Address(address)).unwrap_or_default(), address.to_string()))
        }
        _ => Err(conflict(
            ApiErrorCode::InvalidRequest,
            StatusCode::BAD_REQUEST,
            "name a \"user\" or an \"address\", not both".to_owned(),
        )),
    }
}

async fn ban(req: HttpRequest, path: web::Path<String>, bytes: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (user, room) = acting_in(&req, &state, &path, true, Action::Moderate).await?;
            let asked: CreateBan = body(&bytes, "{\"user\" | \"address\", \"seconds\"?}")?;
            let now = now_ms();
            let until_ms = asked.seconds.map(|seconds| {
                now.saturating_add(i64::try_from(Duration::from_secs(seconds).as_millis()).unwrap_or(i64::MAX))
            });
            if let (Some(name), None) = (asked.user.as_deref(), asked.address.as_deref())
                && state.accounts.user_named(name).await.or_unavailable()?.is_none()
            {
                return ban_guest(&state, &room, &user, name, until_ms, asked.seconds).await;
            }
            let (target, label) = ban_subject(&state, &room, asked.user.as_deref(), asked.address.as_deref()).await?;
            let record =
                NewBan { room: room.as_str(), target: &target, label: &label, until_ms, by: user.id, now_ms: now };
            state.policy.store().ban(record).await.or_unavailable()?;
            let detail = asked.seconds.map_or_else(|| "until lifted".to_owned(), |seconds| format!("for {seconds} s"));
            audit(&state, &room, &user, "ban", &label, &detail).await;
            // The banned leave the room on every node.
            state.policy.ban(&room, KnownBan { target: target.clone(), until_ms }).await;
            let address = target.starts_with("address:");
            Ok(HttpResponse::Created().json(BanView { target: label, address, until_ms }))
        }
        .await,
    )
}

/// Most names of a room read to find a guest by name.
const GUEST_LOOKUP_MAX: usize = 10_000;

/// Bans the guest (or token user) named `name` in `room` by its address,
/// which only the node its socket is on knows: the ban goes out as a kick
/// that carries it, and the guest's session stores the ban of its own
/// address (listed then by that address, and lifted by it). `202`: made
/// where the guest is, a moment later.
async fn ban_guest(
    state: &AppState,
    room: &RoomName,
    moderator: &SessionUser,
    name: &str,
    until_ms: Option<i64>,
    seconds: Option<u64>,
) -> Result<HttpResponse, Refused> {
    let members = state.presence.members_now(room, GUEST_LOOKUP_MAX).await;
    let members = members.map_err(|_| Box::new(unavailable()))?;
    let present = members.iter().any(|member| name_key(member.as_str()) == name_key(name));
    if !present && members.len() < GUEST_LOOKUP_MAX {
        return Err(not_found(format_args!("account or guest named {name} in #{room}")));
    }
    let detail = seconds.map_or_else(|| "until lifted".to_owned(), |seconds| format!("for {seconds} s"));
    audit(state, room, moderator, "ban", &format!("{name} (guest, by address)"), &detail).await;
    state.policy.kick(room, name, Some(AddressBan { until_ms, by: moderator.id })).await;
    Ok(HttpResponse::Accepted().json(BanView { target: name.to_owned(), address: true, until_ms }))
}

async fn list_bans(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (_, room) = acting_in(&req, &state, &path, false, Action::Moderate).await?;
            let bans = state.policy.store().bans(room.as_str(), now_ms()).await.or_unavailable()?;
            let bans = bans
                .into_iter()
                .map(|ban| BanView {
                    address: ban.target.starts_with("address:"),
                    target: ban.label,
                    until_ms: ban.until_ms,
                })
                .collect();
            Ok(HttpResponse::Ok().json(Bans { bans }))
        }
        .await,
    )
}

async fn unban(req: HttpRequest, path: web::Path<(String, String)>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (room, subject) = path.into_inner();
            let (user, room) = acting_in(&req, &state, &room, true, Action::Moderate).await?;
            let (target, label) = if subject.parse::<IpAddr>().is_ok() {
                ban_subject(&state, &room, None, Some(&subject)).await?
            } else {
                let named = state.accounts.user_named(&subject).await.or_unavailable()?;
                let named = named.ok_or_else(|| not_found(format_args!("ban of {subject} in #{room}")))?;
                (ban_target(Party::User(named.id)).unwrap_or_default(), named.name)
            };
            if !state.policy.store().unban(room.as_str(), &target).await.or_unavailable()? {
                return Err(not_found(format_args!("ban of {subject} in #{room}")));
            }
            audit(&state, &room, &user, "unban", &label, "").await;
            match party_of_target(&target) {
                Some(party) => state.policy.changed_for(&room, party).await,
                None => state.policy.changed(&room).await,
            }
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

async fn set_slow_mode(
    req: HttpRequest,
    path: web::Path<String>,
    bytes: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, true).await?;
            let room = room_of(&path)?;
            let asked: SlowMode = body(&bytes, "{\"seconds\"}")?;
            if asked.seconds > SLOW_MODE_MAX_SECS {
                let message = format!("slow mode is at most {SLOW_MODE_MAX_SECS} seconds");
                return Err(conflict(ApiErrorCode::InvalidRequest, StatusCode::BAD_REQUEST, message));
            }
            allowed(&state, &user, &room, Action::Moderate).await?;
            let set = state.policy.store().set_slow_mode(room.as_str(), asked.seconds).await;
            set.or_unavailable()?;
            audit(&state, &room, &user, "slow_mode", &format!("#{room}"), &format!("{} s", asked.seconds)).await;
            state.policy.changed_for(&room, Party::Anyone).await;
            Ok(HttpResponse::Ok().json(asked))
        }
        .await,
    )
}

async fn audit_log(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (_, room) = acting_in(&req, &state, &path, false, Action::Moderate).await?;
            let entries = state.policy.store().audit_log(room.as_str(), AUDIT_LISTED_MAX).await;
            let entries = entries
                .or_unavailable()?
                .into_iter()
                .map(|entry| AuditView {
                    actor: entry.actor,
                    action: entry.action,
                    target: entry.target,
                    detail: entry.detail,
                    at_ms: entry.at_ms,
                })
                .collect();
            Ok(HttpResponse::Ok().json(AuditLog { entries }))
        }
        .await,
    )
}
