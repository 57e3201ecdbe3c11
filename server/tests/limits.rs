//! Input limits, rate limits, connection caps, heartbeats and slow consumers,
//! over real sockets.

mod support;

use std::time::Duration;

use chat_shared::{ErrorCode, ServerMessage};
use support::raw_frames::{close_code, frame, handshake, read_frame};
use support::{JsonClient, TestApp};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

const TEXT: u8 = 0x81;

#[actix_web::test]
async fn invalid_utf8_closes_with_1007_whole_or_fragmented() {
    let app = TestApp::spawn().await;
    for path in ["/", "/ws"] {
        let mut stream = handshake(app.address, path, None).await;
        stream.write_all(&frame(TEXT, &[0xce, 0xba, 0xff, 0xfe])).await.expect("sent");
        assert_eq!(close_code(&mut stream, Duration::from_secs(5)).await, Some(1007), "{path}");

        let mut stream = handshake(app.address, path, None).await;
        stream.write_all(&frame(0x01, b"valid start ")).await.expect("first fragment");
        stream.write_all(&frame(0x80, &[0xed, 0xa0, 0x80])).await.expect("last fragment");
        assert_eq!(close_code(&mut stream, Duration::from_secs(5)).await, Some(1007), "{path} fragmented");
    }
}

#[actix_web::test]
async fn reserved_bits_close_with_1002() {
    let app = TestApp::spawn().await;
    let mut stream = handshake(app.address, "/", None).await;
    stream.write_all(&frame(TEXT | 0x40, b"hi")).await.expect("sent");
    assert_eq!(close_code(&mut stream, Duration::from_secs(5)).await, Some(1002));
}

#[actix_web::test]
async fn the_message_size_limit_is_configurable() {
    let app = TestApp::spawn_configured(|c| c.max_message_bytes = 2048).await;
    let mut stream = handshake(app.address, "/", None).await;
    stream.write_all(&frame(TEXT, &[b'a'; 2000])).await.expect("sent");
    assert_eq!(read_frame(&mut stream).await.map(|(op, p)| (op, p.len())), Some((0x1, 2000)), "echoed");
    stream.write_all(&frame(TEXT, &[b'a'; 3000])).await.expect("sent");
    assert_eq!(close_code(&mut stream, Duration::from_secs(5)).await, Some(1009));
}

#[actix_web::test]
async fn a_burst_is_allowed_excess_is_refused_and_a_flood_is_closed() {
    let app = TestApp::spawn_configured(|c| {
        c.rate_limit = 10;
        c.rate_burst = 20;
    })
    .await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    for n in 0..25 {
        alice.say(&format!("burst {n}")).await;
    }
    let (mut stored, mut limited) = (0, 0);
    while stored + limited < 25 {
        match alice.next().await {
            ServerMessage::Ack { .. } => stored += 1,
            ServerMessage::Error { code: ErrorCode::RateLimited, .. } => limited += 1,
            ServerMessage::Message(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The join took one token of the burst.
    assert!(stored >= 19 && limited >= 1, "stored {stored}, limited {limited}");

    // A sustained flood is a policy violation.
    for n in 0..200 {
        alice.raw().send(Message::text(format!("{{\"type\":\"typing\",\"room\":\"lobby\",\"n\":{n}}}"))).await;
    }
    assert_eq!(alice.raw().close_code().await, 1008);
}

#[actix_web::test]
async fn repeated_invalid_frames_are_closed_with_1008() {
    let app = TestApp::spawn().await;
    let mut client = JsonClient::connect(app.address).await;
    for _ in 0..30 {
        client.raw().send(Message::text("not json")).await;
    }
    assert_eq!(client.raw().close_code().await, 1008);
}

async fn upgrade_status(address: std::net::SocketAddr) -> u16 {
    match tokio_tungstenite::connect_async(format!("ws://{address}/ws")).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected {other}"),
    }
}

#[actix_web::test]
async fn connection_caps_refuse_with_429_per_ip_and_503_in_all() {
    let app = TestApp::spawn_configured(|c| c.max_connections_per_ip = 2).await;
    let _first = JsonClient::connect(app.address).await;
    let second = JsonClient::connect(app.address).await;
    assert_eq!(upgrade_status(app.address).await, 429);
    second.close().await;
    let freed = tokio::time::timeout(support::PATIENCE, async {
        loop {
            if upgrade_status(app.address).await == 101 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "a closed connection frees its place");

    let app = TestApp::spawn_configured(|c| c.max_connections = 1).await;
    let _only = JsonClient::connect(app.address).await;
    assert_eq!(upgrade_status(app.address).await, 503);
}

#[actix_web::test]
async fn idle_peers_are_pinged_and_silent_ones_dropped() {
    let app = TestApp::spawn_configured(|c| {
        c.ping_interval_secs = 1;
        c.idle_timeout_secs = 2;
    })
    .await;
    // A peer that never answers: pinged, then closed.
    let mut silent = handshake(app.address, "/ws", None).await;
    let mut pinged = false;
    let code = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some((opcode, payload)) = read_frame(&mut silent).await {
            match opcode {
                0x9 => pinged = true,
                0x8 => return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])),
                _ => {}
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert!(pinged, "the server pinged before giving up");
    assert_eq!(code, Some(1001));

    // A peer that answers pings (tungstenite does while reading) stays.
    let mut lively = JsonClient::join(app.address, "lively").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(frame) = tokio::time::timeout_at(deadline, lively.raw().next()).await {
        assert!(matches!(frame, Some(Message::Text(_))), "still open after twice the timeout: {frame:?}");
    }
    lively.say("still here").await;
    assert_eq!(lively.next_chat().await.text.as_str(), "still here");
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_dropped_without_delaying_the_others() {
    let app = TestApp::spawn_configured(|c| c.outbound_queue_bytes = 64 * 1024).await;
    let mut stalled = handshake(app.address, "/ws", Some(4096)).await;
    let join = r#"{"type":"join","room":"lobby","nick":"stalled","tab":"stalled-tab"}"#;
    stalled.write_all(&frame(TEXT, join.as_bytes())).await.expect("joined");
    let mut reader = JsonClient::join(app.address, "reader").await;
    let mut writer = JsonClient::join(app.address, "writer").await;

    let text = "x".repeat(3_000);
    let started = std::time::Instant::now();
    // In windows of 20 (not one round trip, and one commit, per message).
    for _ in 0..150 {
        let mut window = Vec::new();
        for _ in 0..20 {
            window.push(writer.say(&text).await);
        }
        for sent in &window {
            writer.next_ack(sent).await;
            assert_eq!(reader.next_chat().await.text.as_str().len(), 3_000);
        }
    }
    assert!(started.elapsed() < Duration::from_secs(30), "the others were not held up");

    let metrics =
        reqwest::get(format!("http://{}/metrics", app.address)).await.expect("metrics").text().await.expect("body");
    assert!(metrics.contains("chat_slow_consumer_closes_total 1"), "{metrics}");
    // The stalled client's socket ends with a policy close once it reads again.
    let code = close_code(&mut stalled, Duration::from_secs(10)).await;
    assert_eq!(code, Some(1008));
}

/// The open-connections gauge of the JSON endpoint, from `/metrics`.
async fn open_json_connections(app: &TestApp) -> i64 {
    let metrics =
        reqwest::get(format!("http://{}/metrics", app.address)).await.expect("metrics").text().await.expect("body");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("chat_open_connections{endpoint=\"json\"} "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn a_peer_that_never_reads_cannot_wedge_its_session() {
    let app = TestApp::spawn_configured(|c| {
        c.ping_interval_secs = 1;
        c.idle_timeout_secs = 2;
        c.max_connections_per_ip = 3;
    })
    .await;
    // A tiny receive buffer, never read: the server's writes stall on a zero window.
    let mut stalled = handshake(app.address, "/ws", Some(2048)).await;
    let join = r#"{"type":"join","room":"lobby","nick":"stalled","tab":"stalled-tab"}"#;
    stalled.write_all(&frame(TEXT, join.as_bytes())).await.expect("joined");
    let mut writer = JsonClient::join(app.address, "writer").await;
    // Keeps sending (the stalled peer is not silent), so only the write deadline can end it.
    let keep_talking = tokio::spawn(async move {
        let ping = frame(0x89, b"still here");
        while stalled.write_all(&ping).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    // Far more than the kernel's buffers and the 1 MiB queue hold, sent while
    // watching the gauge: the stalled session must go while the flood goes on
    // (its writes time out), not only once everything is quiet again.
    assert_eq!(open_json_connections(&app).await, 2, "stalled and writer");
    // 16 KB each (four-byte characters): 24 MB in all.
    let text = "🙂".repeat(4_000);
    let mut released_at = None;
    for n in 0..1_500 {
        let sent = writer.say(&text).await;
        writer.next_ack(&sent).await;
        if n % 25 == 0 && released_at.is_none() && open_json_connections(&app).await == 1 {
            released_at = Some(n);
        }
    }
    assert!(released_at.is_some_and(|n| n < 1_400), "released after {released_at:?} of 1,500 messages");
    // Its place under the per-address cap is free again: two more fit beside the writer.
    let _a = JsonClient::join(app.address, "a").await;
    let _b = JsonClient::join(app.address, "b").await;
    keep_talking.abort();
}

#[actix_web::test]
async fn a_ping_flood_is_not_answered_in_kind_and_is_closed() {
    let app = TestApp::spawn().await;
    let mut flooder = handshake(app.address, "/ws", None).await;
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.extend(frame(0x89, b"ping"));
    }
    flooder.write_all(&flood).await.expect("flood sent");
    let mut pongs = 0;
    let code = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some((opcode, payload)) = read_frame(&mut flooder).await {
            match opcode {
                0xA => pongs += 1,
                0x8 => return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])),
                _ => {}
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(code, Some(1008));
    assert!(pongs <= 20, "{pongs} pongs for 200 pings");
}
