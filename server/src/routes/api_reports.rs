//! The report queue: any signed-in member who may read a room reports one of
//! its messages to the room's moderators (`POST /api/reports`); moderators
//! and administrators list the open reports with the messages as stored
//! (`GET /api/rooms/{room}/reports`, `?all` for the closed ones too) and
//! resolve or dismiss them (`POST /api/rooms/{room}/reports/{id}`), which
//! goes to the audit log.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use chat_shared::RoomName;
use chat_shared::api::{
    ApiErrorCode, CloseReport, CreateReport, REPORT_REASON_MAX_CHARS, ReportCreated, ReportView, Reports,
};

use super::api_accounts::refuse;
use super::api_messages::stored_message;
use super::api_moderation::audit;
use super::api_rooms::{OrUnavailable, Refused, account, acting_in, allowed, body, not_found, respond, room_of};
use crate::app_state::AppState;
use crate::policy::now_ms;
use crate::policy::rules::Action;

/// Open reports one member may have in one room at once.
const OPEN_REPORTS_PER_MEMBER: i64 = 20;

/// Reports listed at most.
const REPORTS_LISTED_MAX: i64 = 200;

/// Registers the report routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/reports", web::post().to(report))
        .route("/api/rooms/{room}/reports", web::get().to(list_reports))
        .route("/api/rooms/{room}/reports/{id}", web::post().to(close_report));
}

fn invalid(message: impl Into<String>) -> Refused {
    Box::new(refuse(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidRequest, message))
}

/// The message `id` of `room` as stored: (author, text).
async fn message(state: &AppState, room: &RoomName, id: u64) -> Result<Option<(String, String)>, Refused> {
    let found = stored_message(state, room, id).await?;
    Ok(found.map(|message| (message.nick.to_string(), message.text.to_string())))
}

async fn report(req: HttpRequest, bytes: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, true).await?;
            let asked: CreateReport = body(&bytes, "{\"room\", \"id\", \"reason\"}")?;
            let room = room_of(&asked.room)?;
            let reason = asked.reason.trim();
            if reason.is_empty() || reason.chars().count() > REPORT_REASON_MAX_CHARS {
                return Err(invalid(format!("a reason has 1 to {REPORT_REASON_MAX_CHARS} characters")));
            }
            // Only who may read the room may report in it (a private room's stranger gets 404).
            allowed(&state, &user, &room, Action::Read).await?;
            // A deleted message is no longer there to report.
            if stored_message(&state, &room, asked.id).await?.is_none_or(|message| message.deleted) {
                return Err(not_found(format_args!("message {} in #{room}", asked.id)));
            }
            let open = state.policy.store().open_reports_by(room.as_str(), &user.name).await;
            if open.or_unavailable()? >= OPEN_REPORTS_PER_MEMBER {
                let message = "you have many open reports in this room; wait for the moderators";
                return Err(Box::new(refuse(StatusCode::TOO_MANY_REQUESTS, ApiErrorCode::RateLimited, message)));
            }
            let message_id = i64::try_from(asked.id).map_err(|_| invalid("no such message id"))?;
            let id = state.policy.store().report(room.as_str(), message_id, &user.name, reason, now_ms()).await;
            let id = id.or_unavailable()?;
            tracing::info!(%room, report = id, message = asked.id, by = %user.name, "message reported");
            Ok(HttpResponse::Created().json(ReportCreated { id }))
        }
        .await,
    )
}

async fn list_reports(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (_, room) = acting_in(&req, &state, &path, false, Action::Moderate).await?;
            let open_only = !req.query_string().split('&').any(|pair| pair == "all");
            let stored = state.policy.store().reports(room.as_str(), open_only, REPORTS_LISTED_MAX).await;
            let mut reports = Vec::new();
            for report in stored.or_unavailable()? {
                let message_id = u64::try_from(report.message_id).unwrap_or_default();
                let (author, text) = message(&state, &room, message_id).await?.unwrap_or_default();
                reports.push(ReportView {
                    id: report.id,
                    message_id,
                    author,
                    text,
                    reporter: report.reporter,
                    reason: report.reason,
                    status: report.status,
                    created_ms: report.created_ms,
                });
            }
            Ok(HttpResponse::Ok().json(Reports { reports }))
        }
        .await,
    )
}

async fn close_report(
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    bytes: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        async {
            let user = account(&req, &state, true).await?;
            let (room, id) = path.into_inner();
            let room = room_of(&room)?;
            let asked: CloseReport = body(&bytes, "{\"status\": \"resolved\" | \"dismissed\"}")?;
            let status = asked.status.as_str();
            if !matches!(status, "resolved" | "dismissed") {
                return Err(invalid("a report is closed as \"resolved\" or \"dismissed\""));
            }
            allowed(&state, &user, &room, Action::Moderate).await?;
            let closed = state.policy.store().close_report(room.as_str(), id, status, &user.name, now_ms()).await;
            if !closed.or_unavailable()? {
                return Err(not_found(format_args!("open report {id} in #{room}")));
            }
            let action = if status == "resolved" { "resolve_report" } else { "dismiss_report" };
            audit(&state, &room, &user, action, &format!("report {id}"), "").await;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}
