//! Resuming however long a client was away: history arrives in pages that fit
//! its queue, forward until the newest message, in order, once, and the
//! others see no ghost leave/join for it; a client too far behind (or holding
//! ids of another history) starts a fresh log instead.

mod support;

use chat_shared::limits::{HISTORY_PAGE_MAX, HISTORY_PAGE_MAX_BYTES, RESUME_MAX};
use chat_shared::{ChatMessage, ClientMessage, Epoch, ServerMessage};
use support::{JsonClient, TestApp, nick, room};

/// Posts `count` messages of `size` characters as `writer`, in bursts, while
/// `observer` (in the same room) keeps reading; returns the last stored id.
async fn post_many(writer: &mut JsonClient, observer: &mut JsonClient, count: usize, size: usize) -> u64 {
    let mut last = 0;
    let mut sent = 0;
    while sent < count {
        let burst = (count - sent).min(50);
        let mut ids = Vec::with_capacity(burst);
        for n in 0..burst {
            let text = format!("{:0>width$}", sent + n, width = size);
            ids.push(writer.say(&text).await);
        }
        for client_id in &ids {
            last = writer.next_ack(client_id).await;
        }
        while observer.next_chat().await.id < last {}
        sent += burst;
    }
    last
}

/// Pages forward with `history_after` until the server says there is nothing newer.
async fn page_forward(
    client: &mut JsonClient,
    mut log: Vec<ChatMessage>,
    mut has_newer: bool,
) -> (Vec<ChatMessage>, usize) {
    let mut pages = 1;
    while has_newer {
        let after = log.last().map_or(0, |m| m.id);
        client.send(&ClientMessage::HistoryAfter { room: room("lobby"), after, limit: HISTORY_PAGE_MAX }).await;
        loop {
            match client.next().await {
                ServerMessage::History { messages, has_newer: more, .. } => {
                    log.extend(messages);
                    has_newer = more;
                    pages += 1;
                    break;
                }
                ServerMessage::Message(_) | ServerMessage::MemberJoined { .. } | ServerMessage::Typing { .. } => {}
                other => panic!("expected a page, got {other:?}"),
            }
        }
    }
    (log, pages)
}

/// `who` can still post, and `observer` saw it arrive once, with no ghost leave/join.
async fn assert_arrived_once(who: &mut JsonClient, name: &str, observer: &mut JsonClient) {
    let said = who.say("still connected").await;
    who.next_ack(&said).await;
    assert_eq!(presence_of(observer, name, "still connected").await, ["joined"]);
}

/// What `observer` saw about `who` arriving and leaving, until the end of its queue.
async fn presence_of(observer: &mut JsonClient, who: &str, until_text: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match observer.next().await {
            ServerMessage::MemberJoined { nick: n, .. } if n == nick(who) => seen.push("joined".to_owned()),
            ServerMessage::MemberLeft { nick: n, .. } if n == nick(who) => seen.push("left".to_owned()),
            ServerMessage::Message(m) if m.text.as_str() == until_text => return seen,
            _ => {}
        }
    }
}

#[actix_web::test]
async fn a_resume_far_larger_than_the_queue_arrives_in_pages_to_the_newest_message() {
    // 1,500 messages of 4,000 characters (6 MB) against a 1 MiB queue.
    let app = TestApp::spawn().await;
    let mut away = JsonClient::connect_as_tab(app.address, "away-tab").await;
    away.enter("lobby", "away", None).await;
    let first = away.say("before leaving").await;
    let last_seen = away.next_ack(&first).await;
    away.close().await;

    let mut writer = JsonClient::join(app.address, "writer").await;
    let mut observer = JsonClient::join(app.address, "observer").await;
    let newest = post_many(&mut writer, &mut observer, 1_500, 4_000).await;
    assert!(newest - last_seen <= RESUME_MAX, "within the resume window");

    let mut back = JsonClient::connect_as_tab(app.address, "away-tab").await;
    let (page, _, (resumed, has_newer)) = back.enter_paged("lobby", "away", Some(last_seen)).await;
    assert!(resumed, "the client's log continues");
    assert!(has_newer, "one page cannot hold 6 MB");
    let page_bytes = ServerMessage::History { room: room("lobby"), messages: page.clone(), has_more: true, has_newer }
        .encode()
        .len();
    assert!(page_bytes <= HISTORY_PAGE_MAX_BYTES, "a page of {page_bytes} bytes");
    let (log, pages) = page_forward(&mut back, page, has_newer).await;

    let ids: Vec<u64> = log.iter().map(|m| m.id).collect();
    let expected: Vec<u64> = (last_seen + 1..=newest).collect();
    assert!(ids == expected, "every missed message, in order, once: {} of {}", ids.len(), expected.len());
    assert!(pages > 20, "{pages} pages");
    assert!(log.iter().all(|m| m.client_id.is_none()), "history carries nobody's client ids");

    // Still connected, and the others saw one arrival, no ghost leave/join.
    assert_arrived_once(&mut back, "away", &mut observer).await;
}

#[actix_web::test]
async fn a_client_too_far_behind_starts_a_fresh_log_at_the_newest_message() {
    let app = TestApp::spawn().await;
    let mut writer = JsonClient::join(app.address, "writer").await;
    let mut observer = JsonClient::join(app.address, "observer").await;
    let newest = post_many(&mut writer, &mut observer, RESUME_MAX as usize + 500, 1_000).await;

    let mut back = JsonClient::connect(app.address).await;
    let (page, has_more, (resumed, has_newer)) = back.enter_paged("lobby", "away", Some(1)).await;
    assert!(!resumed, "the client must drop its old log");
    assert!(!has_newer);
    assert!(has_more, "what was missed is reachable by paging back");
    assert_eq!(page.last().map(|m| m.id), Some(newest), "the page ends at the newest message");
    let ids: Vec<u64> = page.iter().map(|m| m.id).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "contiguous: {ids:?}");
}

#[actix_web::test]
async fn a_join_without_resume_in_a_room_of_huge_messages_gets_a_page_that_fits() {
    let app = TestApp::spawn_configured(|c| c.outbound_queue_bytes = 256 * 1024).await;
    let mut writer = JsonClient::join(app.address, "writer").await;
    let mut observer = JsonClient::join(app.address, "observer").await;
    // 4,000 four-byte characters: 16 KB each; 50 of them would be 800 KB.
    let huge = "🙂".repeat(4_000);
    for _ in 0..60 {
        let sent = writer.say(&huge).await;
        writer.next_ack(&sent).await;
        observer.next_chat().await;
    }
    let mut fresh = JsonClient::connect(app.address).await;
    let (page, has_more, _) = fresh.enter_paged("lobby", "fresh", None).await;
    assert!(!page.is_empty() && page.len() < 50, "{} messages", page.len());
    assert!(has_more);
    assert_eq!(page.last().map(|m| m.id), Some(60));
    assert_arrived_once(&mut fresh, "fresh", &mut observer).await;
}

#[actix_web::test]
async fn ids_of_another_epoch_or_beyond_the_newest_are_not_resumed() {
    let app = TestApp::spawn().await;
    let mut writer = JsonClient::join(app.address, "writer").await;
    for n in 0..3 {
        let sent = writer.say(&format!("m{n}")).await;
        writer.next_ack(&sent).await;
    }
    // Another database's epoch.
    let mut other = JsonClient::connect(app.address).await;
    other
        .send(&ClientMessage::Join {
            room: room("lobby"),
            nick: nick("other"),
            tab: chat_shared::ClientId::parse("other-tab").expect("tab"),
            after: Some(1),
            epoch: Some(Epoch::parse("not-this-one").expect("epoch")),
        })
        .await;
    match other.next().await {
        ServerMessage::Joined { resumed, .. } => assert!(!resumed),
        frame => panic!("expected joined, got {frame:?}"),
    }
    // Ids past the newest: the history went back (restored from a backup).
    let mut ahead = JsonClient::connect(app.address).await;
    let (page, _, (resumed, _)) = ahead.enter_paged("lobby", "ahead", Some(150)).await;
    assert!(!resumed);
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2, 3]);
}

#[actix_web::test]
async fn history_is_only_for_the_room_a_connection_is_in() {
    let app = TestApp::spawn().await;
    let mut writer = JsonClient::connect(app.address).await;
    writer.enter("secret", "writer", None).await;
    let sent = writer.say("private-ish").await;
    writer.next_ack(&sent).await;

    let mut outsider = JsonClient::join(app.address, "outsider").await;
    for request in [
        ClientMessage::History { room: room("secret"), before: 100, limit: 50 },
        ClientMessage::HistoryAfter { room: room("secret"), after: 0, limit: 50 },
    ] {
        outsider.send(&request).await;
        match outsider.next().await {
            ServerMessage::Error { code, .. } => assert_eq!(code, chat_shared::ErrorCode::NotJoined),
            frame => panic!("expected not_joined, got {frame:?}"),
        }
    }
}

#[actix_web::test]
async fn a_flood_of_history_requests_is_bounded_and_the_connection_survives() {
    let app = TestApp::spawn().await;
    let mut writer = JsonClient::join(app.address, "writer").await;
    let mut observer = JsonClient::join(app.address, "observer").await;
    post_many(&mut writer, &mut observer, 200, 4_000).await;

    // 50 page requests at once (each 256 KB): a few are read, one after another; the rest are refused.
    let mut greedy = JsonClient::join(app.address, "greedy").await;
    for _ in 0..50 {
        greedy.send(&ClientMessage::History { room: room("lobby"), before: 201, limit: HISTORY_PAGE_MAX }).await;
    }
    let (mut pages, mut refused) = (0, 0);
    while pages + refused < 50 {
        match greedy.next().await {
            ServerMessage::History { .. } => pages += 1,
            ServerMessage::Error { code: chat_shared::ErrorCode::RateLimited, .. } => refused += 1,
            ServerMessage::MemberJoined { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // At most one page is read and four wait at any moment; a slot that frees
    // while the flood still arrives takes one more (measured: 6 read, 44 refused).
    assert!(pages >= 1 && refused > 0, "{pages} read, {refused} refused: the rest must not pile up");
    assert!(pages < 25, "{pages} pages read: nearly everything was queued");
    let said = greedy.say("still here").await;
    greedy.next_ack(&said).await;
}
