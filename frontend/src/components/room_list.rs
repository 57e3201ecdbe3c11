//! The rooms with online counts, and a form to open or create a room.

use std::rc::Rc;

use chat_shared::limits::ROOM_NAME_MAX_CHARS;
use chat_shared::{RoomInfo, RoomName};
use yew::prelude::*;

use super::{clear_input, input_value};
use crate::browser;

/// Props of [`RoomList`].
#[derive(Properties, PartialEq)]
pub struct RoomListProps {
    /// Rooms with people in them, and the lobby.
    pub rooms: Rc<Vec<RoomInfo>>,
    /// The room on screen.
    pub current: RoomName,
}

/// The room navigation.
#[function_component]
pub fn RoomList(props: &RoomListProps) -> Html {
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    let onsubmit = {
        let (input, error) = (input.clone(), error.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            match RoomName::from_input(&input_value(&input)) {
                Ok(room) => {
                    error.set(None);
                    clear_input(&input);
                    browser::open_room(&room);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    // The current room is listed even before the server counts us in it.
    let mut rooms: Vec<RoomInfo> = props.rooms.to_vec();
    if !rooms.iter().any(|r| r.name == props.current) {
        rooms.push(RoomInfo { name: props.current.clone(), online: 0 });
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
    }

    html! {
        <nav class="rooms" aria-label="Rooms">
            <h2>{ "Rooms" }</h2>
            <ul>
                { for rooms.iter().map(|room| {
                    let current = room.name == props.current;
                    html! {
                        <li key={room.name.as_str()}>
                            <a href={browser::room_href(&room.name)} aria-current={current.then_some("page")}>
                                <span class="room-name">{ format!("#{}", room.name) }</span>
                                <span class="count" aria-label={format!("{} online", room.online)}>{ room.online }</span>
                            </a>
                        </li>
                    }
                }) }
            </ul>
            <form class="room-form" {onsubmit}>
                <input ref={input} type="text" aria-label="Room name" placeholder="New room"
                    maxlength={ROOM_NAME_MAX_CHARS.to_string()} autocomplete="off" />
                <button type="submit">{ "Open" }</button>
                if let Some(error) = &*error {
                    <p class="error" role="alert">{ error }</p>
                }
            </form>
        </nav>
    }
}
