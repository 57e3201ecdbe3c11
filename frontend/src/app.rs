//! The page: status, then either the join form or the log and composer.

use yew::prelude::*;

use crate::components::{Composer, MessageLog, NicknameForm, StatusBar};
use crate::connection::use_chat;
use crate::state::ConnectionStatus;

/// The root component.
#[function_component]
pub fn App() -> Html {
    let chat = use_chat();
    let state = &*chat.state;
    let connected = state.connection == ConnectionStatus::Connected;

    html! {
        <div class="app">
            <header class="topbar">
                <h1>{ "Chat" }</h1>
                if let Some(nick) = &state.joined_as {
                    <span class="me">{ "as " }<strong>{ nick.as_str() }</strong></span>
                }
                <StatusBar status={state.connection} />
            </header>
            if state.joined_as.is_some() {
                <main class="conversation">
                    <MessageLog messages={state.messages.clone()} />
                    if let Some(error) = &state.error {
                        <p class="error banner" role="alert">{ error }</p>
                    }
                    <Composer on_send={chat.send.clone()} enabled={connected} />
                </main>
            } else {
                <main class="welcome">
                    <NicknameForm on_join={chat.join.clone()} enabled={connected && !state.joining}
                        server_error={state.error.clone()} />
                </main>
            }
        </div>
    }
}
