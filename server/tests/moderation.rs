//! Moderation over real sockets and HTTP requests: owners appoint
//! moderators; moderators kick (the kicked may come back), ban an account or
//! a guest's address (for a while or until lifted: the banned socket leaves
//! at once and cannot come back, elsewhere it chats on), set slow mode; the
//! room's moderators cannot be kicked or banned, members cannot moderate;
//! every action is in the audit log, which only moderators read; server
//! administrators (`--admin`, `chat-server admin grant`) moderate every room.

mod support;

use std::time::Duration;

use chat_shared::api::{ApiErrorCode, AuditLog, BanView, Bans};
use chat_shared::{ErrorCode, ServerMessage};
use reqwest::Method;
use serde_json::json;
use support::accounts::{Answer, api, registered};
use support::{JsonClient, TestApp};

fn parsed<T: serde::de::DeserializeOwned>(answer: &Answer) -> T {
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {} {}", answer.status, answer.body))
}

async fn join_answer(client: &mut JsonClient, room_name: &str, nick: &str) -> ServerMessage {
    client.send_join(room_name, nick, None).await;
    loop {
        match client.next().await {
            answer @ (ServerMessage::Error { .. } | ServerMessage::Joined { .. }) => return answer,
            _ => continue,
        }
    }
}

/// The error `client` is sent within a second (its removal from the room).
async fn told_within_a_second(client: &mut JsonClient) -> (ErrorCode, String) {
    let told = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let ServerMessage::Error { code, message } = client.next().await {
                return (code, message);
            }
        }
    });
    told.await.expect("told within a second")
}

async fn post(address: std::net::SocketAddr, cookie: &str, path: &str, body: serde_json::Value) -> Answer {
    api(Method::POST, address, path, Some(body), cookie).await
}

fn assert_code(answer: &ServerMessage, expected: ErrorCode) {
    match answer {
        ServerMessage::Error { code, .. } => assert_eq!(*code, expected, "{answer:?}"),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

#[actix_web::test]
async fn moderators_kick_ban_and_slow_a_room_and_every_action_is_audited() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (
        registered(app.address, "alice").await,
        registered(app.address, "bob").await,
        registered(app.address, "carol").await,
    );
    assert_eq!(post(app.address, &alice, "/api/rooms", json!({ "name": "town" })).await.status, 201);
    // Only the owner appoints; a member of the public cannot moderate.
    let by_carol = post(app.address, &carol, "/api/rooms/town/moderators", json!({ "user": "carol" })).await;
    assert_eq!((by_carol.status, by_carol.error()), (403, ApiErrorCode::Forbidden));
    assert_eq!(post(app.address, &alice, "/api/rooms/town/moderators", json!({ "user": "bob" })).await.status, 204);
    let by_carol = post(app.address, &carol, "/api/rooms/town/bans", json!({ "user": "bob" })).await;
    assert_eq!(by_carol.status, 403);

    let mut carol_tab = JsonClient::connect_with_cookie(app.address, Some(&carol)).await;
    carol_tab.enter("town", "carol", None).await;
    let mut mallory = JsonClient::connect(app.address).await;
    mallory.enter("town", "mallory", None).await;

    // A kick: out now, back if they like.
    assert_eq!(post(app.address, &bob, "/api/rooms/town/kicks", json!({ "user": "mallory" })).await.status, 204);
    let (code, message) = told_within_a_second(&mut mallory).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(message.contains("moderator removed you"), "{message}");
    assert!(matches!(join_answer(&mut mallory, "town", "mallory").await, ServerMessage::Joined { .. }));

    // The owner and the moderators are beyond bans and kicks.
    for target in ["alice", "bob"] {
        let refused = post(app.address, &bob, "/api/rooms/town/bans", json!({ "user": target })).await;
        assert_eq!((refused.status, refused.error()), (403, ApiErrorCode::Forbidden), "{target}");
    }

    // Carol banned until lifted: out of the room at once, kept out; the lobby is still hers.
    let banned = post(app.address, &bob, "/api/rooms/town/bans", json!({ "user": "carol" })).await;
    assert_eq!(parsed::<BanView>(&banned), BanView { target: "carol".into(), address: false, until_ms: None });
    assert_eq!(told_within_a_second(&mut carol_tab).await.0, ErrorCode::Banned);
    let mut bob_tab = JsonClient::connect_with_cookie(app.address, Some(&bob)).await;
    bob_tab.enter("town", "bob", None).await;
    let said = bob_tab.say("carol is gone").await;
    bob_tab.next_ack(&said).await;
    let heard = tokio::time::timeout(Duration::from_millis(300), carol_tab.next_chat()).await;
    assert!(heard.is_err(), "the banned socket hears nothing of the room: {heard:?}");
    assert_code(&join_answer(&mut carol_tab, "town", "carol").await, ErrorCode::Banned);
    carol_tab.enter("lobby", "carol", None).await;

    // A guest's address banned for a while: that guest is out, any guest from
    // there is kept out, accounts from the same address are not.
    let by_address =
        post(app.address, &bob, "/api/rooms/town/bans", json!({ "address": "127.0.0.1", "seconds": 2 })).await;
    assert_eq!(by_address.status, 201, "{}", by_address.body);
    assert_eq!(told_within_a_second(&mut mallory).await.0, ErrorCode::Banned);
    let mut trudy = JsonClient::connect(app.address).await;
    assert_code(&join_answer(&mut trudy, "town", "trudy").await, ErrorCode::Banned);
    let mut alice_tab = JsonClient::connect_with_cookie(app.address, Some(&alice)).await;
    alice_tab.enter("town", "alice", None).await;
    let bans = parsed::<Bans>(&api(Method::GET, app.address, "/api/rooms/town/bans", None, &bob).await);
    let targets: Vec<&str> = bans.bans.iter().map(|ban| ban.target.as_str()).collect();
    assert_eq!(targets, ["carol", "127.0.0.1"]);
    let not_an_address = post(app.address, &bob, "/api/rooms/town/bans", json!({ "address": "localhost" })).await;
    assert_eq!((not_an_address.status, not_an_address.error()), (400, ApiErrorCode::InvalidRequest));
    // Once it runs out, the guest is let in again.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    trudy.enter("town", "trudy", None).await;

    // Slow mode: one message per poster every 2 s; the owner is not slowed.
    let slow = api(Method::PUT, app.address, "/api/rooms/town/slow-mode", Some(json!({ "seconds": 2 })), &bob).await;
    assert_eq!(slow.status, 200, "{}", slow.body);
    let first = trudy.say("one").await;
    trudy.next_ack(&first).await;
    trudy.say("two").await;
    let refused = loop {
        match trudy.next().await {
            error @ ServerMessage::Error { .. } => break error,
            _ => continue,
        }
    };
    assert_code(&refused, ErrorCode::SlowMode);
    for text in ["a", "b"] {
        let said = alice_tab.say(text).await;
        alice_tab.next_ack(&said).await;
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let third = trudy.say("three").await;
    trudy.next_ack(&third).await;

    // Lifted: carol is back.
    let lifted = api(Method::DELETE, app.address, "/api/rooms/town/bans/carol", None, &bob).await;
    assert_eq!(lifted.status, 204);
    assert!(matches!(join_answer(&mut carol_tab, "town", "carol").await, ServerMessage::Joined { .. }));
    assert_eq!(api(Method::DELETE, app.address, "/api/rooms/town/bans/carol", None, &bob).await.status, 404);

    // The audit log: every action, newest first, for moderators only.
    let log = parsed::<AuditLog>(&api(Method::GET, app.address, "/api/rooms/town/audit", None, &alice).await);
    let actions: Vec<(String, String, String)> =
        log.entries.into_iter().map(|entry| (entry.actor, entry.action, entry.target)).collect();
    let expected = [
        ("bob", "unban", "carol"),
        ("bob", "slow_mode", "#town"),
        ("bob", "ban", "127.0.0.1"),
        ("bob", "ban", "carol"),
        ("bob", "kick", "mallory"),
        ("alice", "moderator", "bob"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned())).collect();
    assert_eq!(actions, expected);
    assert_eq!(api(Method::GET, app.address, "/api/rooms/town/audit", None, &carol).await.status, 403);
}

#[actix_web::test]
async fn server_administrators_moderate_every_room_and_are_made_by_flag_or_command() {
    let app = TestApp::spawn_configured(|config| config.admins = vec!["Root".to_owned()]).await;
    let root = registered(app.address, "root").await;
    let dora = registered(app.address, "dora").await;
    let _eve = registered(app.address, "eve").await;
    let mut eve_tab = JsonClient::connect_with_cookie(app.address, Some(&_eve)).await;
    eve_tab.enter("lobby", "eve", None).await;
    // The lobby, which nobody owns: only an administrator moderates it.
    assert_eq!(post(app.address, &dora, "/api/rooms/lobby/bans", json!({ "user": "eve" })).await.status, 403);
    assert_eq!(
        post(app.address, &root, "/api/rooms/lobby/bans", json!({ "user": "eve", "seconds": 60 })).await.status,
        201
    );
    assert_eq!(told_within_a_second(&mut eve_tab).await.0, ErrorCode::Banned);

    // `chat-server admin grant` on the server's database makes dora one too.
    let granted = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["admin", "grant", "DORA", "--database"])
        .arg(&app.database)
        .output()
        .expect("the command runs");
    assert!(granted.status.success(), "{}", String::from_utf8_lossy(&granted.stderr));
    assert_eq!(String::from_utf8_lossy(&granted.stdout).trim(), "dora is a server administrator");
    let lifted = api(Method::DELETE, app.address, "/api/rooms/lobby/bans/eve", None, &dora).await;
    assert_eq!(lifted.status, 204, "{}", lifted.body);
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["admin", "grant", "nobody", "--database"])
        .arg(&app.database)
        .output()
        .expect("the command runs");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account is named"));
}

#[actix_web::test]
async fn members_report_messages_and_moderators_work_the_queue() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (
        registered(app.address, "alice").await,
        registered(app.address, "bob").await,
        registered(app.address, "carol").await,
    );
    assert_eq!(post(app.address, &alice, "/api/rooms", json!({ "name": "town" })).await.status, 201);
    assert_eq!(post(app.address, &alice, "/api/rooms", json!({ "name": "ops", "private": true })).await.status, 201);
    let mut troll = JsonClient::connect(app.address).await;
    troll.enter("town", "troll", None).await;
    let said = troll.say("something nasty").await;
    let id = troll.next_ack(&said).await;

    // A guest cannot report; a report needs a reason and a message that exists.
    let report = |room: &str, id: u64, reason: &str| json!({ "room": room, "id": id, "reason": reason });
    let anonymous = support::accounts::post(app.address, "/api/reports", report("town", id, "spam")).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(post(app.address, &bob, "/api/reports", report("town", id, "  ")).await.status, 400);
    assert_eq!(post(app.address, &bob, "/api/reports", report("town", id + 1, "spam")).await.status, 404);
    // A private room's stranger learns nothing by reporting into it.
    let stranger = post(app.address, &bob, "/api/reports", report("ops", 1, "spam")).await;
    assert_eq!((stranger.status, stranger.error()), (404, ApiErrorCode::NotFound));

    let filed = post(app.address, &bob, "/api/reports", report("town", id, "insults people")).await;
    assert_eq!(filed.status, 201, "{}", filed.body);
    let report_id = serde_json::from_str::<serde_json::Value>(&filed.body).expect("json")["id"].as_i64().expect("id");

    // Only moderators see the queue, with the message as stored.
    assert_eq!(api(Method::GET, app.address, "/api/rooms/town/reports", None, &carol).await.status, 403);
    let queue = parsed::<chat_shared::api::Reports>(
        &api(Method::GET, app.address, "/api/rooms/town/reports", None, &alice).await,
    );
    let [open] = queue.reports.as_slice() else { panic!("one open report: {queue:?}") };
    assert_eq!(
        (open.message_id, open.author.as_str(), open.text.as_str(), open.reporter.as_str(), open.reason.as_str()),
        (id, "troll", "something nasty", "bob", "insults people")
    );
    let close = |status: &str| json!({ "status": status });
    let path = format!("/api/rooms/town/reports/{report_id}");
    assert_eq!(post(app.address, &carol, &path, close("resolved")).await.status, 403);
    assert_eq!(post(app.address, &alice, &path, close("ignored")).await.status, 400);
    assert_eq!(post(app.address, &alice, &path, close("resolved")).await.status, 204);
    assert_eq!(post(app.address, &alice, &path, close("dismissed")).await.status, 404, "closed already");
    let open_now = parsed::<chat_shared::api::Reports>(
        &api(Method::GET, app.address, "/api/rooms/town/reports", None, &alice).await,
    );
    assert!(open_now.reports.is_empty());
    let all = parsed::<chat_shared::api::Reports>(
        &api(Method::GET, app.address, "/api/rooms/town/reports?all", None, &alice).await,
    );
    assert_eq!(all.reports.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["resolved"]);
    let log = parsed::<AuditLog>(&api(Method::GET, app.address, "/api/rooms/town/audit", None, &alice).await);
    assert_eq!(
        (log.entries[0].action.as_str(), log.entries[0].target.as_str()),
        ("resolve_report", format!("report {report_id}").as_str())
    );
}

#[actix_web::test]
async fn a_guest_is_banned_by_name_and_the_ban_holds_its_address() {
    let app = TestApp::spawn().await;
    let alice = registered(app.address, "alice").await;
    assert_eq!(post(app.address, &alice, "/api/rooms", json!({ "name": "town" })).await.status, 201);
    let mut alice_tab = JsonClient::connect_with_cookie(app.address, Some(&alice)).await;
    alice_tab.enter("town", "alice", None).await;
    let mut gus = JsonClient::connect(app.address).await;
    gus.enter("town", "gus", None).await;

    // Nobody of that name in the room: nothing to ban.
    let nobody = post(app.address, &alice, "/api/rooms/town/bans", json!({ "user": "nobody-here" })).await;
    assert_eq!((nobody.status, nobody.error()), (404, ApiErrorCode::NotFound));
    // The moderator names the guest; the guest's own session bans its address.
    let ban = post(app.address, &alice, "/api/rooms/town/bans", json!({ "user": "gus", "seconds": 600 })).await;
    assert_eq!(ban.status, 202, "{}", ban.body);
    let (code, message) = told_within_a_second(&mut gus).await;
    assert_eq!((code, message.as_str()), (ErrorCode::Banned, "you are banned from #town"));
    // Listed by its address (every test client comes from 127.0.0.1), and audited by name.
    let bans = eventually_listed(app.address, &alice).await;
    assert_eq!(bans.bans.iter().map(|b| (b.target.as_str(), b.address)).collect::<Vec<_>>(), [("127.0.0.1", true)]);
    let log = parsed::<AuditLog>(&api(Method::GET, app.address, "/api/rooms/town/audit", None, &alice).await);
    assert!(log.entries.iter().any(|e| e.action == "ban" && e.target == "gus (guest, by address)"), "{log:?}");
    // From that address, under any name: refused; the account that banned stays.
    let mut again = JsonClient::connect(app.address).await;
    assert_code(&join_answer(&mut again, "town", "gus-again").await, ErrorCode::Banned);
    let hello = alice_tab.say("still here").await;
    alice_tab.next_ack(&hello).await;
    // Lifted by its address: back in.
    let lifted = api(Method::DELETE, app.address, "/api/rooms/town/bans/127.0.0.1", None, &alice).await;
    assert_eq!(lifted.status, 204);
    assert!(matches!(join_answer(&mut again, "town", "gus").await, ServerMessage::Joined { .. }));
}

/// The room's bans once one is listed (a guest's session stores its own, a moment after the request).
async fn eventually_listed(address: std::net::SocketAddr, cookie: &str) -> Bans {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let bans = parsed::<Bans>(&api(Method::GET, address, "/api/rooms/town/bans", None, cookie).await);
        if !bans.bans.is_empty() || tokio::time::Instant::now() > deadline {
            return bans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
