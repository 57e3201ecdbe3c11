//! Asks for a nickname, checking it by the shared rules first.

use chat_shared::limits::NICKNAME_MAX_CHARS;
use chat_shared::{Nickname, RoomName};
use yew::prelude::*;

use super::input_value;

/// Props of [`NicknameForm`].
#[derive(Properties, PartialEq)]
pub struct NicknameFormProps {
    /// Called with a valid nickname.
    pub on_join: Callback<Nickname>,
    /// The room about to be joined.
    pub room: RoomName,
    /// An error from the server to show (e.g. the name is taken).
    #[prop_or_default]
    pub server_error: Option<String>,
}

/// The join form.
#[function_component]
pub fn NicknameForm(props: &NicknameFormProps) -> Html {
    let input = use_node_ref();
    let local_error = use_state(|| None::<String>);

    let onsubmit = {
        let input = input.clone();
        let local_error = local_error.clone();
        let on_join = props.on_join.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            match Nickname::parse(input_value(&input).trim()) {
                Ok(nick) => {
                    local_error.set(None);
                    on_join.emit(nick);
                }
                Err(error) => local_error.set(Some(error.to_string())),
            }
        })
    };

    let error = (*local_error).clone().or_else(|| props.server_error.clone());
    html! {
        <form class="join" {onsubmit}>
            <h2>{ format!("Join #{}", props.room) }</h2>
            <p class="hint">{ "Pick a name people will see next to your messages." }</p>
            <div class="row">
                <input ref={input} type="text" aria-label="Nickname" placeholder="Your nickname"
                    maxlength={NICKNAME_MAX_CHARS.to_string()} autocomplete="nickname" autofocus=true />
                <button type="submit">{ "Join" }</button>
            </div>
            if let Some(error) = error {
                <p class="error" role="alert">{ error }</p>
            }
        </form>
    }
}
