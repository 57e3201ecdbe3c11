//! The page: rooms and members beside the conversation, or the join form.

use yew::prelude::*;

use crate::browser;
use crate::components::{Composer, MemberList, MessageLog, NicknameForm, RoomList, StatusBar, TypingIndicator};
use crate::connection::use_chat;
use crate::state::{ChatState, LogEntry};

/// The root component.
#[function_component]
pub fn App() -> Html {
    let chat = use_chat();
    let state = &*chat.state;
    let sidebar_open = use_state(|| false);
    use_unread_title(state);

    let toggle_sidebar = {
        let sidebar_open = sidebar_open.clone();
        Callback::from(move |_: MouseEvent| sidebar_open.set(!*sidebar_open))
    };
    let pending: Vec<_> = state.pending_here().cloned().collect();

    html! {
        <div class={classes!("app", sidebar_open.then_some("sidebar-open"))}>
            <header class="topbar">
                <button type="button" class="menu" aria-label="Rooms and members"
                    aria-expanded={sidebar_open.to_string()} onclick={toggle_sidebar}>{ "☰" }</button>
                <h1>{ format!("#{}", state.room) }</h1>
                if let Some(nick) = &state.nick {
                    <span class="me">{ "as " }<strong>{ nick.as_str() }</strong></span>
                }
                <StatusBar status={state.connection} />
            </header>
            <aside class="sidebar">
                <RoomList rooms={state.rooms.clone()} current={state.room.clone()} />
                if state.joined {
                    <MemberList members={state.members.clone()} me={state.nick.clone()} />
                }
            </aside>
            if state.nick.is_some() {
                <main class="conversation">
                    <MessageLog log={state.log.clone()} {pending} me={state.nick.clone()}
                        has_more={state.has_more} loading_older={state.loading_older}
                        on_load_older={chat.load_older.clone()} />
                    <TypingIndicator names={state.typing_names().into_iter().cloned().collect::<Vec<_>>()} />
                    if let Some(error) = &state.error {
                        <p class="error banner" role="alert">{ error }</p>
                    }
                    <Composer on_send={chat.send.clone()} on_typing={chat.typing.clone()} />
                </main>
            } else {
                <main class="welcome">
                    <NicknameForm on_join={chat.choose_nick.clone()} room={state.room.clone()}
                        server_error={state.error.clone()} />
                </main>
            }
        </div>
    }
}

/// Shows "(3) #room · Chat" while the tab is hidden and messages arrive.
#[hook]
fn use_unread_title(state: &ChatState) {
    let unread = use_state(|| 0_usize);
    let seen_last_id = use_mut_ref(|| state.last_id());
    {
        let (unread, log) = (unread.clone(), state.log.clone());
        use_effect_with(state.last_id(), move |last_id| {
            let mut seen = seen_last_id.borrow_mut();
            if browser::page_hidden() {
                let fresh = log.iter().filter(|e| matches!(e, LogEntry::Message(m) if Some(m.id) > *seen)).count();
                unread.set(*unread + fresh);
            }
            *seen = *last_id;
        });
    }
    {
        let unread = unread.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window().and_then(|w| w.document()).map(|document| {
                gloo_events::EventListener::new(&document, "visibilitychange", move |_| {
                    if !browser::page_hidden() {
                        unread.set(0);
                    }
                })
            });
            move || drop(listener)
        });
    }
    let title = match *unread {
        0 => format!("#{} · Chat", state.room),
        n => format!("({n}) #{} · Chat", state.room),
    };
    use_effect_with(title, |title| browser::set_title(title));
}
