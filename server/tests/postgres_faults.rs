//! PostgreSQL going away under a running server, and under a node of
//! several subscribing a room (its own test binary: it stops and starts the
//! private server every PostgreSQL test shares; its tests take turns).

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

/// Held by each test while it may stop the server the others use.
static POSTGRES_STOPPER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn readyz(app: &TestApp) -> u16 {
    readyz_said(app).await.0
}

async fn readyz_said(app: &TestApp) -> (u16, String) {
    let response = reqwest::get(format!("http://{}/readyz", app.address)).await.expect("readyz answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

#[actix_web::test]
async fn postgres_restarted_sends_are_refused_meanwhile_and_service_returns_by_itself() {
    let _alone = POSTGRES_STOPPER.lock().await;
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

#[actix_web::test]
async fn a_node_that_subscribed_a_room_while_postgres_was_down_hears_it_in_order_once_it_is_back() {
    let _alone = POSTGRES_STOPPER.lock().await;
    let Some((database, redis)) = support::redis::services().await else { return };
    let node_a = support::redis::node(&database, &redis).await;
    let node_b = support::redis::node(&database, &redis).await;
    let mut alice = JsonClient::connect(node_a.address).await;
    alice.enter("dev", "alice", None).await;
    let first = alice.say("before").await;
    assert_eq!(alice.next_ack(&first).await, 1);

    // Bob joins #dev on node B, new to it, while PostgreSQL is down: node B
    // cannot read the room's newest id (nor bob his history).
    pg_ctl(&["-m", "fast", "stop"]);
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.send_join("dev", "bob", None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, bob.next()).await.expect("an answer to the join");
        if matches!(next, ServerMessage::Joined { .. }) {
            break;
        }
    }
    // Longer than a request waits for a connection: the reads fail.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg_ctl(&["start"]);
    for node in [&node_a, &node_b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while readyz(node).await != 200 {
            assert!(tokio::time::Instant::now() < deadline, "never ready again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for n in 2..=6 {
        let said = alice.say(&format!("after {n}")).await;
        assert_eq!(alice.next_ack(&said).await, n);
    }
    // His history, whose read waited for the store, and the live messages
    // (which wait behind it) reach him as one log: each id once, in order.
    let mut heard: Vec<u64> = Vec::new();
    while heard.last() != Some(&6) {
        let next = tokio::time::timeout(Duration::from_secs(10), bob.next()).await;
        match next.unwrap_or_else(|_| panic!("bob heard only {heard:?}")) {
            ServerMessage::History { messages, .. } => heard.extend(messages.iter().map(|m| m.id)),
            ServerMessage::Message(message) => heard.push(message.id),
            _ => {}
        }
    }
    assert_eq!(heard, [1, 2, 3, 4, 5, 6], "each id once, in order, from the first message");
}

#[actix_web::test]
async fn a_client_that_reconnects_while_postgres_restarts_still_resumes_where_it_was() {
    let _alone = POSTGRES_STOPPER.lock().await;
    let Some(url) = fresh_database().await else { return };
    let app = TestApp::spawn_configured(|config| config.database = StoreLocation::Postgres(url.clone())).await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    for n in 1..=3 {
        let said = alice.say(&format!("message {n}")).await;
        assert_eq!(alice.next_ack(&said).await, n);
    }
    alice.close().await;

    // Her tab reconnects holding ids 1..=1 while the database is down; it
    // comes back 1.5 s later (a restart), within the join's patience.
    pg_ctl(&["-m", "fast", "stop"]);
    let restart = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tokio::task::spawn_blocking(|| pg_ctl(&["start"])).await
    });
    let mut alice = JsonClient::connect(app.address).await;
    let (messages, _, (resumed, has_newer)) = alice.enter_paged("lobby", "alice", Some(1)).await;
    restart.await.expect("the restart task").expect("pg_ctl start");
    assert!(resumed, "the join waited for the store to say she may resume, not started her afresh");
    let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
    assert_eq!((ids, has_newer), (vec![2, 3], false), "exactly what she missed");
}

#[actix_web::test]
async fn while_postgres_is_down_guests_still_join_and_a_name_seen_registered_stays_reserved() {
    let _alone = POSTGRES_STOPPER.lock().await;
    let Some(url) = fresh_database().await else { return };
    let app = TestApp::spawn_configured(|config| config.database = StoreLocation::Postgres(url.clone())).await;
    let registered = support::accounts::credentials(app.address, "/api/register", "alice", "correct horse").await;
    assert_eq!(registered.status, 201);

    pg_ctl(&["-m", "fast", "stop"]);
    let mut guest = JsonClient::connect(app.address).await;
    guest.send_join("lobby", "ALICE", None).await;
    let refused = guest.next().await;
    let mut carol = JsonClient::connect(app.address).await;
    carol.send_join("lobby", "carol", None).await;
    let joined = carol.next().await;
    pg_ctl(&["start"]);
    assert!(matches!(refused, ServerMessage::Error { code: ErrorCode::NameReserved, .. }), "{refused:?}");
    assert!(matches!(joined, ServerMessage::Joined { .. }), "a guest chats on through the outage: {joined:?}");
}

#[actix_web::test]
async fn while_postgres_is_down_a_known_ban_and_a_known_private_room_still_keep_people_out() {
    let _alone = POSTGRES_STOPPER.lock().await;
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (support::redis::node(&database, &redis).await, support::redis::node(&database, &redis).await);
    let alice = support::accounts::registered(a.address, "alice").await;
    let carol = support::accounts::registered(a.address, "carol").await;
    for (name, private) in [("ops", true), ("hall", false)] {
        let body = serde_json::json!({ "name": name, "private": private });
        let created = support::accounts::api(reqwest::Method::POST, a.address, "/api/rooms", Some(body), &alice).await;
        assert_eq!(created.status, 201);
    }
    // Carol is banned from alice's open room on node A; node B hears of it.
    let ban = serde_json::json!({ "user": "carol" });
    let banned =
        support::accounts::api(reqwest::Method::POST, a.address, "/api/rooms/hall/bans", Some(ban), &alice).await;
    assert_eq!(banned.status, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // PostgreSQL goes away (her socket was open before: a session cookie
    // cannot be checked without it): node B goes by what it knows.
    let mut carol_on_b = JsonClient::connect_with_cookie(b.address, Some(&carol)).await;
    pg_ctl(&["-m", "fast", "stop"]);
    carol_on_b.send_join("hall", "carol", None).await;
    let hall = carol_on_b.next().await;
    carol_on_b.send_join("ops", "carol", None).await;
    let ops = carol_on_b.next().await;
    let mut guest = JsonClient::connect(b.address).await;
    guest.send_join("hall", "dave", None).await;
    let guest_joined = guest.next().await;
    pg_ctl(&["start"]);
    assert!(matches!(hall, ServerMessage::Error { code: ErrorCode::Banned, .. }), "{hall:?}");
    assert!(matches!(ops, ServerMessage::Error { code: ErrorCode::Unavailable, .. }), "{ops:?}");
    assert!(matches!(guest_joined, ServerMessage::Joined { .. }), "others chat on: {guest_joined:?}");
}
