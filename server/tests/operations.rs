//! Operations: health and metrics endpoints, graceful shutdown (in process and
//! by SIGTERM to the real binary), and durability across `kill -9`.

mod support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chat_shared::{ClientMessage, ServerMessage};
use support::process::{KilledBurst, ServerProcess, burst_then_kill};
use support::{JsonClient, RawClient, TestApp, room};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

async fn get(url: String) -> (u16, String) {
    let response = reqwest::get(url).await.expect("request");
    (response.status().as_u16(), response.text().await.expect("body"))
}

/// Asserts `/metrics` answers 200 and shows every one of `series`.
async fn assert_metrics(app: &TestApp, series: &[&str]) {
    let (status, text) = get(format!("http://{}/metrics", app.address)).await;
    assert_eq!(status, 200);
    for expected in series {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[actix_web::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    assert_eq!(get(format!("http://{}/healthz", app.address)).await, (200, "ok".into()));
    assert_eq!(get(format!("http://{}/readyz", app.address)).await, (200, "ready\nstore (sqlite): ok\n".into()));

    let mut alice = JsonClient::join(app.address, "alice").await;
    alice.say("counted").await;
    alice.next_chat().await;
    let forged = tokio_tungstenite::tungstenite::handshake::client::Request::builder()
        .uri(format!("ws://{}/ws", app.address))
        .header("Host", app.address.to_string())
        .header("Origin", "https://evil.example")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .expect("request");
    assert!(tokio_tungstenite::connect_async(forged).await.is_err());

    assert_metrics(
        &app,
        &[
            "chat_open_connections{endpoint=\"json\"} 1",
            "chat_messages_in_total{endpoint=\"json\"} 2",
            "chat_upgrades_refused_total{reason=\"Origin\"} 1",
            "chat_store_latency_seconds_count{operation=\"Append\"} 1",
            "chat_rate_limited_frames_total 0",
            "chat_slow_consumer_closes_total 0",
            "chat_bytes_out_total{endpoint=\"json\"}",
        ],
    )
    .await;
}

#[actix_web::test]
async fn shutdown_closes_every_socket_with_1001() {
    let (app, trigger) = TestApp::spawn_with_shutdown().await;
    let mut json = JsonClient::join(app.address, "alice").await;
    let mut plain = RawClient::connect(app.address, "/").await;
    trigger.fire();
    for client in [json.raw(), &mut plain] {
        assert_eq!(client.close_code().await, 1001);
    }
}

async fn start_binary(database: &Path) -> ServerProcess {
    ServerProcess::start([OsStr::new("--database"), database.as_os_str()]).await
}

#[actix_web::test]
async fn sigterm_closes_sockets_with_1001_and_exits_within_5_seconds() {
    let dir = tempfile::tempdir().expect("dir");
    let mut process = start_binary(&dir.path().join("chat.sqlite3")).await;
    let mut alice = JsonClient::join(process.address, "alice").await;
    let pid = process.child.id().expect("pid").to_string();
    let started = Instant::now();
    let status = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
    assert!(status.success());
    assert_eq!(alice.raw().close_code().await, 1001);
    let exit = tokio::time::timeout(Duration::from_secs(5), process.child.wait()).await.expect("exits in 5 s");
    assert!(exit.expect("exit status").success());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// SIGTERM to `process`; returns once it has exited, successfully.
async fn terminate(mut process: ServerProcess) {
    let pid = process.child.id().expect("pid").to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(5), process.child.wait()).await.expect("exits in 5 s");
    assert!(exit.expect("exit status").success());
}

#[actix_web::test]
async fn after_a_clean_stop_a_copy_of_the_main_file_alone_is_a_whole_backup() {
    let dir = tempfile::tempdir().expect("dir");
    let database = dir.path().join("chat.sqlite3");
    let process = start_binary(&database).await;
    let registered =
        support::accounts::credentials(process.address, "/api/register", "carol", "a long passphrase").await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let mut alice = JsonClient::join(process.address, "alice").await;
    for n in 1..=5 {
        alice.say(&format!("kept {n}")).await;
        alice.next_chat().await;
    }
    terminate(process).await;

    // What a backup script copies: the main file, not its -wal or -shm.
    let copy_dir = tempfile::tempdir().expect("dir");
    let copy = copy_dir.path().join("chat.sqlite3");
    std::fs::copy(&database, &copy).expect("copied");
    let restored = start_binary(&copy).await;
    let mut reader = JsonClient::connect(restored.address).await;
    let (stored, _) = reader.enter("lobby", "reader", None).await;
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["kept 1", "kept 2", "kept 3", "kept 4", "kept 5"]);
    let signed_in = support::accounts::credentials(restored.address, "/api/login", "carol", "a long passphrase").await;
    assert_eq!(signed_in.status, 200, "the account is in the copy too: {}", signed_in.body);
}

#[actix_web::test]
async fn kill_9_during_a_burst_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("dir");
    let database = dir.path().join("chat.sqlite3");
    let mut process = start_binary(&database).await;
    let mut alice = JsonClient::join(process.address, "alice").await;

    let KilledBurst { texts, acked } = burst_then_kill(&mut alice, &mut process, 2_000, 300).await;

    let restarted = start_binary(&database).await;
    let mut reader = JsonClient::connect(restarted.address).await;
    let (mut stored, mut has_more) = reader.enter("lobby", "reader", None).await;
    while has_more {
        let before = stored[0].id;
        reader.send(&ClientMessage::History { room: room("lobby"), before, limit: 200 }).await;
        match reader.next().await {
            ServerMessage::History { messages, has_more: more, .. } => {
                stored.splice(0..0, messages);
                has_more = more;
            }
            other => panic!("expected history, got {other:?}"),
        }
    }
    // History carries no client ids (they are their author's business): match by text.
    let by_id: HashMap<u64, &str> = stored.iter().map(|m| (m.id, m.text.as_str())).collect();
    for (client_id, id) in &acked {
        assert_eq!(
            by_id.get(id).copied(),
            Some(texts[client_id].as_str()),
            "acknowledged {client_id} as {id} but it was lost"
        );
    }
    assert!(acked.len() >= 300, "acks seen: {}", acked.len());
}

#[actix_web::test]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--bind", "127.0.0.1:0", "--static-dir", "does-not-exist", "--log-format", "json", "--database"])
        .arg(dir.path().join("chat.sqlite3"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = tokio::time::timeout(support::PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if event["message"] == "listening" {
                return event;
            }
        }
        panic!("exited before listening");
    })
    .await
    .expect("listening in time");
    assert_eq!(listening["level"], "INFO");
    assert!(listening["address"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{listening}");
    child.kill().await.expect("stopped");
}

#[actix_web::test]
async fn metrics_show_every_series_before_any_traffic() {
    let app = TestApp::spawn().await;
    assert_metrics(
        &app,
        &[
            "chat_open_connections{endpoint=\"json\"} 0",
            "chat_open_connections{endpoint=\"plain\"} 0",
            "chat_upgrades_refused_total{reason=\"Origin\"} 0",
            "chat_store_latency_seconds_count{operation=\"Append\"} 0",
        ],
    )
    .await;
}
