//! Who is in the room right now.

use std::rc::Rc;

use chat_shared::Nickname;
use chat_shared::limits::PRESENCE_EVENTS_MAX;
use yew::prelude::*;

use super::nick_style;

/// Props of [`MemberList`].
#[derive(Properties, PartialEq)]
pub struct MemberListProps {
    /// Members, by name.
    pub members: Rc<Vec<Nickname>>,
    /// Our own nickname, marked as "you".
    #[prop_or_default]
    pub me: Option<Nickname>,
    /// Set in a room too big to list: how many are in it (from the room
    /// list). The server announces nobody there, so only "you" is listed.
    #[prop_or_default]
    pub crowd: Option<u32>,
}

/// The live member list, or a count of a crowd.
#[function_component]
pub fn MemberList(props: &MemberListProps) -> Html {
    let entry = |nick: &Nickname| {
        html! {
            <li key={nick.as_str()}>
                <span class="nick" style={nick_style(nick.as_str())}>{ nick.as_str() }</span>
                if props.me.as_ref() == Some(nick) { <span class="you">{ " (you)" }</span> }
            </li>
        }
    };
    if let Some(online) = props.crowd {
        return html! {
            <section class="members crowded" aria-label="Members">
                <h2>{ format!("Members ({online})") }</h2>
                <ul>{ for props.me.iter().map(entry) }</ul>
                <p class="hint">
                    { format!("Names are listed, and arrivals announced, in rooms of up to {PRESENCE_EVENTS_MAX}.") }
                </p>
            </section>
        };
    }
    html! {
        <section class="members" aria-label="Members">
            <h2>{ format!("Members ({})", props.members.len()) }</h2>
            <ul>{ for props.members.iter().map(entry) }</ul>
        </section>
    }
}
