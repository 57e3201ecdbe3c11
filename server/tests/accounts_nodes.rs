//! Accounts with several nodes on PostgreSQL and Redis: a name registered
//! on one node is reserved on every node, one registration wins a race for
//! a name, a session works on any node, and signing out everywhere closes
//! the account's sockets on every node (at once through Redis; by the sweep
//! when Redis missed it). A connection token holds on every node alike.

mod support;

use std::time::Duration;

use chat_shared::api::ApiErrorCode;
use chat_shared::{ErrorCode, ServerMessage};
use support::accounts::{credentials, me, request};
use support::redis::PrivateRedis;
use support::{JsonClient, TestApp};

/// A node on `database` and `redis` that sweeps signed-in sockets every second.
async fn node(database: &str, redis: &PrivateRedis) -> TestApp {
    let (database, redis) = (database.to_owned(), redis.url());
    TestApp::spawn_configured(move |config| {
        config.database = chat_server::store::location::StoreLocation::Postgres(database);
        config.redis = Some(redis.parse().expect("redis url"));
        config.session_sweep_secs = 1;
    })
    .await
}

#[actix_web::test]
async fn a_name_registered_on_one_node_is_reserved_on_every_node_and_its_session_works_on_any() {
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (node(&database, &redis).await, node(&database, &redis).await);
    let cookie = credentials(a.address, "/api/register", "alice", "correct horse").await.cookie.expect("a cookie");
    assert_eq!(me(b.address, &cookie).await.me(), "alice");
    let mut guest = JsonClient::connect(b.address).await;
    guest.send_join("lobby", "ALICE", None).await;
    assert!(matches!(guest.next().await, ServerMessage::Error { code: ErrorCode::NameReserved, .. }));

    // Two registrations of one name, on two nodes at once: one wins.
    let (on_a, on_b) = tokio::join!(
        credentials(a.address, "/api/register", "bob", "first password"),
        credentials(b.address, "/api/register", "BOB", "second password"),
    );
    let mut statuses = [on_a.status, on_b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "exactly one account");
    let loser = if on_a.status == 409 { on_a } else { on_b };
    assert_eq!(loser.error(), ApiErrorCode::UsernameTaken);
}

#[actix_web::test]
async fn signing_out_everywhere_on_one_node_closes_the_sockets_on_the_others_even_when_redis_missed_it() {
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (node(&database, &redis).await, node(&database, &redis).await);
    let first = credentials(a.address, "/api/register", "alice", "correct horse").await.cookie.expect("cookie");
    let mut on_b = JsonClient::connect_with_cookie(b.address, Some(&first)).await;
    on_b.enter("lobby", "alice", None).await;
    let signed_out = tokio::time::Instant::now();
    let everywhere = request(reqwest::Method::POST, a.address, "/api/logout-all", None, Some(&first), None).await;
    assert_eq!(everywhere.status, 204);
    assert_eq!(on_b.raw().close_code_within(Duration::from_secs(1)).await, Some(1008), "closed through redis");
    assert!(signed_out.elapsed() < Duration::from_secs(1), "within a second of the sign-out");

    // Redis frozen while she signs out everywhere again: node B never hears
    // of it, and closes her socket at its next sweep instead.
    let second = credentials(a.address, "/api/login", "alice", "correct horse").await.cookie.expect("cookie");
    let mut on_b = JsonClient::connect_with_cookie(b.address, Some(&second)).await;
    on_b.enter("lobby", "alice", None).await;
    redis.pause();
    let everywhere = request(reqwest::Method::POST, a.address, "/api/logout-all", None, Some(&second), None).await;
    redis.resume();
    assert_eq!(everywhere.status, 204);
    let swept = on_b.raw().close_code_within(Duration::from_secs(3)).await;
    assert_eq!(swept, Some(1008), "closed by node B's sweep (every second here)");
}

/// A node that also takes connection tokens signed with `secret`.
async fn token_node(database: &str, redis: &PrivateRedis, secret: &std::path::Path) -> TestApp {
    let (database, redis, secret) = (database.to_owned(), redis.url(), secret.to_owned());
    TestApp::spawn_configured(move |config| {
        config.database = chat_server::store::location::StoreLocation::Postgres(database);
        config.redis = Some(redis.parse().expect("redis url"));
        config.jwt_hs256_secret_file = Some(secret);
    })
    .await
}

#[actix_web::test]
async fn a_token_holds_on_every_node_with_the_same_grants_and_refreshes_on_any() {
    use chat_server::tokens::claims::Claims;
    use chat_server::tokens::mint::mint_hs256;
    let Some((database, redis)) = support::redis::services().await else { return };
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    let key = b"a secret of more than thirty-two bytes, for tests";
    std::fs::write(&secret, key).expect("secret written");
    let (a, b) = (token_node(&database, &redis, &secret).await, token_node(&database, &redis, &secret).await);
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("now").as_secs();
    let token = |ttl: u64| {
        let claims = Claims { sub: "pat".into(), exp: exp + ttl, name: None, rooms: Some(vec!["ops".into()]) };
        mint_hs256(key, &claims, None, None).expect("signed")
    };
    let (mut on_a, ..) = JsonClient::connect_with_token(a.address, &token(600)).await;
    on_a.enter("ops", "pat", None).await;
    let (mut on_b, ..) = JsonClient::connect_with_token(b.address, &token(3)).await;
    on_b.send_join("lobby", "pat", None).await;
    assert!(matches!(on_b.next().await, ServerMessage::Error { code: ErrorCode::Forbidden, .. }));
    on_b.send(&chat_shared::ClientMessage::Refresh { token: token(600) }).await;
    assert!(matches!(on_b.next().await, ServerMessage::Authenticated { expires_in, .. } if expires_in > 500));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(on_b.raw().close_code_within(Duration::from_millis(100)).await, None, "refreshed on b, still open");
}

#[actix_web::test]
async fn guesses_spread_over_the_nodes_count_together() {
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (node(&database, &redis).await, node(&database, &redis).await);
    assert_eq!(credentials(a.address, "/api/register", "alice", "correct horse").await.status, 201);
    // Ten wrong passwords, five through each node: alice is closed on both,
    // as she would be after ten through one (each node alone has seen five).
    for n in 0..10 {
        let node = if n % 2 == 0 { a.address } else { b.address };
        assert_eq!(credentials(node, "/api/login", "alice", "wrong guess").await.status, 401, "guess {n}");
    }
    for node in [a.address, b.address] {
        let refused = credentials(node, "/api/login", "alice", "correct horse").await;
        assert_eq!((refused.status, refused.error()), (429, ApiErrorCode::RateLimited));
    }
    // Registrations from one address, likewise: ten in all, whichever node.
    for n in 0..9 {
        let node = if n % 2 == 0 { a.address } else { b.address };
        assert_eq!(credentials(node, "/api/register", &format!("user{n}"), "correct horse").await.status, 201);
    }
    assert_eq!(credentials(b.address, "/api/register", "one-too-many", "correct horse").await.status, 429);
}
