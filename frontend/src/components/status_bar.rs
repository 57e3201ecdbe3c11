//! Shows whether the socket is up, so nobody types into a dead chat unknowingly.

use yew::prelude::*;

use crate::state::ConnectionStatus;

/// Props of [`StatusBar`].
#[derive(Properties, PartialEq)]
pub struct StatusBarProps {
    /// The link state to show.
    pub status: ConnectionStatus,
}

/// The connection indicator.
#[function_component]
pub fn StatusBar(props: &StatusBarProps) -> Html {
    html! {
        <p class="status" role="status" data-state={props.status.key()}>
            <span class="status-dot" aria-hidden="true"></span>
            { props.status.label() }
        </p>
    }
}
