//! The moderation API, as the page calls it: the room's bans (which also
//! tells the page whether the user may moderate the room), kicks, bans,
//! lifting them, slow mode, and the audit log. Answers read by hand (see
//! [`crate::account::Answer::body`]).

use chat_shared::RoomName;
use chat_shared::api::{CloseReport, CreateBan, CreateReport, SlowMode, Target};
use serde::Serialize;
use serde_json::Value;

use crate::account::call;

/// A ban in force: whom (an account's name or an address), and until when (ms; none: until lifted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The account's name or the address.
    pub target: String,
    /// Until when, in ms since the epoch.
    pub until_ms: Option<i64>,
}

/// The bans of `room`, or `None` if the user may not moderate it.
pub async fn bans(room: &RoomName) -> Result<Option<Vec<Ban>>, String> {
    let answer = call("GET", &format!("/api/rooms/{room}/bans"), None).await?;
    if !answer.ok() {
        return Ok(None);
    }
    let body = answer.body();
    let bans = body.get("bans").and_then(Value::as_array).map(|bans| {
        bans.iter()
            .filter_map(|ban| {
                Some(Ban { target: ban.get("target")?.as_str()?.to_owned(), until_ms: ban.get("until_ms")?.as_i64() })
            })
            .collect()
    });
    Ok(Some(bans.unwrap_or_default()))
}

/// Sends one moderation request (with a typed body: `json!` and `Value`'s
/// serializer cost the bundle several KB); the server's refusal if it refused.
async fn act(method: &str, path: String, body: Option<&impl Serialize>) -> Result<(), String> {
    let answer = call(method, &path, body.and_then(|body| serde_json::to_string(body).ok())).await?;
    if answer.ok() { Ok(()) } else { Err(answer.refusal()) }
}

/// Takes `name` out of `room` (they may come back).
pub async fn kick(room: &RoomName, name: &str) -> Result<(), String> {
    act("POST", format!("/api/rooms/{room}/kicks"), Some(&Target { user: name.to_owned() })).await
}

/// Bans the account `name` from `room` for `seconds` (none: until lifted).
pub async fn ban(room: &RoomName, name: &str, seconds: Option<u64>) -> Result<(), String> {
    let ban = CreateBan { user: Some(name.to_owned()), address: None, seconds };
    act("POST", format!("/api/rooms/{room}/bans"), Some(&ban)).await
}

/// Lifts the ban of `target`.
pub async fn unban(room: &RoomName, target: &str) -> Result<(), String> {
    act("DELETE", format!("/api/rooms/{room}/bans/{target}"), None::<&Target>).await
}

/// Sets `room`'s slow mode (0: off).
pub async fn slow_mode(room: &RoomName, seconds: u32) -> Result<(), String> {
    act("PUT", format!("/api/rooms/{room}/slow-mode"), Some(&SlowMode { seconds })).await
}

/// Asks why, then reports message `id` of `room` to its moderators, and
/// says how it went (the browser's own prompt and alert: nothing to draw).
pub async fn report_message(room: &RoomName, id: u64) {
    let Some(window) = web_sys::window() else { return };
    let asked = window.prompt_with_message("Why report this message to the moderators?");
    let Some(reason) = asked.ok().flatten().filter(|reason| !reason.trim().is_empty()) else { return };
    let report = CreateReport { room: room.to_string(), id, reason };
    let said = match act("POST", "/api/reports".to_owned(), Some(&report)).await {
        Ok(()) => format!("Reported to the moderators of #{room}."),
        Err(refused) => refused,
    };
    let _ = window.alert_with_message(&said);
}

/// Deletes message `id` of `room` for everyone (its author, or a moderator).
pub async fn delete_message(room: &RoomName, id: u64) -> Result<(), String> {
    act("DELETE", format!("/api/rooms/{room}/messages/{id}"), None::<&()>).await
}

/// Asks first, then deletes message `id` of `room`; says so if it failed.
pub async fn confirm_and_delete(room: &RoomName, id: u64) {
    let Some(window) = web_sys::window() else { return };
    if window.confirm_with_message("Delete this message for everyone?") != Ok(true) {
        return;
    }
    if let Err(refused) = delete_message(room, id).await {
        let _ = window.alert_with_message(&refused);
    }
}

/// An open report, as a line to show and its id to close it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The report's id.
    pub id: i64,
    /// The reported message's id.
    pub message_id: u64,
    /// "author: text — reason (reporter)".
    pub line: String,
}

/// The open reports of `room`.
pub async fn reports(room: &RoomName) -> Result<Vec<OpenReport>, String> {
    let answer = call("GET", &format!("/api/rooms/{room}/reports"), None).await?;
    let body = answer.body();
    let reports =
        body.get("reports").and_then(Value::as_array).filter(|_| answer.ok()).ok_or_else(|| answer.refusal())?;
    let text = |report: &Value, key: &str| report.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(reports
        .iter()
        .filter_map(|report| {
            let line = format!(
                "{}: “{}” — {} ({})",
                text(report, "author"),
                text(report, "text"),
                text(report, "reason"),
                text(report, "reporter")
            );
            Some(OpenReport { id: report.get("id")?.as_i64()?, message_id: report.get("message_id")?.as_u64()?, line })
        })
        .collect())
}

/// Closes report `id` of `room` as `status` (`resolved`, `dismissed`).
pub async fn close_report(room: &RoomName, id: i64, status: &str) -> Result<(), String> {
    let close = CloseReport { status: status.to_owned() };
    act("POST", format!("/api/rooms/{room}/reports/{id}"), Some(&close)).await
}

/// The newest entries of `room`'s audit log, each as one line of text.
pub async fn audit_log(room: &RoomName) -> Result<Vec<String>, String> {
    let answer = call("GET", &format!("/api/rooms/{room}/audit"), None).await?;
    let body = answer.body();
    let entries =
        body.get("entries").and_then(Value::as_array).filter(|_| answer.ok()).ok_or_else(|| answer.refusal())?;
    let text = |entry: &Value, key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(entries
        .iter()
        .map(|entry| {
            let detail = text(entry, "detail");
            let line = format!("{} · {} {}", text(entry, "actor"), text(entry, "action"), text(entry, "target"));
            if detail.is_empty() { line } else { format!("{line} ({detail})") }
        })
        .collect())
}
