//! Who is in the room right now.

use std::rc::Rc;

use chat_shared::Nickname;
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
}

/// The live member list.
#[function_component]
pub fn MemberList(props: &MemberListProps) -> Html {
    html! {
        <section class="members" aria-label="Members">
            <h2>{ format!("Members ({})", props.members.len()) }</h2>
            <ul>
                { for props.members.iter().map(|nick| html! {
                    <li key={nick.as_str()}>
                        <span class="nick" style={nick_style(nick.as_str())}>{ nick.as_str() }</span>
                        if props.me.as_ref() == Some(nick) { <span class="you">{ " (you)" }</span> }
                    </li>
                }) }
            </ul>
        </section>
    }
}
