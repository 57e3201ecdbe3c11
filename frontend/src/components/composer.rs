//! Where messages are typed: Enter or the Send button sends. Works offline:
//! messages are queued and go out when the link is back.

use chat_shared::limits::MESSAGE_TEXT_MAX_CHARS;
use chat_shared::{MessageText, MessageTextError};
use yew::prelude::*;

use super::{clear_input, input_value};

/// Props of [`Composer`].
#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    /// Called with valid message text.
    pub on_send: Callback<MessageText>,
    /// Called on every keystroke (the hook rate-limits `typing`).
    pub on_typing: Callback<()>,
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
                    clear_input(&input);
                }
                // Enter on an empty box does nothing, as in every chat.
                Err(MessageTextError::Empty) => error.set(None),
                Err(other) => error.set(Some(other.to_string())),
            }
        })
    };
    let oninput = props.on_typing.reform(|_: InputEvent| ());

    html! {
        <form class="composer" {onsubmit}>
            <input ref={input} type="text" aria-label="Message" placeholder="Message"
                maxlength={MESSAGE_TEXT_MAX_CHARS.to_string()} autocomplete="off" autofocus=true {oninput} />
            <button type="submit">{ "Send" }</button>
            if let Some(error) = &*error {
                <p class="error" role="alert">{ error }</p>
            }
        </form>
    }
}
