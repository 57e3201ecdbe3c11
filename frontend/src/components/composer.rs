//! Where messages are typed: Enter or the Send button sends.

use chat_shared::limits::MESSAGE_TEXT_MAX_CHARS;
use chat_shared::{MessageText, MessageTextError};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::input_value;

/// Props of [`Composer`].
#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    /// Called with valid message text.
    pub on_send: Callback<MessageText>,
    /// Whether sending is possible now (the socket is open).
    pub enabled: bool,
}

/// The message input.
#[function_component]
pub fn Composer(props: &ComposerProps) -> Html {
    let input = use_node_ref();
    let error = use_state(|| None::<String>);

    let onsubmit = {
        let input = input.clone();
        let error = error.clone();
        let on_send = props.on_send.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            match MessageText::parse(input_value(&input)) {
                Ok(text) => {
                    on_send.emit(text);
                    error.set(None);
                    if let Some(input) = input.cast::<HtmlInputElement>() {
                        input.set_value("");
                    }
                }
                // Enter on an empty box does nothing, as in every chat.
                Err(MessageTextError::Empty) => error.set(None),
                Err(other) => error.set(Some(other.to_string())),
            }
        })
    };

    html! {
        <form class="composer" {onsubmit}>
            <input ref={input} type="text" aria-label="Message" placeholder="Message"
                maxlength={MESSAGE_TEXT_MAX_CHARS.to_string()} autocomplete="off" autofocus=true />
            <button type="submit" disabled={!props.enabled}>{ "Send" }</button>
            if let Some(error) = &*error {
                <p class="error" role="alert">{ error }</p>
            }
        </form>
    }
}
