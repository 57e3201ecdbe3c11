//! The chat inside another site's page (an iframe): that site's backend
//! mints a connection token, and its page passes it in the chat's URL
//! (`/?token=...`). The socket opens with it; before it expires the chat
//! asks the page for a newer one (`postMessage({type: "chat:token-expiring"})`
//! to its parent), and the page answers `{type: "chat:token", token}`.

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::MessageEvent;

/// What the chat posts to the embedding page when it needs a new token.
pub const TOKEN_EXPIRING: &str = "chat:token-expiring";

/// What the embedding page posts back, with the token in `token`.
pub const TOKEN: &str = "chat:token";

/// The token in the page's own URL (`?token=`), if any.
pub fn page_token() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get("token").filter(|token| !token.is_empty())
}

/// The socket URL with `token` on it (as `?token=`).
pub fn with_token(url: &str, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("{url}?token={}", String::from(js_sys::encode_uri_component(token))),
        None => url.to_owned(),
    }
}

/// Asks the embedding page for a newer token (nothing if not embedded).
pub fn ask_for_token() {
    let Some(window) = web_sys::window() else { return };
    let Ok(Some(parent)) = window.parent() else { return };
    if same(&parent, &window) {
        return;
    }
    let message = Object::new();
    if Reflect::set(&message, &"type".into(), &TOKEN_EXPIRING.into()).is_ok() {
        // Only a request: nothing secret goes out, so any embedder may hear it.
        let _ = parent.post_message(&message, "*");
    }
}

/// Calls `on_token` with every token the embedding page posts, for as long
/// as the returned listener lives. Only the parent's messages count.
pub fn listen_for_tokens(on_token: impl Fn(String) + 'static) -> Option<gloo_events::EventListener> {
    let window = web_sys::window()?;
    let parent = window.parent().ok()??;
    if same(&parent, &window) {
        return None;
    }
    let listener = gloo_events::EventListener::new(&window, "message", move |event| {
        let Some(event) = event.dyn_ref::<MessageEvent>() else { return };
        let from_parent = event.source().is_some_and(|source| same(&source, &parent));
        if !from_parent {
            return;
        }
        let data = event.data();
        let field = |name: &str| Reflect::get(&data, &name.into()).ok().and_then(|value| value.as_string());
        if field("type").as_deref() == Some(TOKEN)
            && let Some(token) = field("token")
        {
            on_token(token);
        }
    });
    Some(listener)
}

/// Whether two JS references are the same object (`===`).
fn same(a: &impl AsRef<JsValue>, b: &impl AsRef<JsValue>) -> bool {
    a.as_ref() == b.as_ref()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[cfg(target_arch = "wasm32")]
    #[test]
    fn the_token_goes_on_the_socket_url_encoded() {
        assert_eq!(super::with_token("ws://h/ws", Some("a.b+c/d=")), "ws://h/ws?token=a.b%2Bc%2Fd%3D");
        assert_eq!(super::with_token("ws://h/ws", None), "ws://h/ws");
    }
}
