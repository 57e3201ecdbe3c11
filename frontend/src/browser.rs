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

/// This browser tab's secret: 128 random bits from `crypto.getRandomValues`,
/// which let a reconnect of this tab take over its own nickname. It is never
/// shown to anyone, and nothing else is derived from it.
///
/// It survives a reload of the tab but not a "duplicate tab" (which copies
/// sessionStorage): the page takes it out of sessionStorage while it runs
/// and puts it back only as it goes away (`pagehide`), so a duplicate finds
/// none and makes its own.
pub fn tab_secret() -> ClientId {
    let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
    let kept = storage.as_ref().and_then(|s| s.get_item(TAB_KEY).ok().flatten()).and_then(|s| ClientId::parse(s).ok());
    let secret = kept.unwrap_or_else(|| ClientId::parse(random_hex(16)).expect("hex digits make a valid client id"));
    if let Some(storage) = storage {
        let _ = storage.remove_item(TAB_KEY);
        if let Some(window) = web_sys::window() {
            let secret = secret.clone();
            gloo_events::EventListener::new(&window, "pagehide", move |_| {
                let _ = storage.set_item(TAB_KEY, secret.as_str());
            })
            .forget();
        }
    }
    secret
}

/// `bytes` random bytes from `crypto.getRandomValues`, in hex. Falls back to
/// `Math.random` only where there is no window (tests in workers).
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0_u8; bytes];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|crypto| crypto.get_random_values_with_u8_array(&mut buffer).is_ok());
    if !filled {
        for byte in &mut buffer {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// The room named by a URL hash like `#/r/dev`, if any.
pub fn room_from_hash(hash: &str) -> Option<RoomName> {
    RoomName::parse(hash.strip_prefix("#/r/")?).ok()
}

/// The code of an invite link's hash, `#/invite/<code>`, if it is one.
pub fn invite_from_hash(hash: &str) -> Option<String> {
    let code = hash.strip_prefix("#/invite/")?;
    (!code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then(|| code.to_owned())
}

/// The invite code the current URL carries, if any.
pub fn current_invite() -> Option<String> {
    web_sys::window().and_then(|w| w.location().hash().ok()).and_then(|hash| invite_from_hash(&hash))
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
    }

    #[cfg(target_arch = "wasm32")]
    #[test]
    fn tab_secrets_are_random_and_not_left_where_a_duplicate_tab_would_copy_them() {
        let secret = tab_secret();
        assert_eq!(secret.as_str().len(), 32);
        assert_ne!(random_hex(16), random_hex(16));
        let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten()).expect("storage");
        assert_eq!(storage.get_item(TAB_KEY).ok().flatten(), None, "taken out while the page runs");
    }
}
