//! The list of messages. Text is rendered as text, never as markup.

use std::rc::Rc;

use chat_shared::ChatMessage;
use web_sys::Element;
use yew::prelude::*;

/// How close to the bottom (in pixels) still counts as "at the bottom".
const STICK_THRESHOLD_PX: i32 = 48;

/// Props of [`MessageLog`].
#[derive(Properties, PartialEq)]
pub struct MessageLogProps {
    /// Messages, oldest first.
    pub messages: Rc<Vec<ChatMessage>>,
}

/// The message log; follows new messages while the reader is at the bottom.
#[function_component]
pub fn MessageLog(props: &MessageLogProps) -> Html {
    let log = use_node_ref();
    let at_bottom = use_mut_ref(|| true);

    {
        let log = log.clone();
        let at_bottom = at_bottom.clone();
        use_effect_with(props.messages.len(), move |_| {
            if let Some(log) = log.cast::<Element>()
                && *at_bottom.borrow()
            {
                log.set_scroll_top(log.scroll_height());
            }
        });
    }
    let onscroll = {
        let log = log.clone();
        Callback::from(move |_: Event| {
            if let Some(log) = log.cast::<Element>() {
                *at_bottom.borrow_mut() =
                    log.scroll_height() - log.scroll_top() - log.client_height() < STICK_THRESHOLD_PX;
            }
        })
    };

    html! {
        <ol class="log" role="log" aria-label="Messages" aria-live="polite" ref={log} {onscroll} tabindex="0">
            if props.messages.is_empty() {
                <li class="empty">{ "No messages yet. Say hello!" }</li>
            }
            { for props.messages.iter().map(message_item) }
        </ol>
    }
}

fn message_item(message: &ChatMessage) -> Html {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(message.ts as f64));
    let time = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
    let full = String::from(date.to_string());
    let iso = String::from(date.to_iso_string());
    html! {
        <li class="message" key={message.id} data-id={message.id.to_string()}>
            <span class="nick" style={format!("--nick-hue: {}", nick_hue(message.nick.as_str()))}>
                { message.nick.as_str() }
            </span>
            <time datetime={iso} title={full}>{ time }</time>
            <p class="text">{ message.text.as_str() }</p>
        </li>
    }
}

/// A stable hue per nickname (FNV-1a), so people keep their colour.
pub fn nick_hue(nick: &str) -> u32 {
    let hash = nick.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    hash % 360
}

#[cfg(test)]
mod tests {
    use super::nick_hue;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn hues_are_stable_and_in_range() {
        assert_eq!(nick_hue("alice"), nick_hue("alice"));
        assert_ne!(nick_hue("alice"), nick_hue("bob"));
        assert!(["alice", "bob", "李雷", ""].iter().all(|n| nick_hue(n) < 360));
    }
}
