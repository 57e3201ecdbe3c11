//! The page: rooms and members beside the conversation, or the join form.

use yew::prelude::*;

use crate::components::{Composer, MemberList, MessageLog, NicknameForm, RoomList, StatusBar, TypingIndicator};
use crate::hooks::{use_chat, use_unread_title};

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
                    <MemberList members={state.members.clone()} me={state.nick.clone()}
                        crowd={state.crowd()} />
                }
            </aside>
            if state.nick.is_some() {
                <main class="conversation">
                    <MessageLog log={state.log.entries()} {pending} me={state.nick.clone()}
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
