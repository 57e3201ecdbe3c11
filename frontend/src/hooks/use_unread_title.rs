//! The tab's title: the room, and how many messages arrived while the tab was hidden.

use yew::prelude::*;

use crate::browser;
use crate::state::{ChatState, LogEntry};

/// Shows "(3) #room · Chat" while the tab is hidden and messages arrive.
#[hook]
pub fn use_unread_title(state: &ChatState) {
    let unread = use_state(|| 0_usize);
    let seen_last_id = use_mut_ref(|| state.last_id());
    {
        let (unread, log) = (unread.clone(), state.log.clone());
        use_effect_with(state.last_id(), move |last_id| {
            let mut seen = seen_last_id.borrow_mut();
            if browser::page_hidden() {
                // From the end back to the last seen message: not the whole log per arrival.
                // A deletion is no news.
                let fresh = log
                    .iter()
                    .rev()
                    .filter_map(|entry| match entry {
                        LogEntry::Message(message) => Some((message.id, message.deletes.is_none())),
                        LogEntry::Notice { .. } => None,
                    })
                    .take_while(|(id, _)| Some(*id) > *seen)
                    .filter(|(_, said)| *said)
                    .count();
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
