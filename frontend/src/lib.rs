//! The chat's web client: a Yew app compiled to WebAssembly.
//!
//! Data flows socket -> [`hooks`] (`use_chat` and the hooks it runs) ->
//! [`state`] (a reducer of protocol events, keeping the room's [`log`]) ->
//! [`components`] -> the page; user input goes back through the hook's
//! callbacks to the socket.

pub mod account;
pub mod app;
pub mod backoff;
pub mod browser;
pub mod components;
pub mod embedding;
pub mod hooks;
pub mod linkify;
pub mod log;
pub mod moderation_api;
pub mod rooms_api;
pub mod socket_url;
pub mod state;

pub use app::App;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
