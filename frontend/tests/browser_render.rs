//! Components rendered into a real DOM in headless Chromium.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use chat_frontend::components::message_log::{MessageLog, MessageLogProps};
use chat_frontend::components::status_bar::{StatusBar, StatusBarProps};
use chat_frontend::state::ConnectionStatus;
use chat_shared::{ChatMessage, MessageText, Nickname};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::Element;

wasm_bindgen_test_configure!(run_in_browser);

fn fresh_root() -> Element {
    let document = web_sys::window().and_then(|w| w.document()).expect("document");
    let root = document.create_element("div").expect("div");
    document.body().expect("body").append_child(&root).expect("attached");
    root
}

#[wasm_bindgen_test]
async fn messages_render_as_text_not_markup() {
    let root = fresh_root();
    let attack = "<img src=x onerror=alert(1)>";
    let messages = Rc::new(vec![ChatMessage {
        id: 1,
        ts: 1_700_000_000_000,
        nick: Nickname::parse("mallory").expect("nick"),
        text: MessageText::parse(attack).expect("text"),
    }]);
    yew::Renderer::<MessageLog>::with_root_and_props(root.clone(), MessageLogProps { messages }).render();
    TimeoutFuture::new(20).await;

    let log = root.query_selector("[role=log]").expect("query").expect("a log");
    assert_eq!(log.query_selector("img").expect("query"), None, "no element was injected");
    let text = log.query_selector(".message .text").expect("query").expect("message text");
    assert_eq!(text.text_content().as_deref(), Some(attack));
    let nick = log.query_selector(".message .nick").expect("query").expect("nick");
    assert_eq!(nick.text_content().as_deref().map(str::trim), Some("mallory"));
}

#[wasm_bindgen_test]
async fn status_bar_names_the_state() {
    let root = fresh_root();
    yew::Renderer::<StatusBar>::with_root_and_props(
        root.clone(),
        StatusBarProps { status: ConnectionStatus::Reconnecting },
    )
    .render();
    TimeoutFuture::new(20).await;
    let status = root.query_selector("[role=status]").expect("query").expect("status");
    assert_eq!(status.get_attribute("data-state").as_deref(), Some("reconnecting"));
    assert!(status.text_content().unwrap_or_default().contains("Reconnecting"));
}
