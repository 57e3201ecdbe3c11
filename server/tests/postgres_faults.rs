//! PostgreSQL going away under a running server (its own test binary: it
//! stops and starts the private server every PostgreSQL test shares).

mod support;

use std::process::Command;
use std::time::Duration;

use chat_server::store::location::StoreLocation;
use chat_shared::{ErrorCode, ServerMessage};
use support::postgres::fresh_database;
use support::{JsonClient, TestApp};

/// Runs `pg_ctl <action>` on the private server, as its owner.
fn pg_ctl(action: &[&str]) {
    let pg_ctl = std::env::var("CHAT_TEST_PG_CTL").expect("CHAT_TEST_PG_CTL (set by ./scripts/test)");
    let dir = std::env::var("CHAT_TEST_POSTGRES_DIR").expect("CHAT_TEST_POSTGRES_DIR");
    let data = format!("{dir}/data");
    let log = format!("{dir}/server.log");
    let mut args = vec![pg_ctl.as_str(), "-D", data.as_str(), "-l", log.as_str(), "-w"];
    args.extend(action);
    let user = std::env::var("CHAT_TEST_POSTGRES_USER").unwrap_or_default();
    let running_as_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let status = if running_as_root && !user.is_empty() && user != "root" {
        Command::new("runuser").args(["-u", &user, "--"]).args(&args).status()
    } else {
        Command::new(args[0]).args(&args[1..]).status()
    };
    assert!(status.is_ok_and(|s| s.success()), "pg_ctl {action:?} failed");
}

async fn readyz(app: &TestApp) -> u16 {
    readyz_said(app).await.0
}

async fn readyz_said(app: &TestApp) -> (u16, String) {
    let response = reqwest::get(format!("http://{}/readyz", app.address)).await.expect("readyz answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

#[actix_web::test]
async fn postgres_restarted_sends_are_refused_meanwhile_and_service_returns_by_itself() {
    let Some(url) = fresh_database().await else { return };
    let app = TestApp::spawn_configured(|config| config.database = StoreLocation::Postgres(url.clone())).await;
    assert_eq!(readyz_said(&app).await, (200, "ready\nstore (postgres): ok\n".into()));
    let mut alice = JsonClient::join(app.address, "alice").await;
    let before = alice.say("before").await;
    assert_eq!(alice.next_ack(&before).await, 1);

    pg_ctl(&["-m", "fast", "stop"]);
    let during = alice.say("during").await;
    match alice.next().await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::StoreUnavailable),
        other => panic!("expected store_unavailable, got {other:?}"),
    }
    assert_eq!(readyz_said(&app).await, (503, "not ready\nstore (postgres): unavailable\n".into()));

    pg_ctl(&["start"]);
    // No restart of ours: the pool reconnects. The client retries, as the web client does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while readyz(&app).await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    alice.say_with_id("during", &during).await;
    assert_eq!(alice.next_ack(&during).await, 2, "stored now, once, after the one acknowledged before");
    let (history, _) = JsonClient::connect(app.address).await.enter("lobby", "bob", None).await;
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["before", "during"], "nothing acknowledged was lost, nothing refused was kept");
}
