//! Changes to messages through the HTTP API: `DELETE
//! /api/rooms/{room}/messages/{id}` deletes a message, by its author (a
//! signed-in account that wrote it) or by the room's moderators and the
//! server's administrators.
//!
//! A deletion is an entry of the room's log in its own right (see
//! [`crate::store::NewMessage::deletion`]): the hub stores it in the room's
//! order and relays it like a message, so members online hear it at once
//! on every node, and a client that was away hears it when it resumes.

use actix_web::{HttpRequest, HttpResponse, web};

use chat_shared::api::MessageDeleted;
use chat_shared::{ChatMessage, Nickname, RoomName};

use super::api_moderation::audit;
use super::api_rooms::{OrUnavailable, Refused, acting_in, allowed, not_found, respond};
use crate::accounts::name_key::name_key;
use crate::app_state::AppState;
use crate::hub::ChangeFailed;
use crate::policy::now_ms;
use crate::policy::rules::Action;
use crate::store::{Appended, NewMessage, Page};

/// Registers the message routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/rooms/{room}/messages/{id}", web::delete().to(delete_message));
}

/// Message `id` of `room` as stored (a change is no message: `None`).
pub async fn stored_message(state: &AppState, room: &RoomName, id: u64) -> Result<Option<ChatMessage>, Refused> {
    let page = state.store.page(room, Page::After { id: id.saturating_sub(1), limit: 1 }).await;
    let found = page.or_unavailable()?.into_iter().find(|message| message.id == id);
    Ok(found.filter(|message| message.deletes.is_none()))
}

async fn delete_message(req: HttpRequest, path: web::Path<(String, u64)>, state: web::Data<AppState>) -> HttpResponse {
    respond(
        async {
            let (room, id) = path.into_inner();
            // A stranger to a private room learns nothing of it: 404, as for no room.
            let (user, room) = acting_in(&req, &state, &room, true, Action::Read).await?;
            let Some(message) = stored_message(&state, &room, id).await? else {
                return Err(not_found(format_args!("message {id} in #{room}")));
            };
            let own = name_key(message.nick.as_str()) == name_key(&user.name);
            if !own {
                allowed(&state, &user, &room, Action::Moderate).await?;
            }
            let by = Nickname::parse(user.name.as_str()).map_err(|_| not_found(format_args!("user {}", user.name)))?;
            let deletion = NewMessage::deletion(room.clone(), id, by, u64::try_from(now_ms()).unwrap_or_default());
            let change = match state.hub.change(deletion).await {
                Ok(Appended::New(change) | Appended::Duplicate(change)) => change,
                Ok(Appended::NoTarget) => return Err(not_found(format_args!("message {id} in #{room}"))),
                Err(ChangeFailed::HubStopped | ChangeFailed::StoreUnavailable) => {
                    return Err(Box::new(super::api_accounts::unavailable()));
                }
            };
            tracing::info!(%room, message = id, deletion = change.id, by = %user.name, own, "message deleted");
            if !own {
                audit(&state, &room, &user, "delete_message", message.nick.as_str(), &format!("message {id}")).await;
            }
            // Its reports are answered: the message is gone.
            let message_id = i64::try_from(id).unwrap_or(i64::MAX);
            let resolved = state.policy.store().resolve_reports_of(room.as_str(), message_id, &user.name, now_ms());
            if let Err(error) = resolved.await {
                tracing::warn!(%error, %room, message = id, "could not resolve the deleted message's reports");
            }
            Ok(HttpResponse::Ok().json(MessageDeleted { id: change.id }))
        }
        .await,
    )
}
