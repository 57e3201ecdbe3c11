//! Components rendered into a real DOM in headless Chromium.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use chat_frontend::components::message_log::{MessageLog, MessageLogProps};
use chat_frontend::components::status_bar::{StatusBar, StatusBarProps};
use chat_frontend::state::{ConnectionStatus, LogEntry, Pending};
use chat_shared::{ChatMessage, ClientId, DELETED_TEXT, MessageText, Nickname, RoomName};
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

fn message(id: u64, nick: &str, text: &str, ts: u64) -> LogEntry {
    LogEntry::Message(ChatMessage {
        room: RoomName::lobby(),
        id,
        ts,
        nick: Nickname::parse(nick).expect("nick"),
        text: MessageText::parse(text).expect("text"),
        client_id: Some(ClientId::parse(format!("c{id}")).expect("client id")),
        deletes: None,
        deleted: false,
    })
}

async fn render_log(props: MessageLogProps) -> Element {
    let root = fresh_root();
    yew::Renderer::<MessageLog>::with_root_and_props(root.clone(), props).render();
    TimeoutFuture::new(30).await;
    root.query_selector("[role=log]").expect("query").expect("a log")
}

fn texts(log: &Element, selector: &str) -> Vec<String> {
    let nodes = log.query_selector_all(selector).expect("query");
    (0..nodes.length()).filter_map(|i| nodes.item(i)).filter_map(|n| n.text_content()).collect()
}

#[wasm_bindgen_test]
async fn messages_render_as_text_not_markup() {
    let attack = "<img src=x onerror=alert(1)>";
    let log =
        render_log(MessageLogProps { log: Rc::new(vec![message(1, "mallory", attack, 1_700_000_000_000)]), ..props() })
            .await;
    assert_eq!(log.query_selector("img").expect("query"), None, "no element was injected");
    assert_eq!(texts(&log, ".message .text"), [attack]);
    assert_eq!(texts(&log, ".message .nick"), ["mallory"]);
}

#[wasm_bindgen_test]
async fn urls_become_safe_links() {
    let log = render_log(MessageLogProps {
        log: Rc::new(vec![message(1, "alice", "docs at https://example.org/x. thanks", 1_700_000_000_000)]),
        ..props()
    })
    .await;
    let link = log.query_selector(".text a").expect("query").expect("a link");
    assert_eq!(link.get_attribute("href").as_deref(), Some("https://example.org/x"));
    assert_eq!(link.get_attribute("rel").as_deref(), Some("noopener noreferrer"));
    assert_eq!(texts(&log, ".message .text"), ["docs at https://example.org/x. thanks"]);
}

#[wasm_bindgen_test]
async fn consecutive_messages_of_one_author_are_grouped_and_notices_break_groups() {
    let t = 1_700_000_000_000;
    let log = render_log(MessageLogProps {
        log: Rc::new(vec![
            message(1, "alice", "one", t),
            message(2, "alice", "two", t + 1_000),
            message(3, "bob", "three", t + 2_000),
            LogEntry::Notice { key: 1, text: "carol joined".into() },
            message(4, "bob", "four", t + 3_000),
            message(5, "bob", "much later", t + 3_000 + 10 * 60 * 1_000),
        ]),
        ..props()
    })
    .await;
    assert_eq!(texts(&log, ".message.continued .text"), ["two"]);
    assert_eq!(texts(&log, ".notice"), ["carol joined"]);
}

#[wasm_bindgen_test]
async fn own_messages_show_sending_then_sent() {
    let me = Nickname::parse("bob").expect("nick");
    let pending = Pending {
        client_id: ClientId::parse("c9").expect("id"),
        room: RoomName::lobby(),
        text: MessageText::parse("on its way").expect("text"),
    };
    let log = render_log(MessageLogProps {
        log: Rc::new(vec![
            message(1, "bob", "earlier", 1_700_000_000_000),
            message(2, "bob", "arrived", 1_700_000_001_000),
        ]),
        pending: vec![pending],
        me: Some(me),
        ..props()
    })
    .await;
    assert_eq!(texts(&log, ".message.mine:not(.pending) .delivery"), ["✓ sent"], "on the latest only");
    assert_eq!(texts(&log, ".message:has(.delivery):not(.pending) .text"), ["arrived"]);
    assert_eq!(texts(&log, ".message.pending .text"), ["on its way"]);
    assert_eq!(texts(&log, ".message.pending .delivery"), ["Sending…"]);
}

#[wasm_bindgen_test]
async fn a_deleted_message_says_so_its_deletion_has_no_line_and_delete_buttons_follow_the_rules() {
    let with = |entry: LogEntry, change: fn(&mut ChatMessage)| match entry {
        LogEntry::Message(mut message) => {
            change(&mut message);
            LogEntry::Message(message)
        }
        notice => notice,
    };
    let t = 1_700_000_000_000;
    let log = Rc::new(vec![
        message(1, "bob", "mine, kept", t),
        with(message(2, "bob", DELETED_TEXT, t + 1), |m| m.deleted = true),
        message(3, "alice", "hers", t + 2),
        with(message(4, "bob", DELETED_TEXT, t + 3), |m| m.deletes = Some(2)),
    ]);
    let me = Some(Nickname::parse("bob").expect("nick"));
    let on_delete = Some(yew::Callback::from(|_: u64| ()));
    let member =
        render_log(MessageLogProps { log: log.clone(), me: me.clone(), on_delete: on_delete.clone(), ..props() }).await;
    assert_eq!(texts(&member, ".message .text"), ["mine, kept", "message deleted", "hers"], "no line for the deletion");
    assert_eq!(texts(&member, ".message .text.deleted"), ["message deleted"]);
    // A member deletes their own messages only (and nothing deleted already).
    assert_eq!(texts(&member, ".message .delete").len(), 1);
    assert_eq!(member.query_selector("[data-id='1'] .delete").expect("query").map(|_| ()), Some(()));
    let moderator = render_log(MessageLogProps { log, me, on_delete, moderates: true, ..props() }).await;
    assert_eq!(texts(&moderator, ".message .delete").len(), 2, "a moderator deletes anyone's");
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

fn props() -> MessageLogProps {
    MessageLogProps {
        log: Rc::default(),
        pending: Vec::new(),
        me: None,
        has_more: false,
        loading_older: false,
        on_load_older: Default::default(),
        on_report: None,
        on_delete: None,
        moderates: false,
    }
}
