//! The room on screen follows the URL hash (`#/r/<room>`).

use yew::prelude::*;

use crate::browser;
use crate::state::{ChatAction, ChatState};

/// Follows the URL hash (`#/r/<room>`), so links and back/forward switch rooms.
#[hook]
pub(super) fn use_room_from_url(dispatcher: UseReducerDispatcher<ChatState>) {
    use_effect_with((), move |_| {
        let listener = web_sys::window().map(|window| {
            gloo_events::EventListener::new(&window, "hashchange", move |_| {
                dispatcher.dispatch(ChatAction::EnterRoom(browser::current_room()));
            })
        });
        move || drop(listener)
    });
}
