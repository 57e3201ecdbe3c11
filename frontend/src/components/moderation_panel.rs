//! The moderation view of the room on screen, for its owner, moderators and
//! the server's administrators (the page asks the room's bans: an answer
//! means the user may moderate): the open reports (delete the message,
//! resolve or dismiss),
//! kick or ban someone by name, set slow mode, lift bans, read the audit log. Usable on a phone (it sits in the
//! sidebar the menu opens).

use chat_shared::RoomName;
use yew::platform::spawn_local;
use yew::prelude::*;

use super::input_value;
use crate::moderation_api::{self, Ban, OpenReport};

/// Props of [`ModerationPanel`].
#[derive(Properties, PartialEq)]
pub struct ModerationPanelProps {
    /// The room on screen.
    pub room: RoomName,
    /// Told whether the user may moderate the room, once the page knows.
    #[prop_or_default]
    pub on_moderates: Callback<bool>,
}

/// What the user asked the panel to do.
#[derive(Clone, Copy, PartialEq)]
enum Verb {
    Kick,
    BanDay,
    Ban,
}

/// The moderation part of the sidebar (nothing for those who may not moderate).
#[function_component]
pub fn ModerationPanel(props: &ModerationPanelProps) -> Html {
    let bans = use_state(|| None::<Vec<Ban>>);
    let audit = use_state(Vec::<String>::new);
    let reports = use_state(Vec::<OpenReport>::new);
    let outcome = use_state(|| None::<Result<String, String>>);
    // Bumped after every action, to read the bans (and the log) again.
    let revision = use_state(|| 0_u32);
    let (name, seconds) = (use_node_ref(), use_node_ref());
    {
        let (bans, audit, reports) = (bans.setter(), audit.setter(), reports.setter());
        let on_moderates = props.on_moderates.clone();
        use_effect_with((props.room.clone(), *revision), move |(room, _)| {
            let room = room.clone();
            spawn_local(async move {
                let listed = moderation_api::bans(&room).await.ok().flatten();
                let may_moderate = listed.is_some();
                on_moderates.emit(may_moderate);
                bans.set(listed);
                if !may_moderate {
                    return;
                }
                if let Ok(open) = moderation_api::reports(&room).await {
                    reports.set(open);
                }
                if let Ok(lines) = moderation_api::audit_log(&room).await {
                    audit.set(lines);
                }
            });
        });
    }
    let Some(listed) = &*bans else { return html! {} };
    let done = {
        let (outcome, revision) = (outcome.setter(), revision.clone());
        move |result: Result<(), String>, what: String| {
            outcome.set(Some(result.map(|()| what)));
            revision.set(*revision + 1);
        }
    };
    let act = |verb: Verb| {
        let (room, name, done) = (props.room.clone(), name.clone(), done.clone());
        Callback::from(move |_: MouseEvent| {
            let target = input_value(&name).trim().to_owned();
            if target.is_empty() {
                return;
            }
            let (room, done) = (room.clone(), done.clone());
            spawn_local(async move {
                let (result, what) = match verb {
                    Verb::Kick => (moderation_api::kick(&room, &target).await, format!("{target} kicked")),
                    Verb::BanDay => {
                        (moderation_api::ban(&room, &target, Some(86_400)).await, format!("{target} banned for a day"))
                    }
                    Verb::Ban => (moderation_api::ban(&room, &target, None).await, format!("{target} banned")),
                };
                done(result, what);
            });
        })
    };
    let set_slow_mode = {
        let (room, seconds, done) = (props.room.clone(), seconds.clone(), done.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let value = input_value(&seconds).trim().parse::<u32>().unwrap_or(0);
            let (room, done) = (room.clone(), done.clone());
            spawn_local(async move {
                let what = if value == 0 { "slow mode off".to_owned() } else { format!("slow mode: {value} s") };
                done(moderation_api::slow_mode(&room, value).await, what);
            });
        })
    };
    let lift = |target: String| {
        let (room, done) = (props.room.clone(), done.clone());
        Callback::from(move |_: MouseEvent| {
            let (room, target, done) = (room.clone(), target.clone(), done.clone());
            spawn_local(async move {
                let what = format!("{target}'s ban lifted");
                done(moderation_api::unban(&room, &target).await, what);
            });
        })
    };
    let close = |id: i64, status: &'static str| {
        let (room, done) = (props.room.clone(), done.clone());
        Callback::from(move |_: MouseEvent| {
            let (room, done) = (room.clone(), done.clone());
            spawn_local(async move {
                done(moderation_api::close_report(&room, id, status).await, format!("report {status}"))
            });
        })
    };
    let delete = |id: u64| {
        let (room, done) = (props.room.clone(), done.clone());
        Callback::from(move |_: MouseEvent| {
            let (room, done) = (room.clone(), done.clone());
            spawn_local(async move { done(moderation_api::delete_message(&room, id).await, "message deleted".into()) });
        })
    };
    let outcome_line = match &*outcome {
        Some(Ok(what)) => html! { <p class="notice" aria-live="polite">{ what }</p> },
        Some(Err(refused)) => html! { <p class="error" role="alert">{ refused }</p> },
        None => html! {},
    };
    html! {
        <section class="moderation" aria-label="Moderation">
            <h2>{ "Moderation" }</h2>
            <div class="row">
                <input ref={name.clone()} type="text" aria-label="Name to moderate" placeholder="Name" autocomplete="off" />
            </div>
            <div class="row">
                <button type="button" onclick={act(Verb::Kick)}>{ "Kick" }</button>
                <button type="button" onclick={act(Verb::BanDay)}>{ "Ban 1 day" }</button>
                <button type="button" onclick={act(Verb::Ban)}>{ "Ban" }</button>
            </div>
            <form class="row" onsubmit={set_slow_mode}>
                <input ref={seconds.clone()} type="number" min="0" aria-label="Slow mode seconds" placeholder="Slow mode (s)" />
                <button type="submit">{ "Set" }</button>
            </form>
            { outcome_line }
            <h3>{ "Reports" }</h3>
            <ul class="reports">
                { for reports.iter().map(|report| html! {
                    <li key={report.id}>
                        <span>{ report.line.as_str() }</span>
                        <button type="button" class="link" onclick={delete(report.message_id)}>{ "Delete message" }</button>
                        <button type="button" class="link" onclick={close(report.id, "resolved")}>{ "Resolve" }</button>
                        <button type="button" class="link" onclick={close(report.id, "dismissed")}>{ "Dismiss" }</button>
                    </li>
                }) }
            </ul>
            <button type="button" class="link" onclick={{ let revision = revision.clone(); move |_| revision.set(*revision + 1) }}>
                { "Refresh" }
            </button>
            <h3>{ "Banned" }</h3>
            <ul class="bans">
                { for listed.iter().map(|ban| html! {
                    <li key={ban.target.clone()}>
                        <span>{ ban.target.as_str() }</span>
                        if ban.until_ms.is_some() { <span class="count">{ " (for a while)" }</span> }
                        <button type="button" class="link" onclick={lift(ban.target.clone())}>{ "Lift" }</button>
                    </li>
                }) }
            </ul>
            <details>
                <summary>{ "Audit log" }</summary>
                <ul class="audit">{ for audit.iter().map(|line| html! { <li>{ line }</li> }) }</ul>
            </details>
        </section>
    }
}
