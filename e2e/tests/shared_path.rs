//! Nothing slow sits on the path rooms share: while five clients a second
//! join room A and page through the heaviest resume it allows (2,000
//! messages of 4,000 characters, 8 MB each), a client in room B keeps getting
//! its acks promptly. Run against the release server over real sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_e2e::{Artefacts, ProtocolClient};
use chat_shared::limits::{HISTORY_PAGE_MAX, RESUME_MAX};
use chat_shared::{ClientId, ClientMessage, Nickname, RoomName};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const ROOM_A: &str = "busy-history";

/// Joins room A resuming after `after` and pages forward to the end; returns
/// the messages received. Reads frames without decoding them in full (the
/// test's own CPU is shared with the server's).
async fn resume_through(address: SocketAddr, n: usize, after: u64) -> u64 {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws")).await.expect("connects");
    let room = RoomName::parse(ROOM_A).expect("room");
    let join = ClientMessage::Join {
        room: room.clone(),
        nick: Nickname::parse(format!("reader{n}")).expect("nick"),
        tab: ClientId::parse(format!("reader{n}-tab")).expect("tab"),
        after: Some(after),
        epoch: None,
    };
    socket.send(Message::text(join.encode())).await.expect("join sent");
    let mut received = 0;
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        if !text.starts_with("{\"type\":\"history\"") {
            continue;
        }
        received += text.matches("\"nick\":").count() as u64;
        if !text.ends_with("\"has_newer\":true}") {
            break;
        }
        let last = text.rfind("\"id\":").and_then(|at| {
            let digits: String = text[at + 5..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        });
        let request =
            ClientMessage::HistoryAfter { room: room.clone(), after: last.expect("an id"), limit: HISTORY_PAGE_MAX };
        socket.send(Message::text(request.encode())).await.expect("page requested");
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_resumes_in_one_room_do_not_delay_acks_in_another() {
    let (server, _data) =
        Artefacts::locate().start_server(&["--rate-limit", "0", "--max-connections-per-ip", "1000"]).await;
    let address = server.address;
    let mut seeder = ProtocolClient::join_room(address, ROOM_A, "seeder").await;
    let newest = seeder.post((1..=10_000).map(|n| format!("{n:05}{}", "x".repeat(3_995)))).await;
    drop(seeder);

    let mut pinger = ProtocolClient::join_room(address, "quiet-room", "pinger").await;
    let started = Instant::now();
    let joins = tokio::spawn(async move {
        let mut readers = Vec::new();
        for n in 0..25 {
            readers.push(tokio::spawn(resume_through(address, n, newest - RESUME_MAX)));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut total = 0;
        for reader in readers {
            total += reader.await.expect("reader finished");
        }
        total
    });
    let mut latencies = Vec::new();
    while !joins.is_finished() {
        latencies.push(pinger.say_and_wait_for_ack(&format!("ping {}", latencies.len())).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = joins.await.expect("joins finished");
    let elapsed = started.elapsed();
    assert_eq!(delivered, 25 * RESUME_MAX, "every reader got every message it resumed");

    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    let p50 = latencies[latencies.len() / 2];
    eprintln!(
        "{} acks in room B while 25 readers took {} MB of history in {elapsed:.1?}: p50 {p50:?}, p99 {p99:?}",
        latencies.len(),
        delivered * 4_100 / 1_000_000
    );
    assert!(latencies.len() >= 50, "{} samples", latencies.len());
    assert!(p99 < Duration::from_millis(50), "p99 of acks in room B: {p99:?}");
    server.kill().await;
}
