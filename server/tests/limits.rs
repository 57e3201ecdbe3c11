//! Input limits, rate limits, connection caps, heartbeats and slow consumers,
//! over real sockets.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// What `/metrics` says of slow consumers at one moment.
#[derive(Debug, Clone, Copy)]
struct SlowConsumerGauges {
    /// Open sockets on the JSON endpoint.
    open_json: i64,
    /// Open sockets on the plain endpoint.
    open_plain: i64,
    /// Sessions dropped for not keeping up (queue overflow or a write past its deadline).
    slow_closes: u64,
}

/// One reading of `/metrics`, both numbers from the same scrape.
async fn slow_consumer_gauges(app: &TestApp) -> SlowConsumerGauges {
    let metrics =
        reqwest::get(format!("http://{}/metrics", app.address)).await.expect("metrics").text().await.expect("body");
    let value = |prefix: &str| metrics.lines().find_map(|line| line.strip_prefix(prefix)?.trim().parse::<f64>().ok());
    SlowConsumerGauges {
        open_json: value("chat_open_connections{endpoint=\"json\"} ").unwrap_or(0.0) as i64,
        open_plain: value("chat_open_connections{endpoint=\"plain\"} ").unwrap_or(0.0) as i64,
        slow_closes: value("chat_slow_consumer_closes_total ").unwrap_or(0.0) as u64,
    }
}

/// A flood running in its own task.
struct Flood {
    /// Clear to stop it.
    flooding: Arc<AtomicBool>,
    /// Gives the writer back once stopped.
    task: tokio::task::JoinHandle<JsonClient>,
    /// When its first message was stored, and so sent to the room.
    first_stored: tokio::sync::oneshot::Receiver<Instant>,
}

/// Floods `writer`'s room with 16 KB messages, each after the ack of the one
/// before (far more than the kernel's buffers and an outbound queue hold).
fn flood_room(mut writer: JsonClient) -> Flood {
    let flooding = Arc::new(AtomicBool::new(true));
    let (stored, first_stored) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let flooding = flooding.clone();
        async move {
            let text = "🙂".repeat(4_000);
            let mut stored = Some(stored);
            while flooding.load(Ordering::Relaxed) {
                let sent = writer.say(&text).await;
                writer.next_ack(&sent).await;
                if let Some(stored) = stored.take() {
                    let _ = stored.send(Instant::now());
                }
            }
            writer
        }
    });
    Flood { flooding, task, first_stored }
}

impl Flood {
    /// Stops the flood.
    async fn stop(self) {
        self.flooding.store(false, Ordering::Relaxed);
        let _writer = self.task.await.expect("the writer");
    }
}

/// When the server gave up on a slow consumer and when its connection
/// stopped counting as open, watched through `/metrics`.
#[derive(Debug, Default)]
struct Release {
    /// When it was dropped as a slow consumer (its queue overflowed, or a
    /// write waited past its deadline), if the server's own rules ended it.
    dropped_at: Option<Instant>,
    /// When `released` first held.
    released_at: Option<Instant>,
}

/// Scrapes `/metrics` every 20 ms until `released` holds (or a minute passes).
async fn watch_release(app: &TestApp, released: impl Fn(SlowConsumerGauges) -> bool) -> Release {
    let mut release = Release::default();
    let watching = Instant::now();
    while release.released_at.is_none() && watching.elapsed() < Duration::from_secs(60) {
        let gauges = slow_consumer_gauges(app).await;
        let now = Instant::now();
        if gauges.slow_closes > 0 {
            release.dropped_at.get_or_insert(now);
        }
        if released(gauges) {
            release.released_at = Some(now);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    release
}

/// The write deadline of [`a_peer_that_never_reads_is_released_within_the_write_deadline`]
/// (the idle timeout it configures).
const WRITE_DEADLINE: Duration = Duration::from_secs(2);

/// How often the never-reading peer sends: less often than the kernel's
/// first window probe (one retransmission timeout, at least 200 ms), which
/// is what lets `TCP_USER_TIMEOUT` end its connection.
const STALLED_PEER_SENDS_EVERY: Duration = Duration::from_millis(500);

/// What the bounds measured from a stall allow past the deadline. The
/// kernel counts its user timeout from its first window probe, which waits
/// at least one retransmission timeout (200 ms) and more on a loaded machine;
/// the peer then notices at its next send (up to `STALLED_PEER_SENDS_EVERY`
/// later); and 20 ms between scrapes, and scheduling. Seen here: the
/// connection gone 3.0 s after the stall in 20 of 20 quiet runs.
const MARGIN: Duration = Duration::from_millis(2_500);

/// How soon after it was dropped a slow consumer must be released: at once,
/// not after its queue is written out.
const AT_ONCE: Duration = Duration::from_millis(500);

#[actix_web::test]
async fn a_peer_that_never_reads_is_released_within_the_write_deadline() {
    let app = TestApp::spawn_configured(|c| {
        c.ping_interval_secs = 1;
        c.idle_timeout_secs = WRITE_DEADLINE.as_secs();
        c.max_connections_per_ip = 3;
    })
    .await;
    // A tiny receive buffer, never read: the server's writes stall on a zero window.
    let mut stalled = handshake(app.address, "/ws", Some(2048)).await;
    let join = r#"{"type":"join","room":"lobby","nick":"stalled","tab":"stalled-tab"}"#;
    stalled.write_all(&frame(TEXT, join.as_bytes())).await.expect("joined");
    let writer = JsonClient::join(app.address, "writer").await;
    assert_eq!(slow_consumer_gauges(&app).await.open_json, 2, "stalled and writer");
    // Keeps sending (the stalled peer is not silent), so only the write deadline
    // can end it; says when its writes failed (the server's side was gone).
    // Unsolicited pongs (a one-way heartbeat, RFC 6455 §5.5.3), every
    // `STALLED_PEER_SENDS_EVERY`: each segment it sends re-arms the server
    // kernel's window probe, and one more often than the probe's 200 ms keeps
    // it from ever firing, and so its user timeout from ever counting (seen
    // here: at 50 ms, the connection outlived its session in 5 of 12 runs).
    let keep_talking = tokio::spawn(async move {
        let pong = frame(0x8A, b"still here");
        while stalled.write_all(&pong).await.is_ok() {
            tokio::time::sleep(STALLED_PEER_SENDS_EVERY).await;
        }
        Instant::now()
    });
    let mut flood = flood_room(writer);

    let Release { dropped_at, released_at } = watch_release(&app, |gauges| gauges.open_json == 1).await;
    assert!(!flood.task.is_finished(), "the flood went on throughout");
    // Its window shut when the first message of the flood reached it (sent to
    // the room as it was stored), which it did not read.
    let stalled_at = (&mut flood.first_stored).await.expect("the first message was stored");
    let released_at = released_at.expect("the stalled peer's connection was released");
    // Whichever came first (its queue overflowing, a write waiting past the
    // deadline, or the kernel aborting a connection whose window stayed shut
    // that long), the session ended within the deadline of the stall...
    let stalled_for = released_at.duration_since(stalled_at);
    assert!(stalled_for <= WRITE_DEADLINE + MARGIN, "released {stalled_for:?} after its window shut");
    // ...and at once if the server dropped it first (not after writing out its queue).
    if let Some(dropped_at) = dropped_at {
        let late = released_at.duration_since(dropped_at);
        assert!(late <= AT_ONCE, "released {late:?} after it was dropped");
    }
    // Its place under the per-address cap is free again: two more fit beside the writer.
    let _a = JsonClient::join(app.address, "a").await;
    let _b = JsonClient::join(app.address, "b").await;
    // And its TCP connection went too, within the deadline of the stall (the
    // kernel aborts it, TCP_USER_TIMEOUT): the peer's next writes fail.
    let gone_at = tokio::time::timeout(WRITE_DEADLINE * 5, keep_talking)
        .await
        .expect("the server gave the stalled connection up")
        .expect("the stalled peer's task");
    let lingered = gone_at.duration_since(stalled_at);
    // Shown with --nocapture: the figures behind the bounds.
    let dropped_after = dropped_at.map(|dropped_at| dropped_at.duration_since(stalled_at));
    println!("stalled: dropped after {dropped_after:?}, released after {stalled_for:?}, TCP gone after {lingered:?}");
    assert!(lingered <= WRITE_DEADLINE + MARGIN, "its connection lasted {lingered:?} after its window shut");
    flood.stop().await;
}

#[actix_web::test]
async fn a_reader_too_slow_for_its_room_is_released_at_once_though_it_still_reads() {
    // On both endpoints: plain sessions hear the lobby too.
    for path in ["/ws", "/"] {
        // The smallest queue (128 KB), and the default write deadline (60 s), which
        // a reader that makes progress never reaches: only its queue overflowing ends it.
        let app = TestApp::spawn_configured(|c| c.outbound_queue_bytes = 0).await;
        let mut slow = handshake(app.address, path, Some(4096)).await;
        if path == "/ws" {
            let join = r#"{"type":"join","room":"lobby","nick":"slow","tab":"slow-tab"}"#;
            slow.write_all(&frame(TEXT, join.as_bytes())).await.expect("joined");
        }
        let writer = JsonClient::join(app.address, "writer").await;
        let open = |gauges: SlowConsumerGauges| gauges.open_json + gauges.open_plain;
        assert_eq!(open(slow_consumer_gauges(&app).await), 2, "slow and writer");
        // Reads 2 KB every 50 ms (40 KB/s): its window keeps opening, so neither a
        // write deadline nor the kernel gives up on it.
        let trickle = tokio::spawn(async move {
            let mut buffer = [0_u8; 2048];
            while let Ok(read) = tokio::io::AsyncReadExt::read(&mut slow, &mut buffer).await {
                if read == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let flood = flood_room(writer);

        let Release { dropped_at, released_at } = watch_release(&app, |gauges| open(gauges) == 1).await;
        assert!(!flood.task.is_finished(), "{path}: the flood went on throughout");
        let dropped_at = dropped_at.unwrap_or_else(|| panic!("{path}: the slow reader was dropped as a slow consumer"));
        let released_at = released_at.unwrap_or_else(|| panic!("{path}: the slow reader was released"));
        // Not after trickling out the 128 KB still queued for it (over 3 s at its pace).
        let late = released_at.duration_since(dropped_at);
        assert!(late <= AT_ONCE, "{path}: released {late:?} after it was dropped");
        flood.stop().await;
        trickle.abort();
    }
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
