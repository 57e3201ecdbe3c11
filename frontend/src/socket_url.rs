//! Where the socket lives: derived from the page's own address, so the same
//! build works when served by `chat-server` and behind `trunk serve`.

use chat_shared::Endpoint;

/// The URL of the JSON socket for a page loaded over `protocol` (as in
/// `location.protocol`, e.g. `"https:"`) from `host` (`location.host`).
pub fn socket_url(protocol: &str, host: &str) -> String {
    let scheme = if protocol.eq_ignore_ascii_case("https:") { "wss" } else { "ws" };
    format!("{scheme}://{host}{}", Endpoint::Json.path())
}

/// The socket URL for the current page, if there is a window.
pub fn current() -> Option<String> {
    let location = web_sys::window()?.location();
    Some(socket_url(&location.protocol().ok()?, &location.host().ok()?))
}

#[cfg(test)]
mod tests {
    use super::socket_url;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn http_pages_use_ws_on_the_same_host() {
        assert_eq!(socket_url("http:", "127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
    }

    #[test]
    fn https_pages_use_wss() {
        assert_eq!(socket_url("https:", "chat.example.org"), "wss://chat.example.org/ws");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(socket_url("http:", "[::1]:8081"), "ws://[::1]:8081/ws");
    }

    #[cfg(target_arch = "wasm32")]
    #[test]
    fn current_page_address_is_used_in_the_browser() {
        let location = web_sys::window().expect("window").location();
        let host = location.host().expect("host");
        let expected = match location.protocol().expect("protocol").as_str() {
            "https:" => format!("wss://{host}/ws"),
            _ => format!("ws://{host}/ws"),
        };
        assert_eq!(super::current(), Some(expected));
    }
}
