//! Signing in or registering: a username and a password, and two buttons.

use yew::prelude::*;

use super::input_value;
use crate::account::Entry;

/// Props of [`AccountForm`].
#[derive(Properties, PartialEq)]
pub struct AccountFormProps {
    /// Called with what the user chose and typed.
    pub on_enter: Callback<(Entry, String, String)>,
    /// The server's refusal to show, if any.
    #[prop_or_default]
    pub error: Option<String>,
}

/// The sign-in / register form under the join form.
#[function_component]
pub fn AccountForm(props: &AccountFormProps) -> Html {
    let (username, password) = (use_node_ref(), use_node_ref());
    let enter = {
        let (username, password, on_enter) = (username.clone(), password.clone(), props.on_enter.clone());
        move |entry: Entry| on_enter.emit((entry, input_value(&username).trim().to_owned(), input_value(&password)))
    };
    let on_sign_in = {
        let enter = enter.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            enter(Entry::SignIn);
        })
    };
    let register = Callback::from(move |_: MouseEvent| enter(Entry::Register));
    html! {
        <form class="account" onsubmit={on_sign_in}>
            <h2>{ "Your own name" }</h2>
            <p class="hint">{ "Register a name and nobody else can use it. Guests need no account." }</p>
            <div class="row">
                <input ref={username} type="text" aria-label="Username" placeholder="Username" autocomplete="username" />
                <input ref={password} type="password" aria-label="Password" placeholder="Password (8+ characters)"
                    autocomplete="current-password" />
            </div>
            <div class="row">
                <button type="submit">{ "Sign in" }</button>
                <button type="button" onclick={register}>{ "Register" }</button>
            </div>
            if let Some(error) = &props.error {
                <p class="error" role="alert">{ error }</p>
            }
        </form>
    }
}
