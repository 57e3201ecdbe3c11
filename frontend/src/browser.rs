//! Small wrappers over browser APIs: time, storage, the URL hash, the title.
//! Each returns a neutral value when there is no window (tests, workers).

use chat_shared::{ClientId, Nickname, RoomName};

const NICK_KEY: &str = "chat.nick";
const TAB_KEY: &str = "chat.tab";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    // Date.now() is a whole number of ms well inside u64.
    js_sys::Date::now() as u64
}

/// The nickname remembered in localStorage, if valid.
pub fn saved_nick() -> Option<Nickname> {
    let storage = web_sys::window()?.local_storage().ok()??;
    Nickname::parse(storage.get_item(NICK_KEY).ok()??).ok()
}

/// Remembers (or, with `None`, forgets) the nickname for the next visit.
pub fn save_nick(nick: Option<&Nickname>) {
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = match nick {
            Some(nick) => storage.set_item(NICK_KEY, nick.as_str()),
            None => storage.remove_item(NICK_KEY),
        };
    }
}

/// A random id for this browser tab, kept in sessionStorage so a reload of
/// the tab is recognised as the same tab (and takes over its nickname).
pub fn tab_id() -> ClientId {
    let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
    if let Some(existing) = storage.as_ref().and_then(|s| s.get_item(TAB_KEY).ok().flatten())
        && let Ok(id) = ClientId::parse(existing)
    {
        return id;
    }
    let random = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    let id = ClientId::parse(format!("t{random:08x}{:x}", now_ms())).expect("hex digits make a valid client id");
    if let Some(storage) = storage {
        let _ = storage.set_item(TAB_KEY, id.as_str());
    }
    id
}

/// The room named by a URL hash like `#/r/dev`, if any.
pub fn room_from_hash(hash: &str) -> Option<RoomName> {
    RoomName::parse(hash.strip_prefix("#/r/")?).ok()
}

/// The link to a room.
pub fn room_href(room: &RoomName) -> String {
    format!("#/r/{room}")
}

/// The room the current URL names, or the lobby.
pub fn current_room() -> RoomName {
    web_sys::window().and_then(|w| w.location().hash().ok()).and_then(|hash| room_from_hash(&hash)).unwrap_or_default()
}

/// Navigates to a room (through the hash, so back and forward work).
pub fn open_room(room: &RoomName) {
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_hash(&room_href(room)[1..]);
    }
}

/// Whether the page is in a background tab.
pub fn page_hidden() -> bool {
    web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden())
}

/// Sets the tab title.
pub fn set_title(title: &str) {
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        document.set_title(title);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn hashes_name_rooms() {
        assert_eq!(room_from_hash("#/r/dev"), RoomName::parse("dev").ok());
        assert_eq!(room_from_hash("#/r/Not Valid"), None);
        assert_eq!(room_from_hash(""), None);
        let dev = RoomName::parse("dev").expect("room");
        assert_eq!(room_from_hash(&room_href(&dev)), Some(dev));
    }

    #[cfg(target_arch = "wasm32")]
    #[test]
    fn nick_round_trips_through_local_storage_and_tab_ids_are_stable() {
        let nick = Nickname::parse("zoë").expect("nick");
        save_nick(Some(&nick));
        assert_eq!(saved_nick(), Some(nick));
        save_nick(None);
        assert_eq!(saved_nick(), None);
        assert_eq!(tab_id(), tab_id());
    }
}
