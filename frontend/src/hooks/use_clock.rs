//! A tick once a second, so time-bound state (typing indicators, retries) expires on time.

use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::browser;
use crate::state::{ChatAction, ChatState};

/// Ticks once a second so typing indicators expire on time.
#[hook]
pub(super) fn use_clock(dispatcher: UseReducerDispatcher<ChatState>) {
    use_effect_with((), move |_| {
        let interval = Interval::new(1_000, move || dispatcher.dispatch(ChatAction::Tick(browser::now_ms())));
        move || drop(interval)
    });
}
