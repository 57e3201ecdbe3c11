//! One person in one room from several devices: a signed-in account (or a
//! connection token's user) holds its name from each of its connections at
//! once, on one node or across nodes. The room hears the name join with the
//! first and leave with the last, never in between: not when one device
//! leaves, is moved out by a moderator's kick (all of them are), or dies
//! with its node. Anyone else still finds the name taken.

mod support;

use std::time::Duration;

use chat_server::bus::Peer;
use chat_server::presence::{Claim, Claimant, Departure, InProcessPresence, Owner, Presence, RedisPresence};
use chat_server::tokens::claims::Claims;
use chat_server::tokens::mint::mint_hs256;
use chat_shared::{ClientId, ErrorCode, ServerMessage};
use serde_json::json;
use support::accounts::{api, registered};
use support::redis::{epoch_of, node, presence_events, services};
use support::{JsonClient, QUIET, TestApp, nick, room};

/// One user's devices claiming, departing and releasing a name, on
/// `first` and `second` (two nodes' presence, or one's twice), with node
/// ids `nodes`: what each step answers.
async fn one_users_devices(first: &dyn Presence, second: &dyn Presence, nodes: [u64; 2]) {
    let (dev, ann) = (room("dev"), nick("ann"));
    let device = |tab: &str| Claimant { tab: ClientId::parse(tab).expect("tab"), owner: Some(Owner::account(7)) };
    let guest = Claimant::guest(ClientId::parse("guest").expect("tab"));
    let on = |node: usize, connection: u64| Peer { node: nodes[node], connection };
    let claim = |presence: &'static str, claimant: Claimant, member: Peer| {
        let presence = if presence == "first" { first } else { second };
        let (dev, ann) = (dev.clone(), ann.clone());
        async move { presence.claim(&dev, &ann, &claimant, member).await.expect("claim").claim }
    };
    assert_eq!(claim("first", device("laptop"), on(0, 1)).await, Claim::Free);
    assert_eq!(claim("second", device("phone"), on(1, 2)).await, Claim::Shared);
    assert_eq!(claim("second", device("phone"), on(1, 2)).await, Claim::Held);
    // Another account, a token user of the same name, a guest: taken.
    let other = Claimant { owner: Some(Owner::account(8)), ..device("x") };
    assert_eq!(claim("second", other, on(1, 3)).await, Claim::Taken);
    assert_eq!(
        claim("second", Claimant { owner: Some(Owner::token("ann")), ..device("y") }, on(1, 3)).await,
        Claim::Taken
    );
    assert_eq!(claim("first", guest.clone(), on(0, 3)).await, Claim::Taken);
    // The phone's tab reconnects through the first node: it replaces its stale connection, the laptop stays.
    assert_eq!(claim("first", device("phone"), on(0, 4)).await, Claim::Replaces(on(1, 2)));
    assert_eq!(first.members_now(&dev, 10).await.expect("members").len(), 1, "one name");
    // The stale connection's late departure and release change nothing.
    second.release(&dev, &ann, on(1, 2)).await.expect("release");
    assert_eq!(second.depart(&dev, &ann, on(1, 2)).await.expect("depart"), Departure::Last);
    assert_eq!(claim("second", guest.clone(), on(1, 5)).await, Claim::Taken);
    // The laptop leaves: the phone holds it on, nobody is to hear of it.
    assert_eq!(first.depart(&dev, &ann, on(0, 1)).await.expect("depart"), Departure::Shared);
    assert_eq!(claim("second", guest.clone(), on(1, 5)).await, Claim::Taken);
    // The phone, the last, leaves: until it is gone its user's claims wait.
    assert_eq!(first.depart(&dev, &ann, on(0, 4)).await.expect("depart"), Departure::Last);
    assert_eq!(claim("second", device("laptop"), on(1, 6)).await, Claim::Leaving);
    assert_eq!(claim("first", device("phone"), on(0, 6)).await, Claim::Leaving);
    assert_eq!(claim("second", guest.clone(), on(1, 6)).await, Claim::Taken);
    first.release(&dev, &ann, on(0, 4)).await.expect("release");
    assert!(first.members_now(&dev, 10).await.expect("members").is_empty());
    assert_eq!(claim("second", device("laptop"), on(1, 6)).await, Claim::Free);
    // A guest's name has one holder: another tab is taken, its own tab replaces.
    let (town, bob) = (room("town"), nick("bob"));
    let guest_claim = |tab: &str, member: Peer| {
        let (town, bob, claimant) = (town.clone(), bob.clone(), Claimant::guest(ClientId::parse(tab).expect("tab")));
        async move { first.claim(&town, &bob, &claimant, member).await.expect("claim").claim }
    };
    assert_eq!(guest_claim("bob-tab", on(0, 7)).await, Claim::Free);
    assert_eq!(guest_claim("other-tab", on(0, 8)).await, Claim::Taken);
    assert_eq!(guest_claim("bob-tab", on(0, 8)).await, Claim::Replaces(on(0, 7)));
    assert_eq!(first.depart(&town, &bob, on(0, 8)).await.expect("depart"), Departure::Last);
    first.release(&town, &bob, on(0, 8)).await.expect("release");
    assert_eq!(guest_claim("other-tab", on(0, 9)).await, Claim::Free);
}

#[tokio::test]
async fn in_one_process_one_users_devices_share_its_name() {
    let presence = InProcessPresence::default();
    one_users_devices(&presence, &presence, [0, 1]).await;
}

#[actix_web::test]
async fn in_redis_one_users_devices_share_its_name_across_nodes() {
    let Some((_, redis)) = services().await else { return };
    let client = redis::Client::open(redis.url()).expect("client");
    let epoch = chat_shared::Epoch::parse("shared-names").expect("epoch");
    let first = RedisPresence::start(client.clone(), &epoch, 11, false).expect("presence");
    let second = RedisPresence::start(client, &epoch, 12, false).expect("presence");
    first.first_beat().await.expect("beat");
    second.first_beat().await.expect("beat");
    one_users_devices(first.as_ref(), second.as_ref(), [11, 12]).await;
}

/// The next chat line `client` hears, as "nick: text".
async fn heard(client: &mut JsonClient) -> String {
    let message = client.next_chat().await;
    format!("{}: {}", message.nick, message.text)
}

/// Alice's laptop and phone in `dev`, bob (a guest) watching, on the
/// addresses given; checks everything the room sees of alice until her
/// second device is in and both have spoken.
async fn alice_on_two_devices(
    cookie: &str,
    laptop_at: std::net::SocketAddr,
    phone_at: std::net::SocketAddr,
    bob: &mut JsonClient,
) -> (JsonClient, JsonClient) {
    let mut laptop = JsonClient::connect_with_cookie_as_tab(laptop_at, cookie, "laptop").await;
    assert_eq!(laptop.try_join("dev", "whatever").await.expect("joined"), ["alice", "bob"]);
    assert_eq!(presence_events(bob, QUIET).await, ["alice joined"]);
    let mut phone = JsonClient::connect_with_cookie_as_tab(phone_at, cookie, "phone").await;
    assert_eq!(phone.try_join("dev", "alice").await.expect("her second device is let in"), ["alice", "bob"]);
    // Each device hears the other as alice, and so does the room.
    let said = phone.say("from my phone").await;
    phone.next_ack(&said).await;
    assert_eq!(heard(&mut laptop).await, "alice: from my phone");
    assert_eq!(heard(bob).await, "alice: from my phone");
    let said = laptop.say("from my laptop").await;
    laptop.next_ack(&said).await;
    assert_eq!(heard(&mut phone).await, "alice: from my laptop");
    assert_eq!(heard(bob).await, "alice: from my laptop");
    (laptop, phone)
}

#[actix_web::test]
async fn an_account_is_in_a_room_from_two_devices_and_the_room_hears_it_leave_with_the_last() {
    let app = TestApp::spawn().await;
    let cookie = registered(app.address, "alice").await;
    let mut bob = JsonClient::connect(app.address).await;
    bob.enter("dev", "bob", None).await;
    let (laptop, mut phone) = alice_on_two_devices(&cookie, app.address, app.address, &mut bob).await;

    // Nobody else gets the name: not a guest, not another account.
    let mut guest = JsonClient::connect(app.address).await;
    assert_eq!(guest.try_join("dev", "ALICE").await, Err(ErrorCode::NameReserved));

    // The room list counts her once.
    let mut carol = JsonClient::connect(app.address).await;
    carol.send_join("dev", "carol", None).await;
    match carol.next().await {
        ServerMessage::Joined { rooms, .. } => {
            let dev = rooms.iter().find(|r| r.name.as_str() == "dev").map(|r| r.online);
            assert_eq!(dev, Some(3), "alice, bob, carol");
        }
        other => panic!("expected joined, got {other:?}"),
    }
    assert_eq!(presence_events(&mut bob, QUIET).await, ["carol joined"]);

    // The laptop closes: alice is still in the room (her phone), and nobody heard otherwise.
    laptop.close().await;
    assert_eq!(presence_events(&mut bob, QUIET).await, Vec::<String>::new());
    let mut dan = JsonClient::connect(app.address).await;
    assert_eq!(dan.try_join("dev", "dan").await.expect("joined"), ["alice", "bob", "carol", "dan"]);
    assert_eq!(presence_events(&mut bob, QUIET).await, ["dan joined"]);
    let said = bob.say("still there?").await;
    bob.next_ack(&said).await;
    assert_eq!(heard(&mut phone).await, "bob: still there?");
    // The laptop comes back while the phone stays: nothing to hear either.
    let mut laptop = JsonClient::connect_with_cookie_as_tab(app.address, &cookie, "laptop").await;
    laptop.try_join("dev", "alice").await.expect("back beside the phone");
    assert_eq!(presence_events(&mut bob, QUIET).await, Vec::<String>::new());

    // Both close: the room hears alice leave once, with the last.
    phone.close().await;
    assert_eq!(presence_events(&mut bob, QUIET).await, Vec::<String>::new());
    laptop.close().await;
    assert_eq!(presence_events(&mut bob, QUIET).await, ["alice left"]);
    let mut phone = JsonClient::connect_with_cookie_as_tab(app.address, &cookie, "phone").await;
    assert_eq!(phone.try_join("dev", "alice").await.expect("joined"), ["alice", "bob", "carol", "dan"]);
    assert_eq!(presence_events(&mut bob, QUIET).await, ["alice joined"]);
}

#[actix_web::test]
async fn a_kick_moves_every_device_out_and_the_room_hears_the_name_leave_once() {
    let app = TestApp::spawn_configured(|config| config.admins = vec!["root".to_owned()]).await;
    let root = registered(app.address, "root").await;
    let cookie = registered(app.address, "alice").await;
    let mut bob = JsonClient::connect(app.address).await;
    bob.enter("dev", "bob", None).await;
    let (mut laptop, mut phone) = alice_on_two_devices(&cookie, app.address, app.address, &mut bob).await;

    let kick = json!({ "user": "alice" });
    let kicked = api(reqwest::Method::POST, app.address, "/api/rooms/dev/kicks", Some(kick), &root).await;
    assert_eq!(kicked.status, 204, "{}", kicked.body);
    for device in [&mut laptop, &mut phone] {
        assert!(matches!(device.next().await, ServerMessage::Error { code: ErrorCode::Forbidden, .. }));
    }
    assert_eq!(presence_events(&mut bob, Duration::from_secs(1)).await, ["alice left"]);
    // She may come back (a kick is not a ban), from either device.
    assert!(phone.try_join("dev", "alice").await.is_ok());
}

#[actix_web::test]
async fn a_token_user_is_in_a_room_from_several_connections_up_to_a_bound() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = b"a secret of more than thirty-two bytes, for tests";
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, secret).expect("secret written");
    let app = TestApp::spawn_configured(|config| config.jwt_hs256_secret_file = Some(secret_file)).await;
    let expires = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() + 600;
    let token = |sub: &str| {
        let claims = Claims { sub: sub.to_owned(), exp: expires, name: None, rooms: None };
        mint_hs256(secret, &claims, None, None).expect("token")
    };
    let mut bob = JsonClient::connect(app.address).await;
    bob.enter("dev", "bob", None).await;
    let mut devices = Vec::new();
    for _ in 0..chat_server::presence::SHARED_HOLDERS_MAX {
        let (mut device, _, _) = JsonClient::connect_with_token(app.address, &token("ann")).await;
        device.try_join("dev", "ann").await.expect("joined");
        devices.push(device);
    }
    let (mut one_more, _, _) = JsonClient::connect_with_token(app.address, &token("ann")).await;
    assert_eq!(one_more.try_join("dev", "ann").await, Err(ErrorCode::Forbidden), "a bound per user");
    // Anyone else finds the name taken.
    let mut guest = JsonClient::connect(app.address).await;
    assert_eq!(guest.try_join("dev", "ann").await, Err(ErrorCode::NicknameTaken));
    assert_eq!(presence_events(&mut bob, QUIET).await, ["ann joined"]);
    for device in devices {
        device.close().await;
    }
    assert_eq!(presence_events(&mut bob, Duration::from_secs(1)).await, ["ann left"]);
}

#[actix_web::test]
async fn across_nodes_an_account_holds_its_name_from_devices_on_both_and_one_dying_node_takes_none_away() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    let cookie = registered(node_a.address, "alice").await;
    let mut bob = JsonClient::connect(node_a.address).await;
    bob.enter("dev", "bob", None).await;
    let (laptop, mut phone) = alice_on_two_devices(&cookie, node_a.address, node_b.address, &mut bob).await;
    let mut stranger = JsonClient::connect(node_b.address).await;
    assert_eq!(stranger.try_join("dev", "alice").await, Err(ErrorCode::NameReserved));

    // A third device of hers on a node that dies (it stops beating).
    let epoch = epoch_of(&node_a).await;
    let pool = sqlx::PgPool::connect(&database).await.expect("database");
    let user: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE name = 'alice'").fetch_one(&pool).await.expect("alice's id");
    let client = redis::Client::open(redis.url()).expect("client");
    let dying = RedisPresence::start_with_ttl(client.clone(), &epoch, 997, Duration::from_secs(3)).expect("presence");
    // Among the live nodes before it claims, as every node is (its entries'
    // expiry frees nothing while her other devices keep the name: only its burial does).
    dying.first_beat().await.expect("beat");
    let tablet = Claimant { tab: ClientId::parse("tablet").expect("tab"), owner: Some(Owner::account(user)) };
    let claimed = dying.claim(&room("dev"), &nick("alice"), &tablet, Peer { node: 997, connection: 1 }).await;
    assert_eq!(claimed.expect("claim").claim, Claim::Shared);
    drop(dying);
    // It is buried (a survivor frees what it held): alice stays, nobody hears her leave.
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let nodes = format!("chat:{}:nodes", epoch.as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let live: Option<f64> =
            redis::cmd("ZSCORE").arg(&nodes).arg(997).query_async(&mut connection).await.expect("zscore");
        if live.is_none() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never buried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(presence_events(&mut bob, Duration::from_secs(1)).await, Vec::<String>::new());

    // Her laptop (node A) leaves: still nothing. Her phone (node B) leaves: she left.
    laptop.close().await;
    assert_eq!(presence_events(&mut bob, QUIET).await, Vec::<String>::new());
    let said = bob.say("phone, are you there?").await;
    bob.next_ack(&said).await;
    assert_eq!(heard(&mut phone).await, "bob: phone, are you there?");
    phone.close().await;
    assert_eq!(presence_events(&mut bob, Duration::from_secs(1)).await, ["alice left"]);
    // And the name is free for her again, from either node.
    let mut laptop = JsonClient::connect_with_cookie_as_tab(node_b.address, &cookie, "laptop").await;
    assert_eq!(laptop.try_join("dev", "alice").await.expect("joined"), ["alice", "bob"]);
}

#[actix_web::test]
async fn devices_of_one_account_joining_and_leaving_at_once_across_nodes_leave_the_room_knowing_the_truth() {
    let Some((database, redis)) = services().await else { return };
    let nodes = [node(&database, &redis).await, node(&database, &redis).await];
    let cookie = registered(nodes[0].address, "alice").await;
    let mut bob = JsonClient::connect(nodes[0].address).await;
    bob.enter("dev", "bob", None).await;
    // Rounds of eight devices on both nodes joining at once, then leaving
    // at once: each round the room hears alice join once and leave once.
    for round in 0..3 {
        let joining = (0..8).map(|n| {
            let (cookie, address) = (cookie.clone(), nodes[n % 2].address);
            async move {
                let mut device = JsonClient::connect_with_cookie_as_tab(address, &cookie, &format!("tab-{n}")).await;
                device.try_join("dev", "alice").await.expect("joined");
                device
            }
        });
        let devices = futures_util::future::join_all(joining).await;
        futures_util::future::join_all(devices.into_iter().map(JsonClient::close)).await;
        let events = presence_events(&mut bob, Duration::from_secs(1)).await;
        assert_eq!(events, ["alice joined", "alice left"], "round {round}");
    }
}

#[actix_web::test]
async fn a_device_that_left_while_redis_did_not_answer_does_not_keep_the_name_after_the_others_leave() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    let cookie = registered(node_a.address, "alice").await;
    let mut bob = JsonClient::connect(node_a.address).await;
    bob.enter("dev", "bob", None).await;
    let (laptop, phone) = alice_on_two_devices(&cookie, node_a.address, node_b.address, &mut bob).await;

    // The laptop closes while Redis answers nothing (shorter than a node's
    // lease): giving its name back fails, and is tried again once Redis is back.
    redis.pause();
    laptop.close().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.resume();
    tokio::time::sleep(Duration::from_secs(7)).await;

    // The phone, the last, closes: the name is gone at once (not held on by
    // the laptop's field until the entry expires).
    phone.close().await;
    let client = redis::Client::open(redis.url()).expect("client");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let entry = format!("chat:{}:holders:dev:alice", epoch_of(&node_a).await.as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let fields: Vec<String> = redis::cmd("HGETALL").arg(&entry).query_async(&mut connection).await.expect("entry");
        if fields.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "alice is still held: {fields:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
