//! The pieces of the page, each a small function component.

pub mod account_form;
pub mod composer;
pub mod member_list;
pub mod message_log;
pub mod moderation_panel;
pub mod nickname_form;
pub mod private_rooms;
pub mod room_list;
pub mod status_bar;
pub mod typing_indicator;

pub use account_form::AccountForm;
pub use composer::Composer;
pub use member_list::MemberList;
pub use message_log::MessageLog;
pub use moderation_panel::ModerationPanel;
pub use nickname_form::NicknameForm;
pub use private_rooms::PrivateRooms;
pub use room_list::RoomList;
pub use status_bar::StatusBar;
pub use typing_indicator::TypingIndicator;

use web_sys::HtmlInputElement;
use yew::NodeRef;

/// The current value of the input behind `node`, or empty if it is not mounted.
fn input_value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>().map(|input| input.value()).unwrap_or_default()
}

/// Empties the input behind `node`.
fn clear_input(node: &NodeRef) {
    if let Some(input) = node.cast::<HtmlInputElement>() {
        input.set_value("");
    }
}

/// A stable hue per nickname (FNV-1a), so people keep their colour.
pub fn nick_hue(nick: &str) -> u32 {
    let hash = nick.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    hash % 360
}

/// The inline style that gives a nickname its colour.
fn nick_style(nick: &str) -> String {
    format!("--nick-hue: {}", nick_hue(nick))
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
