//! The log of the room: messages (grouped by author, links clickable, text
//! never interpreted as markup), join/leave notices, and our pending sends.
//! It follows new messages only while the reader is at the bottom; otherwise
//! a "New messages" button appears. Scrolling to the top loads older pages.

use std::rc::Rc;

use chat_shared::{ChatMessage, Nickname};
use web_sys::Element;
use yew::prelude::*;

use super::nick_style;
use crate::linkify::{Segment, segments};
use crate::state::{LogEntry, Pending};

/// How close to the bottom (in pixels) still counts as "at the bottom".
const STICK_THRESHOLD_PX: i32 = 48;
/// How close to the top (in pixels) asks for older messages.
const LOAD_OLDER_THRESHOLD_PX: i32 = 40;
/// Messages of one author closer together than this share one header.
const GROUP_WINDOW_MS: u64 = 5 * 60 * 1_000;

/// Props of [`MessageLog`].
#[derive(Properties, PartialEq)]
pub struct MessageLogProps {
    /// The log, oldest first.
    pub log: Rc<Vec<LogEntry>>,
    /// Our unconfirmed messages in this room, oldest first.
    #[prop_or_default]
    pub pending: Vec<Pending>,
    /// Our nickname, to mark our own messages.
    #[prop_or_default]
    pub me: Option<Nickname>,
    /// Whether older messages exist.
    #[prop_or_default]
    pub has_more: bool,
    /// Whether an older page is on its way.
    #[prop_or_default]
    pub loading_older: bool,
    /// Asks for an older page.
    #[prop_or_default]
    pub on_load_older: Callback<()>,
    /// Reports a message (by id) to the room's moderators; none: no Report
    /// buttons (guests cannot report).
    #[prop_or_default]
    pub on_report: Option<Callback<u64>>,
    /// Deletes a message (by id); none: no Delete buttons. Shown on our own
    /// messages, and on everyone's when we moderate the room.
    #[prop_or_default]
    pub on_delete: Option<Callback<u64>>,
    /// Whether we moderate the room.
    #[prop_or_default]
    pub moderates: bool,
}

/// The message log.
#[function_component]
pub fn MessageLog(props: &MessageLogProps) -> Html {
    let log_ref = use_node_ref();
    let at_bottom = use_mut_ref(|| true);
    let previous = use_mut_ref(|| (None::<u64>, 0_i32));
    let unseen = use_state(|| false);

    let first_id = props.log.iter().find_map(LogEntry::message_id);
    let size = props.log.len() + props.pending.len();
    {
        let (log_ref, at_bottom, previous, unseen) =
            (log_ref.clone(), at_bottom.clone(), previous.clone(), unseen.clone());
        use_effect_with((first_id, size), move |(first_id, _)| {
            if let Some(log) = log_ref.cast::<Element>() {
                let height = log.scroll_height();
                let (previous_first, previous_height) = *previous.borrow();
                if matches!((previous_first, first_id), (Some(before), Some(now)) if now < &before) {
                    // An older page went on top: keep what the reader was looking at in place.
                    log.set_scroll_top(log.scroll_top() + height - previous_height);
                } else if *at_bottom.borrow() {
                    log.set_scroll_top(height);
                } else {
                    unseen.set(true);
                }
                *previous.borrow_mut() = (*first_id, log.scroll_height());
            }
        });
    }
    let onscroll = {
        let (log_ref, unseen, on_load_older) = (log_ref.clone(), unseen.clone(), props.on_load_older.clone());
        let at_bottom = at_bottom.clone();
        Callback::from(move |_: Event| {
            if let Some(log) = log_ref.cast::<Element>() {
                let bottom = log.scroll_height() - log.scroll_top() - log.client_height() < STICK_THRESHOLD_PX;
                *at_bottom.borrow_mut() = bottom;
                if bottom {
                    unseen.set(false);
                }
                if log.scroll_top() < LOAD_OLDER_THRESHOLD_PX {
                    on_load_older.emit(());
                }
            }
        })
    };
    let jump_to_bottom = {
        let (log_ref, unseen) = (log_ref.clone(), unseen.clone());
        Callback::from(move |_: MouseEvent| {
            if let Some(log) = log_ref.cast::<Element>() {
                *at_bottom.borrow_mut() = true;
                log.set_scroll_top(log.scroll_height());
            }
            unseen.set(false);
        })
    };
    let load_older = props.on_load_older.reform(|_: MouseEvent| ());

    // Delivery is shown on our latest message only, as in most chats.
    let my_latest = props.log.iter().rev().find_map(|entry| match entry {
        LogEntry::Message(m) if props.me.as_ref() == Some(&m.nick) && m.client_id.is_some() => Some(m.id),
        _ => None,
    });
    let mut previous_message: Option<&ChatMessage> = None;
    // A deletion has its place in the order but no line: its message shows it.
    let shown = props.log.iter().filter(|entry| !matches!(entry, LogEntry::Message(m) if m.deletes.is_some()));
    let entries = shown.map(|entry| match entry {
        LogEntry::Message(message) => {
            let continued = previous_message
                .is_some_and(|p| p.nick == message.nick && message.ts.saturating_sub(p.ts) < GROUP_WINDOW_MS);
            previous_message = Some(message);
            let mine = props.me.as_ref() == Some(&message.nick);
            let actions = Actions {
                report: props.on_report.as_ref().filter(|_| !mine && !message.deleted),
                delete: props.on_delete.as_ref().filter(|_| (mine || props.moderates) && !message.deleted),
            };
            message_item(message, continued, mine, my_latest == Some(message.id), actions)
        }
        LogEntry::Notice { key, text } => {
            previous_message = None;
            html! { <li class="notice" key={format!("n{key}")}>{ text }</li> }
        }
    });
    let entries: Html = entries.collect();

    html! {
        <div class="log-wrap">
            <ol class="log" role="log" aria-label="Messages" ref={log_ref} {onscroll} tabindex="0">
                if props.has_more {
                    <li class="older" key="older">
                        <button type="button" class="link" onclick={load_older} disabled={props.loading_older}>
                            { if props.loading_older { "Loading older messages…" } else { "Load older messages" } }
                        </button>
                    </li>
                } else if first_id.is_some() {
                    <li class="start" key="start">{ "This is the beginning of the room." }</li>
                } else if props.pending.is_empty() {
                    <li class="empty" key="empty">{ "No messages yet. Say hello!" }</li>
                }
                { entries }
                { for props.pending.iter().map(pending_item) }
            </ol>
            if *unseen {
                <button type="button" class="new-messages" onclick={jump_to_bottom}>{ "New messages ↓" }</button>
            }
        </div>
    }
}

/// What a message's buttons do (none: no button).
struct Actions<'a> {
    report: Option<&'a Callback<u64>>,
    delete: Option<&'a Callback<u64>>,
}

fn message_item(message: &ChatMessage, continued: bool, mine: bool, show_delivery: bool, actions: Actions) -> Html {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(message.ts as f64));
    let time = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
    let full = String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED));
    let iso = String::from(date.to_iso_string());
    let class = classes!("message", continued.then_some("continued"), mine.then_some("mine"));
    html! {
        <li {class} key={message.id} data-id={message.id.to_string()}>
            <div class="meta">
                <span class="nick" style={nick_style(message.nick.as_str())}>{ message.nick.as_str() }</span>
                <time datetime={iso} title={full}>{ time }</time>
            </div>
            if message.deleted {
                <p class="text deleted">{ "message deleted" }</p>
            } else {
                <p class="text">{ text_with_links(message.text.as_str()) }</p>
            }
            if show_delivery {
                <span class="delivery sent" title="Sent">{ "✓ sent" }</span>
            }
            if let Some(report) = actions.report {
                <button type="button" class="link report" title="Report to the room's moderators"
                    onclick={report.reform({ let id = message.id; move |_: MouseEvent| id })}>{ "Report" }</button>
            }
            if let Some(delete) = actions.delete {
                <button type="button" class="link delete" title="Delete for everyone"
                    onclick={delete.reform({ let id = message.id; move |_: MouseEvent| id })}>{ "Delete" }</button>
            }
        </li>
    }
}

fn pending_item(pending: &Pending) -> Html {
    html! {
        <li class="message mine pending" key={pending.client_id.as_str()}>
            <p class="text">{ text_with_links(pending.text.as_str()) }</p>
            <span class="delivery" title="Not yet confirmed by the server">{ "Sending…" }</span>
        </li>
    }
}

/// Text nodes and `<a>` elements; the text is never parsed as HTML.
fn text_with_links(text: &str) -> Html {
    segments(text)
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(text) => html! { { text } },
            Segment::Link(url) => html! {
                <a href={url.to_owned()} target="_blank" rel="noopener noreferrer">{ url }</a>
            },
        })
        .collect()
}
