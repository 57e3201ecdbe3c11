//! Private rooms with several nodes on PostgreSQL and Redis: membership is
//! decided alike on every node, a change on one node reaches the others'
//! caches before anyone can use the stale answer (no stale allow, no stale
//! refusal), and a removal on one node takes the member's socket on another
//! out of the room within a second, even when the notice was lost; a ban
//! does the same, and slow mode counts one poster's posts on every node.

mod support;

use std::time::Duration;

use chat_shared::{ErrorCode, ServerMessage};
use reqwest::Method;
use serde_json::json;
use support::JsonClient;
use support::accounts::{api, registered};

async fn join_answer(client: &mut JsonClient, room_name: &str, nick: &str) -> ServerMessage {
    client.send_join(room_name, nick, None).await;
    loop {
        match client.next().await {
            answer @ (ServerMessage::Error { .. } | ServerMessage::Joined { .. }) => return answer,
            _ => continue,
        }
    }
}

async fn left_within(client: &mut JsonClient, within: Duration) -> ServerMessage {
    tokio::time::timeout(within, async {
        loop {
            if let error @ ServerMessage::Error { .. } = client.next().await {
                return error;
            }
        }
    })
    .await
    .expect("told it left the room in time")
}

#[actix_web::test]
async fn membership_changes_on_one_node_hold_at_once_on_another() {
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (support::redis::node(&database, &redis).await, support::redis::node(&database, &redis).await);
    let alice = registered(a.address, "alice").await;
    let bob = registered(a.address, "bob").await;
    let created =
        api(Method::POST, a.address, "/api/rooms", Some(json!({ "name": "ops", "private": true })), &alice).await;
    assert_eq!(created.status, 201);

    // B refuses bob (and now caches that he is a stranger) ...
    let mut bob_on_b = JsonClient::connect_with_cookie(b.address, Some(&bob)).await;
    assert!(matches!(
        join_answer(&mut bob_on_b, "ops", "bob").await,
        ServerMessage::Error { code: ErrorCode::Forbidden, .. }
    ));
    // ... an invite accepted on A lets him in on B straight away: no stale refusal.
    let link = api(Method::POST, a.address, "/api/rooms/ops/invites", None, &alice).await;
    let code = serde_json::from_str::<chat_shared::api::InviteCreated>(&link.body).expect("invite").code;
    assert_eq!(api(Method::POST, a.address, &format!("/api/invites/{code}"), None, &bob).await.status, 200);
    assert!(matches!(join_answer(&mut bob_on_b, "ops", "bob").await, ServerMessage::Joined { .. }));
    while !matches!(bob_on_b.next().await, ServerMessage::History { .. }) {}

    // Removed on A: his socket on B leaves the room within a second, and B lets him in no more.
    let removed_at = tokio::time::Instant::now();
    assert_eq!(api(Method::DELETE, a.address, "/api/rooms/ops/members/bob", None, &alice).await.status, 204);
    let told = left_within(&mut bob_on_b, Duration::from_secs(1)).await;
    assert!(matches!(told, ServerMessage::Error { code: ErrorCode::Forbidden, .. }), "{told:?}");
    assert!(removed_at.elapsed() < Duration::from_secs(1));
    assert!(matches!(
        join_answer(&mut bob_on_b, "ops", "bob").await,
        ServerMessage::Error { code: ErrorCode::Forbidden, .. }
    ));

    // Every subscription to Redis is cut while he is in again, and he is
    // removed on A at that moment: B misses the notice, and checks its
    // sockets once it hears again.
    assert_eq!(api(Method::POST, a.address, &format!("/api/invites/{code}"), None, &bob).await.status, 200);
    assert!(matches!(join_answer(&mut bob_on_b, "ops", "bob").await, ServerMessage::Joined { .. }));
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let cut: u64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut connection).await.expect("kill");
    assert!(cut >= 2, "both nodes' subscriptions cut ({cut})");
    assert_eq!(api(Method::DELETE, a.address, "/api/rooms/ops/members/bob", None, &alice).await.status, 204);
    let told = left_within(&mut bob_on_b, Duration::from_secs(5)).await;
    assert!(matches!(told, ServerMessage::Error { code: ErrorCode::Forbidden, .. }), "{told:?}");
}

#[actix_web::test]
async fn a_ban_on_one_node_closes_the_room_on_another_and_slow_mode_holds_across_nodes() {
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (support::redis::node(&database, &redis).await, support::redis::node(&database, &redis).await);
    let alice = registered(a.address, "alice").await;
    let bob = registered(a.address, "bob").await;
    let created = api(Method::POST, a.address, "/api/rooms", Some(json!({ "name": "town" })), &alice).await;
    assert_eq!(created.status, 201);

    // Slow mode set on A: bob posts on A, his tab reconnects to B and may
    // not post again there before his wait is over.
    let slow = api(Method::PUT, a.address, "/api/rooms/town/slow-mode", Some(json!({ "seconds": 30 })), &alice).await;
    assert_eq!(slow.status, 200);
    let mut bob_on_a = JsonClient::connect_with_cookie_as_tab(a.address, &bob, "bobs-tab").await;
    bob_on_a.enter("town", "bob", None).await;
    let first = bob_on_a.say("from a").await;
    let first_id = bob_on_a.next_ack(&first).await;
    // Reported on A, in the queue on B (and closed there).
    let report = json!({ "room": "town", "id": first_id, "reason": "testing the queue" });
    assert_eq!(api(Method::POST, a.address, "/api/reports", Some(report), &alice).await.status, 201);
    let queue = api(Method::GET, b.address, "/api/rooms/town/reports", None, &alice).await;
    let queue: chat_shared::api::Reports = serde_json::from_str(&queue.body).expect("reports");
    assert_eq!(queue.reports.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["from a"]);
    let closed = json!({ "status": "dismissed" });
    let path = format!("/api/rooms/town/reports/{}", queue.reports[0].id);
    assert_eq!(api(Method::POST, b.address, &path, Some(closed), &alice).await.status, 204);
    let mut bob_on_b = JsonClient::connect_with_cookie_as_tab(b.address, &bob, "bobs-tab").await;
    bob_on_b.enter("town", "bob", None).await;
    bob_on_b.say("from b, too soon").await;
    let refused = left_within(&mut bob_on_b, Duration::from_secs(2)).await;
    assert!(matches!(refused, ServerMessage::Error { code: ErrorCode::SlowMode, .. }), "{refused:?}");

    // Banned on A: his socket on B leaves the room within a second.
    let banned_at = tokio::time::Instant::now();
    let ban = api(Method::POST, a.address, "/api/rooms/town/bans", Some(json!({ "user": "bob" })), &alice).await;
    assert_eq!(ban.status, 201);
    let told = left_within(&mut bob_on_b, Duration::from_secs(1)).await;
    assert!(matches!(told, ServerMessage::Error { code: ErrorCode::Banned, .. }), "{told:?}");
    assert!(banned_at.elapsed() < Duration::from_secs(1));
    assert!(matches!(
        join_answer(&mut bob_on_b, "town", "bob").await,
        ServerMessage::Error { code: ErrorCode::Banned, .. }
    ));
}

#[actix_web::test]
async fn a_guest_banned_by_name_on_one_node_is_banned_by_address_on_every_node() {
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (support::redis::node(&database, &redis).await, support::redis::node(&database, &redis).await);
    let alice = registered(a.address, "alice").await;
    let created = api(Method::POST, a.address, "/api/rooms", Some(json!({ "name": "town" })), &alice).await;
    assert_eq!(created.status, 201);
    let mut gus_on_b = JsonClient::connect(b.address).await;
    gus_on_b.enter("town", "gus", None).await;

    // Asked of A; only B knows gus's address: gus leaves within a second, banned.
    let ban = api(Method::POST, a.address, "/api/rooms/town/bans", Some(json!({ "user": "gus" })), &alice).await;
    assert_eq!(ban.status, 202, "{}", ban.body);
    let told = left_within(&mut gus_on_b, Duration::from_secs(1)).await;
    assert!(matches!(told, ServerMessage::Error { code: ErrorCode::Banned, .. }), "{told:?}");
    // That address is refused on A too.
    let mut gus_on_a = JsonClient::connect(a.address).await;
    assert!(matches!(
        join_answer(&mut gus_on_a, "town", "gus").await,
        ServerMessage::Error { code: ErrorCode::Banned, .. }
    ));
}
