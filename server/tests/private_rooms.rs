//! Private rooms over real sockets and HTTP requests: only members enter,
//! by every path (join, resume, history, the room list, the API), invite
//! links add members and run out, and a removed member's socket leaves the
//! room at once.

mod support;

use std::time::Duration;

use chat_shared::api::{ApiErrorCode, InviteAccepted, InviteCreated, Invites, Members, MyRooms, Role};
use chat_shared::{ClientMessage, ErrorCode, ServerMessage};
use reqwest::Method;
use serde_json::json;
use support::accounts::{Answer, api, registered, request};
use support::{JsonClient, TestApp, room};

fn parsed<T: serde::de::DeserializeOwned>(answer: &Answer) -> T {
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {} {}", answer.status, answer.body))
}

/// The answer to a join, skipping room events.
async fn join_answer(client: &mut JsonClient, room_name: &str, nick: &str, after: Option<u64>) -> ServerMessage {
    client.send_join(room_name, nick, after).await;
    loop {
        match client.next().await {
            answer @ (ServerMessage::Error { .. } | ServerMessage::Joined { .. }) => return answer,
            _ => continue,
        }
    }
}

fn assert_forbidden(answer: &ServerMessage, secret: &str) {
    match answer {
        ServerMessage::Error { code: ErrorCode::Forbidden, message } => {
            assert!(!message.contains(secret), "nothing of the room's content: {message}");
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
}

/// Creates a room as `cookie`'s account.
async fn create(address: std::net::SocketAddr, cookie: &str, name: &str, private: bool) -> Answer {
    api(Method::POST, address, "/api/rooms", Some(json!({ "name": name, "private": private })), cookie).await
}

async fn invite(
    address: std::net::SocketAddr,
    cookie: &str,
    room_name: &str,
    limits: serde_json::Value,
) -> InviteCreated {
    let answer = api(Method::POST, address, &format!("/api/rooms/{room_name}/invites"), Some(limits), cookie).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    parsed(&answer)
}

async fn accept(address: std::net::SocketAddr, cookie: &str, code: &str) -> Answer {
    api(Method::POST, address, &format!("/api/invites/{code}"), None, cookie).await
}

/// Waits up to `within` for `client` to be told it may not stay in its room.
async fn removed_within(client: &mut JsonClient, within: Duration) -> ServerMessage {
    tokio::time::timeout(within, async {
        loop {
            match client.next().await {
                error @ ServerMessage::Error { .. } => return error,
                _ => continue,
            }
        }
    })
    .await
    .expect("told it left the room in time")
}

#[actix_web::test]
async fn only_members_enter_a_private_room_by_any_path_and_strangers_learn_nothing_of_it() {
    let app = TestApp::spawn().await;
    let alice = registered(app.address, "alice").await;
    let bob = registered(app.address, "bob").await;
    let created = create(app.address, &alice, "ops", true).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let mut alice_tab = JsonClient::connect_with_cookie(app.address, Some(&alice)).await;
    alice_tab.enter("ops", "alice", None).await;
    let said = alice_tab.say("the secret plan").await;
    let secret_id = alice_tab.next_ack(&said).await;

    // A guest, a signed-in stranger, a resume from before the first message: all refused.
    let mut guest = JsonClient::connect(app.address).await;
    assert_forbidden(&join_answer(&mut guest, "ops", "mallory", None).await, "secret");
    let mut stranger = JsonClient::connect_with_cookie(app.address, Some(&bob)).await;
    assert_forbidden(&join_answer(&mut stranger, "ops", "bob", Some(0)).await, "secret");
    assert_forbidden(&join_answer(&mut stranger, "ops", "bob", None).await, "secret");
    // History of a room one is not in is refused as ever; older pages too.
    let page = ClientMessage::History { room: room("ops"), before: secret_id + 1, limit: 50 };
    stranger.send(&page).await;
    assert!(matches!(stranger.next().await, ServerMessage::Error { code: ErrorCode::NotJoined, .. }));
    let forward = ClientMessage::HistoryAfter { room: room("ops"), after: 0, limit: 50 };
    stranger.send(&forward).await;
    assert!(matches!(stranger.next().await, ServerMessage::Error { code: ErrorCode::NotJoined, .. }));

    // The room list: strangers in the lobby never see it; its member sees her own line.
    stranger.send_join("lobby", "bob", None).await;
    let lists_until = tokio::time::Instant::now() + Duration::from_millis(2_500);
    let mut frames = 0;
    while let Ok(text) = tokio::time::timeout_at(lists_until, stranger.raw().next_text()).await {
        assert!(!text.contains("\"ops\""), "a stranger saw the private room: {text}");
        frames += 1;
    }
    assert!(frames >= 3, "joined, history and a room list were read");

    // The API answers a stranger as if the room did not exist.
    for (method, path) in [
        (Method::GET, "/api/rooms/{}/members"),
        (Method::POST, "/api/rooms/{}/invites"),
        (Method::GET, "/api/rooms/{}/invites"),
        (Method::DELETE, "/api/rooms/{}/members/alice"),
    ] {
        let private = api(method.clone(), app.address, &path.replace("{}", "ops"), None, &bob).await;
        let missing = api(method.clone(), app.address, &path.replace("{}", "nowhere"), None, &bob).await;
        assert_eq!((private.status, private.error()), (404, ApiErrorCode::NotFound), "{method} {path}");
        assert_eq!(private.body.replace("ops", "nowhere"), missing.body, "the same answer as no room");
    }
    assert!(parsed::<MyRooms>(&api(Method::GET, app.address, "/api/rooms", None, &bob).await).rooms.is_empty());

    // An invite for one person: bob enters and reads the history; carol cannot use it after him.
    let link = invite(app.address, &alice, "ops", json!({ "uses": 1 })).await;
    assert!(link.url.ends_with(&format!("/#/invite/{}", link.code)), "{}", link.url);
    assert_eq!(link.code.len(), 22, "128 bits");
    let accepted = accept(app.address, &bob, &link.code).await;
    assert_eq!(parsed::<InviteAccepted>(&accepted).room, room("ops"));
    assert_eq!(accept(app.address, &bob, &link.code).await.status, 200, "accepting again is harmless");
    let carol = registered(app.address, "carol").await;
    assert_eq!(accept(app.address, &carol, &link.code).await.status, 404, "used up");
    let (history, _) = stranger.enter("ops", "bob", None).await;
    assert_eq!(history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["the secret plan"]);
    let members = parsed::<Members>(&api(Method::GET, app.address, "/api/rooms/ops/members", None, &alice).await);
    let roles: Vec<(String, Role)> = members.members.into_iter().map(|m| (m.name, m.role)).collect();
    assert_eq!(roles, [("alice".to_owned(), Role::Owner), ("bob".to_owned(), Role::Member)]);
    let bobs_rooms = parsed::<MyRooms>(&api(Method::GET, app.address, "/api/rooms", None, &bob).await).rooms;
    assert_eq!((bobs_rooms[0].name.as_str(), bobs_rooms[0].private), ("ops", true));

    // A member may not manage; the owner may not be removed.
    let as_member = api(Method::DELETE, app.address, "/api/rooms/ops/members/alice", None, &bob).await;
    assert_eq!((as_member.status, as_member.error()), (403, ApiErrorCode::Forbidden));
    let owner = api(Method::DELETE, app.address, "/api/rooms/ops/members/alice", None, &alice).await;
    assert_eq!(owner.status, 403);

    // Removed: his socket is out of the room at once, and hears nothing more of it.
    let removed_at = tokio::time::Instant::now();
    let removal = api(Method::DELETE, app.address, "/api/rooms/ops/members/bob", None, &alice).await;
    assert_eq!(removal.status, 204, "{}", removal.body);
    assert_forbidden(&removed_within(&mut stranger, Duration::from_secs(1)).await, "secret");
    assert!(removed_at.elapsed() < Duration::from_secs(1));
    let said = alice_tab.say("after bob left").await;
    alice_tab.next_ack(&said).await;
    // His socket is open, and hears nothing of the room any more.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stranger.next_chat()).await.is_err(),
        "nothing of the room after his removal"
    );
    assert_forbidden(&join_answer(&mut stranger, "ops", "bob", Some(secret_id)).await, "after");
}

#[actix_web::test]
async fn rooms_are_created_by_signed_in_users_under_free_names_only() {
    let app = TestApp::spawn().await;
    let alice = registered(app.address, "alice").await;
    let nobody = request(Method::POST, app.address, "/api/rooms", Some(json!({ "name": "x" })), None, None).await;
    assert_eq!((nobody.status, nobody.error()), (401, ApiErrorCode::Unauthorized));
    let foreign = request(
        Method::POST,
        app.address,
        "/api/rooms",
        Some(json!({ "name": "x" })),
        Some(&alice),
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(foreign.status, 403, "a foreign page cannot create rooms as her");
    let mut guest = JsonClient::join(app.address, "guest").await;
    guest.enter("dev", "guest", None).await;
    let said = guest.say("we talk here").await;
    guest.next_ack(&said).await;
    for taken in ["lobby", "dev"] {
        let refused = create(app.address, &alice, taken, true).await;
        assert_eq!((refused.status, refused.error()), (409, ApiErrorCode::RoomExists), "{taken}");
    }
    assert_eq!(create(app.address, &alice, "Bad Name", false).await.error(), ApiErrorCode::InvalidRoom);
    assert_eq!(create(app.address, &alice, "open-plans", false).await.status, 201);
    assert_eq!(create(app.address, &alice, "open-plans", true).await.status, 409);
    // An open room she created is open to everyone.
    guest.enter("open-plans", "guest", None).await;
}

#[actix_web::test]
async fn a_room_made_private_while_strangers_sit_in_it_empty_takes_them_out() {
    let app = TestApp::spawn().await;
    let alice = registered(app.address, "alice").await;
    let mut guest = JsonClient::connect(app.address).await;
    guest.enter("plans", "guest", None).await;
    assert_eq!(create(app.address, &alice, "plans", true).await.status, 201);
    assert_forbidden(&removed_within(&mut guest, Duration::from_secs(1)).await, "plans-secret");
}

#[actix_web::test]
async fn invite_links_expire_run_out_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (
        registered(app.address, "alice").await,
        registered(app.address, "bob").await,
        registered(app.address, "carol").await,
    );
    assert_eq!(create(app.address, &alice, "ops", true).await.status, 201);
    let short = invite(app.address, &alice, "ops", json!({ "expires_in": 1 })).await;
    let revoked = invite(app.address, &alice, "ops", json!({})).await;
    let listed = parsed::<Invites>(&api(Method::GET, app.address, "/api/rooms/ops/invites", None, &alice).await);
    assert_eq!(listed.invites.iter().map(|i| i.id).collect::<Vec<_>>(), [short.id, revoked.id]);
    assert!(!serde_json::to_string(&listed.invites).expect("json").contains(&revoked.code), "codes are shown once");
    let gone = api(Method::DELETE, app.address, &format!("/api/rooms/ops/invites/{}", revoked.id), None, &alice).await;
    assert_eq!(gone.status, 204);
    assert_eq!(accept(app.address, &bob, &revoked.code).await.status, 404, "revoked");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(accept(app.address, &bob, &short.code).await.status, 404, "expired");
    assert_eq!(accept(app.address, &bob, "made-up-code").await.error(), ApiErrorCode::NotFound);
    // A member may not hand out links.
    let open = invite(app.address, &alice, "ops", json!({ "uses": 5 })).await;
    assert_eq!(accept(app.address, &bob, &open.code).await.status, 200);
    let by_member = api(Method::POST, app.address, "/api/rooms/ops/invites", None, &bob).await;
    assert_eq!((by_member.status, by_member.error()), (403, ApiErrorCode::Forbidden));
    // And anyone may leave.
    assert_eq!(accept(app.address, &carol, &open.code).await.status, 200);
    let left = api(Method::DELETE, app.address, "/api/rooms/ops/members/carol", None, &carol).await;
    assert_eq!(left.status, 204);
    let members = parsed::<Members>(&api(Method::GET, app.address, "/api/rooms/ops/members", None, &bob).await);
    assert_eq!(members.members.len(), 2, "alice and bob");
}

/// The server's count of standings read from the database.
async fn standing_reads(address: std::net::SocketAddr) -> u64 {
    let metrics = reqwest::get(format!("http://{address}/metrics")).await.expect("metrics").text().await.expect("text");
    let line = metrics.lines().find(|line| line.starts_with("chat_standing_reads_total ")).expect("the counter");
    line.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a number")
}

#[actix_web::test]
async fn a_change_of_one_member_is_checked_by_that_members_sessions_only() {
    let app = TestApp::spawn().await;
    let owner = registered(app.address, "owner").await;
    assert_eq!(create(app.address, &owner, "ops", true).await.status, 201);
    // Seven members (ten registrations per address at most), each in the room.
    let mut members = Vec::new();
    for n in 0..7 {
        let name = format!("member{n}");
        let cookie = registered(app.address, &name).await;
        let link = invite(app.address, &owner, "ops", json!({})).await;
        assert_eq!(accept(app.address, &cookie, &link.code).await.status, 200);
        let mut tab = JsonClient::connect_with_cookie(app.address, Some(&cookie)).await;
        tab.enter("ops", &name, None).await;
        members.push((name, cookie, tab));
    }
    let settled = standing_reads(app.address).await;
    // One member is removed: their socket leaves at once; the six others stay
    // without reading anything (before, each of the room's sessions read its standing).
    let removed = api(Method::DELETE, app.address, "/api/rooms/ops/members/member3", None, &owner).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let (_, _, tab) = &mut members[3];
    let told = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let ServerMessage::Error { code, .. } = tab.next().await {
                return code;
            }
        }
    });
    assert_eq!(told.await.expect("told within a second"), ErrorCode::Forbidden);
    let (_, _, still) = &mut members[0];
    let said = still.say("still here").await;
    still.next_ack(&said).await;
    // Time for every session of the room to have checked, had it to.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reads = standing_reads(app.address).await - settled;
    assert!(reads <= 3, "{reads} standings read for one member's removal (the room's and theirs)");
}
