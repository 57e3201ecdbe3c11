//! A signed-in user's own rooms: the private rooms they are in (no public
//! list shows them), a form to create one, and an invite link to hand out
//! for the room on screen when they own or moderate it.

use chat_shared::RoomName;
use chat_shared::api::Role;
use chat_shared::limits::ROOM_NAME_MAX_CHARS;
use yew::platform::spawn_local;
use yew::prelude::*;

use super::{clear_input, input_value};
use crate::browser;
use crate::rooms_api::{self, MyRoom};

/// Props of [`PrivateRooms`].
#[derive(Properties, PartialEq)]
pub struct PrivateRoomsProps {
    /// The room on screen.
    pub current: RoomName,
}

/// The "Your rooms" part of the sidebar.
#[function_component]
pub fn PrivateRooms(props: &PrivateRoomsProps) -> Html {
    let rooms = use_state(Vec::<MyRoom>::new);
    let error = use_state(|| None::<String>);
    let link = use_state(|| None::<String>);
    let input = use_node_ref();
    // Read again on every room change: an accepted invite or a new room shows up.
    {
        let (rooms, link) = (rooms.setter(), link.setter());
        use_effect_with(props.current.clone(), move |_| {
            link.set(None);
            spawn_local(async move {
                if let Ok(mine) = rooms_api::mine().await {
                    rooms.set(mine);
                }
            });
        });
    }
    let create = {
        let (input, error) = (input.clone(), error.setter());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let name = match RoomName::from_input(&input_value(&input)) {
                Ok(name) => name,
                Err(refused) => return error.set(Some(refused.to_string())),
            };
            let (input, error) = (input.clone(), error.clone());
            spawn_local(async move {
                match rooms_api::create_private(&name).await {
                    Ok(created) => {
                        error.set(None);
                        clear_input(&input);
                        browser::open_room(&created);
                    }
                    Err(refused) => error.set(Some(refused)),
                }
            });
        })
    };
    let manages_current =
        rooms.iter().any(|room| room.name == props.current && matches!(room.role, Role::Owner | Role::Moderator));
    let make_link = {
        let (current, link, error) = (props.current.clone(), link.setter(), error.setter());
        Callback::from(move |_: MouseEvent| {
            let (current, link, error) = (current.clone(), link.clone(), error.clone());
            spawn_local(async move {
                match rooms_api::invite(&current).await {
                    Ok(url) => link.set(Some(url)),
                    Err(refused) => error.set(Some(refused)),
                }
            });
        })
    };
    html! {
        <section class="private-rooms" aria-label="Your rooms">
            <h2>{ "Your rooms" }</h2>
            <ul>
                { for rooms.iter().map(|room| html! {
                    <li key={room.name.as_str()}>
                        <a href={browser::room_href(&room.name)}
                            aria-current={(room.name == props.current).then_some("page")}>
                            <span class="room-name">{ format!("#{}", room.name) }</span>
                            if room.private {
                                <span class="count">{ "private" }</span>
                            }
                        </a>
                    </li>
                }) }
            </ul>
            if manages_current {
                <button type="button" onclick={make_link}>{ "Invite link" }</button>
                if let Some(url) = &*link {
                    <input type="text" readonly=true aria-label="Invite link" value={url.clone()} />
                }
            }
            <form class="room-form" onsubmit={create}>
                <input ref={input} type="text" aria-label="Private room name" placeholder="New private room"
                    maxlength={ROOM_NAME_MAX_CHARS.to_string()} autocomplete="off" />
                <button type="submit">{ "Create" }</button>
            </form>
            if let Some(error) = &*error {
                <p class="error" role="alert">{ error }</p>
            }
        </section>
    }
}
