//! Presence across nodes (Redis): a nickname is unique in a room whichever
//! node its holder is on, claimed atomically; a browser tab takes its name
//! back through another node (its old connection there is closed); the names
//! of a node that stops refreshing them come free when their entries expire;
//! a node that stops beating is buried by a survivor, which tells its rooms
//! its members left, once; a node that was only late comes back.

mod support;

use std::time::Duration;

use chat_server::bus::Peer;
use chat_server::presence::{Claim, Claimant, Claimed, Presence, RedisPresence};
use chat_shared::limits::PRESENCE_EVENTS_MAX;
use chat_shared::{ClientId, ErrorCode, ServerMessage};
use support::redis::{epoch_of, node, presence_events, services};
use support::{JsonClient, TestApp, nick, room};

#[actix_web::test]
async fn a_nickname_is_unique_in_a_room_across_nodes_and_its_tab_takes_it_back_through_another_node() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);

    let mut ann = JsonClient::connect_as_tab(node_a.address, "tab-ann").await;
    ann.enter("dev", "ann", None).await;
    let mut impostor = JsonClient::connect(node_b.address).await;
    assert_eq!(impostor.try_join("dev", "ann").await, Err(ErrorCode::NicknameTaken));
    // Another room is another namespace.
    assert!(impostor.try_join("ops", "ann").await.is_ok());

    let mut bob = JsonClient::connect(node_b.address).await;
    let (_, _) = bob.enter("dev", "bob", None).await;
    // ann's tab reconnects through node B (the balancer picked it): it takes the name back.
    let mut ann_again = JsonClient::connect_as_tab(node_b.address, "tab-ann").await;
    let members = ann_again.try_join("dev", "ann").await.expect("taken back");
    assert_eq!(members, ["ann", "bob"], "listed once, across nodes");
    assert_eq!(ann.raw().close_code().await, 1008, "the stale connection on node A is closed");
    // Its late release on node A does not free the name.
    tokio::time::sleep(support::QUIET).await;
    let mut late = JsonClient::connect(node_a.address).await;
    assert_eq!(late.try_join("dev", "ann").await, Err(ErrorCode::NicknameTaken));
    // Nobody heard ann leave and come back; the room goes on.
    let said = ann_again.say("still here").await;
    ann_again.next_ack(&said).await;
    let heard = bob.next_chat().await;
    assert_eq!(heard.text.as_str(), "still here");
}

#[actix_web::test]
async fn of_many_clients_on_two_nodes_claiming_one_name_at_once_exactly_one_gets_it() {
    let Some((database, redis)) = services().await else { return };
    let nodes = [node(&database, &redis).await, node(&database, &redis).await];
    let mut clients = Vec::new();
    for n in 0..24 {
        clients.push(JsonClient::connect(nodes[n % 2].address).await);
    }
    let answers =
        futures_util::future::join_all(clients.iter_mut().map(|client| client.try_join("dev", "alice"))).await;
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "{answers:?}");
    assert!(answers.iter().filter(|a| a.is_err()).all(|a| *a == Err(ErrorCode::NicknameTaken)));
}

#[actix_web::test]
async fn the_names_of_a_node_that_stopped_refreshing_them_come_free_when_they_expire() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    // A node that holds "ghost" in #dev, then dies (its heartbeat stops with it).
    let ttl = Duration::from_millis(900);
    let client = redis::Client::open(redis.url()).expect("client");
    let dying = RedisPresence::start_with_ttl(client, &epoch, 999, ttl).expect("presence");
    let tab = Claimant::guest(ClientId::parse("ghost-tab").expect("tab"));
    let ghost = Peer { node: 999, connection: 1 };
    assert_eq!(dying.claim(&room("dev"), &nick("ghost"), &tab, ghost).await.expect("claim").claim, Claim::Free);

    let mut early = JsonClient::connect(node_a.address).await;
    assert_eq!(early.try_join("dev", "ghost").await, Err(ErrorCode::NicknameTaken), "alive: refreshed");
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(early.try_join("dev", "ghost").await, Err(ErrorCode::NicknameTaken), "the heartbeat kept it");
    drop(dying);

    tokio::time::sleep(ttl + Duration::from_millis(600)).await;
    let mut after = JsonClient::connect(node_a.address).await;
    let members = after.try_join("dev", "ghost").await.expect("free once expired");
    assert_eq!(members, ["ghost"], "the dead node's entry is gone from the list too");
}

/// Reads room lists until one shows `room` with `online` members.
async fn until_listed(client: &mut JsonClient, room_name: &str, online: u32) {
    let wanted = room(room_name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, client.next_any()).await;
        let message = next.unwrap_or_else(|_| panic!("#{room_name} never listed with {online}"));
        if let ServerMessage::Rooms { rooms } = message
            && rooms.iter().any(|info| info.name == wanted && info.online == online)
        {
            return;
        }
    }
}

#[actix_web::test]
async fn room_lists_count_the_members_of_every_node() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    let mut on_a = Vec::new();
    for name in ["ann", "al"] {
        let mut client = JsonClient::connect(node_a.address).await;
        client.enter("dev", name, None).await;
        on_a.push(client);
    }
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.enter("dev", "bob", None).await;
    let mut watcher = JsonClient::connect(node_b.address).await;
    watcher.enter("lobby", "watcher", None).await;
    until_listed(&mut watcher, "dev", 3).await;
    // A joiner's own room line in `joined` counts every node's members (and itself).
    let mut joiner = JsonClient::connect(node_b.address).await;
    joiner.send_join("dev", "joiner", None).await;
    match joiner.next().await {
        ServerMessage::Joined { rooms, .. } => {
            let dev = rooms.iter().find(|info| info.name == room("dev")).map(|info| info.online);
            assert_eq!(dev, Some(4), "{rooms:?}");
        }
        other => panic!("expected joined, got {other:?}"),
    }
    joiner.close().await;
    // Node A's members leave: node B's lists follow.
    for client in on_a {
        client.close().await;
    }
    until_listed(&mut watcher, "dev", 1).await;
}

/// Waits until `client` hears `expected` (other presence events are kept in `heard`).
async fn until_heard(client: &mut JsonClient, expected: &str, heard: &mut Vec<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !heard.iter().any(|event| event == expected) {
        assert!(tokio::time::Instant::now() < deadline, "never heard {expected:?}; heard {heard:?}");
        heard.extend(presence_events(client, Duration::from_millis(100)).await);
    }
}

#[actix_web::test]
async fn a_node_that_stops_beating_is_buried_once_and_its_members_are_announced_as_gone() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    let epoch = epoch_of(&node_a).await;
    // Short enough for a quick test, long enough that a loaded machine's
    // late beats do not get a live node buried (it would come back, and flap).
    let ttl = Duration::from_secs(3);
    let client = redis::Client::open(redis.url()).expect("client");
    let dying = RedisPresence::start_with_ttl(client.clone(), &epoch, 999, ttl).expect("presence");
    // And a node that holds nothing dies too: burying it must go as well.
    let idle = RedisPresence::start_with_ttl(client.clone(), &epoch, 994, ttl).expect("presence");
    for (n, name) in ["ghost", "phoenix", "wanderer"].into_iter().enumerate() {
        let tab = Claimant::guest(ClientId::parse(format!("{name}-tab")).expect("tab"));
        let member = Peer { node: 999, connection: n as u64 + 1 };
        assert_eq!(dying.claim(&room("dev"), &nick(name), &tab, member).await.expect("claim").claim, Claim::Free);
    }
    let mut bob = JsonClient::connect(node_a.address).await;
    let members = bob.try_join("dev", "bob").await.expect("joined");
    assert_eq!(members, ["bob", "ghost", "phoenix", "wanderer"]);
    let mut carol = JsonClient::connect(node_b.address).await;
    carol.try_join("dev", "carol").await.expect("joined");

    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let prefix = format!("chat:{}:", epoch.as_str());
    let live: Option<f64> =
        redis::cmd("ZSCORE").arg(format!("{prefix}nodes")).arg(994).query_async(&mut connection).await.expect("zscore");
    assert!(live.is_some(), "the idle node beats");
    drop(idle);
    // Its node dies. Before it is buried, phoenix's tab takes the name back
    // through node B, and so does wanderer's, which then leaves for good.
    drop(dying);
    let mut phoenix = JsonClient::connect_as_tab(node_b.address, "phoenix-tab").await;
    phoenix.try_join("dev", "phoenix").await.expect("its tab takes the name back");
    let mut wanderer = JsonClient::connect_as_tab(node_b.address, "wanderer-tab").await;
    wanderer.try_join("dev", "wanderer").await.expect("its tab takes the name back");
    wanderer.close().await;

    // Both survivors try to bury it (each beats once a second); one does,
    // and everyone hears ghost leave, once. Phoenix never left; wanderer
    // left once, through node B.
    let mut heard_by_bob = Vec::new();
    until_heard(&mut bob, "ghost left", &mut heard_by_bob).await;
    heard_by_bob.extend(presence_events(&mut bob, Duration::from_secs(3)).await);
    let heard_by_carol = presence_events(&mut carol, Duration::from_millis(200)).await;
    assert_eq!(heard_by_bob, ["carol joined", "wanderer left", "ghost left"]);
    assert_eq!(heard_by_carol, ["wanderer left", "ghost left"]);
    // Its name is free at once (not only when its entry expires).
    let mut ghost = JsonClient::connect(node_a.address).await;
    let members = ghost.try_join("dev", "ghost").await.expect("free");
    assert_eq!(members, ["bob", "carol", "ghost", "phoenix"]);
    // Buried whole: no longer among the live nodes, no burial left under way.
    // (994 held nothing: it is buried too.)
    for buried in [999, 994] {
        let (live, under_way): (Option<f64>, Option<f64>) = redis::pipe()
            .zscore(format!("{prefix}nodes"), buried)
            .zscore(format!("{prefix}burials"), buried)
            .query_async(&mut connection)
            .await
            .expect("state");
        assert_eq!((live, under_way), (None, None), "node {buried}");
    }
}

#[actix_web::test]
async fn a_node_taken_for_dead_that_was_only_late_takes_its_names_back_and_says_so() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    let client = redis::Client::open(redis.url()).expect("client");
    let late = RedisPresence::start_with_ttl(client.clone(), &epoch, 998, Duration::from_secs(3)).expect("presence");
    let tab = Claimant::guest(ClientId::parse("sleepy-tab").expect("tab"));
    let sleepy = Peer { node: 998, connection: 1 };
    assert_eq!(late.claim(&room("dev"), &nick("sleepy"), &tab, sleepy).await.expect("claim").claim, Claim::Free);
    let mut bob = JsonClient::connect(node_a.address).await;
    bob.try_join("dev", "bob").await.expect("joined");

    // Its beats stop reaching Redis (the test keeps overwriting them with
    // "time is up") until node A buries it: then the test stops at once
    // (one script: checking, then overwriting, could bury it a second time).
    let mut redis_connection = client.get_multiplexed_async_connection().await.expect("redis");
    let prefix = format!("chat:{}:", epoch.as_str());
    let overwrite = redis::Script::new(
        "if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end redis.call('ZADD', KEYS[1], 0, ARGV[1]) return 0",
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "never buried");
        let buried: bool = overwrite
            .key(format!("{prefix}nodes"))
            .key(format!("{prefix}buried:998"))
            .arg(998)
            .invoke_async(&mut redis_connection)
            .await
            .expect("overwrite");
        if buried {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut heard = Vec::new();
    until_heard(&mut bob, "sleepy left", &mut heard).await;
    // Its next beat finds it was buried: its name is back, and the room hears it.
    until_heard(&mut bob, "sleepy joined", &mut heard).await;
    heard.extend(presence_events(&mut bob, Duration::from_secs(1)).await);
    assert_eq!(heard.last().map(String::as_str), Some("sleepy joined"), "{heard:?}");
    let mut impostor = JsonClient::connect(node_a.address).await;
    assert_eq!(impostor.try_join("dev", "sleepy").await, Err(ErrorCode::NicknameTaken));
    let mut reader = JsonClient::connect(node_a.address).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // past the member list's reuse
    assert!(reader.try_join("dev", "reader").await.expect("joined").contains(&"sleepy".to_owned()));
}

#[actix_web::test]
async fn a_room_crowded_across_nodes_gets_no_presence_events_though_each_node_has_few() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    let mut members = Vec::new();
    for n in 0..101 {
        let mut client = JsonClient::connect(if n < 60 { node_a.address } else { node_b.address }).await;
        client.enter("big", &format!("m{n}"), None).await;
        members.push(client);
    }
    let watcher = &mut members[0];
    until_listed(watcher, "big", 101).await;
    presence_events(watcher, Duration::from_millis(100)).await;
    // 42 here and 60 on node A: over the limit, though node B alone is not.
    let mut late = JsonClient::connect(node_b.address).await;
    late.enter("big", "late", None).await;
    late.close().await;
    assert_eq!(presence_events(watcher, Duration::from_secs(1)).await, Vec::<String>::new());
}

/// Clients `m{n}` for each `n` of `numbers`, all joining `room_name` at once,
/// on the two nodes in turn.
async fn join_at_once(nodes: &[TestApp; 2], room_name: &str, numbers: std::ops::Range<usize>) -> Vec<JsonClient> {
    let joining = numbers.map(|n| {
        let address = nodes[n % 2].address;
        async move {
            let mut client = JsonClient::connect(address).await;
            client.enter(room_name, &format!("m{n:03}"), None).await;
            client
        }
    });
    futures_util::future::join_all(joining).await
}

/// A crowd filling a room across two nodes faster than they exchange counts
/// (once a second): each node alone stays under the limit for a while, but
/// the claim's count from Redis is exact, so only the first joins are
/// announced, as on one node. (Counting by the exchanged counts alone, the
/// watcher heard every one of the 149 joins.)
#[actix_web::test]
async fn a_room_filled_at_once_across_nodes_announces_only_its_first_joins() {
    let Some((database, redis)) = services().await else { return };
    let nodes = [node(&database, &redis).await, node(&database, &redis).await];
    let mut watcher = JsonClient::connect(nodes[0].address).await;
    watcher.enter("fill", "watcher", None).await;
    let crowd = PRESENCE_EVENTS_MAX + 50;
    let _crowd = join_at_once(&nodes, "fill", 1..crowd).await;
    // One more, at once: its own room line counts everyone, whichever node they are on.
    let mut late = JsonClient::connect(nodes[1].address).await;
    late.send_join("fill", "late", None).await;
    match late.next().await {
        ServerMessage::Joined { rooms, .. } => {
            let line = rooms.iter().find(|info| info.name == room("fill")).map(|info| info.online);
            assert_eq!(line, Some(crowd as u32 + 1), "every node's members, the joiner included");
        }
        other => panic!("expected joined, got {other:?}"),
    }
    let heard = presence_events(&mut watcher, Duration::from_secs(1)).await;
    assert!(
        !heard.is_empty() && heard.len() < PRESENCE_EVENTS_MAX,
        "{} of {} joins announced; only those into a room of at most {PRESENCE_EVENTS_MAX} should be",
        heard.len(),
        crowd - 1
    );
}

/// Once a crowd is in, across two nodes, each member sees one room list with
/// the final count, not one for its own node's last change and another when
/// the other node's counts arrive a moment later (two lists per member were
/// most of a two-node storm's frames).
#[actix_web::test]
async fn a_crowd_in_across_nodes_gets_one_room_list_with_the_final_count() {
    let Some((database, redis)) = services().await else { return };
    let nodes = [node(&database, &redis).await, node(&database, &redis).await];
    let mut watcher = JsonClient::connect(nodes[0].address).await;
    watcher.enter("fill", "watcher", None).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await; // a quiet spell, and the list for the watcher's join
    let _crowd = join_at_once(&nodes, "fill", 1..40).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut lists = Vec::new();
    while let Ok(message) = tokio::time::timeout_at(deadline, watcher.next_any()).await {
        if let ServerMessage::Rooms { rooms } = message {
            lists.extend(rooms.iter().filter(|info| info.name == room("fill")).map(|info| info.online));
        }
    }
    // The first join after the quiet spell is shown at once; then one list, once all are in.
    assert_eq!(lists.last(), Some(&40), "lists seen: {lists:?}");
    assert!(lists.len() <= 2, "no list between the first and the final one: {lists:?}");
}

#[actix_web::test]
async fn a_burial_whose_burier_died_half_way_is_finished_by_another_node() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    let mut bob = JsonClient::connect(node_a.address).await;
    bob.try_join("dev", "bob").await.expect("joined");
    // Redis as a burier of node 995 left it: ghost's name set aside, not
    // freed yet, the burial noted long ago and never finished.
    let client = redis::Client::open(redis.url()).expect("client");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let prefix = format!("chat:{}:", epoch.as_str());
    // A guest's holder: connection 1 of node 995, a tab hash, no user.
    let (field, holder) = ("995 1", "tabhash -");
    let mut pipe = redis::pipe();
    pipe.hset(format!("{prefix}holders:dev:ghost"), field, holder)
        .zadd(format!("{prefix}names:dev"), "ghost", 0)
        .hset(format!("{prefix}burying:995"), "dev 1 ghost", holder)
        .zadd(format!("{prefix}burials"), 995, 0);
    pipe.query_async::<()>(&mut connection).await.expect("state");

    let mut heard = Vec::new();
    until_heard(&mut bob, "ghost left", &mut heard).await;
    heard.extend(presence_events(&mut bob, Duration::from_secs(2)).await);
    assert_eq!(heard, ["ghost left"], "once");
    let left: Vec<bool> = redis::pipe()
        .exists(format!("{prefix}holders:dev:ghost"))
        .exists(format!("{prefix}burying:995"))
        .zscore(format!("{prefix}burials"), 995)
        .query_async::<(bool, bool, Option<f64>)>(&mut connection)
        .await
        .map(|(entry, burying, burial)| vec![entry, burying, burial.is_some()])
        .expect("state");
    assert_eq!(left, [false, false, false], "name freed, burial done");
}

#[actix_web::test]
async fn a_stalled_burial_of_a_node_that_beats_again_is_finished_all_the_same() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    let mut bob = JsonClient::connect(node_a.address).await;
    bob.try_join("dev", "bob").await.expect("joined");
    // Node 995's burial stalled half way (its burier died), and 995, which
    // was only late, beats again: it is among the live nodes.
    let client = redis::Client::open(redis.url()).expect("client");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let prefix = format!("chat:{}:", epoch.as_str());
    // A guest's holder: connection 1 of node 995, a tab hash, no user.
    let (field, holder) = ("995 1", "tabhash -");
    let alive_until = 32_503_680_000_000_u64; // the year 3000, in ms
    let mut pipe = redis::pipe();
    pipe.hset(format!("{prefix}holders:dev:ghost"), field, holder)
        .zadd(format!("{prefix}names:dev"), "ghost", 0)
        .hset(format!("{prefix}burying:995"), "dev 1 ghost", holder)
        .zadd(format!("{prefix}burials"), 995, 0)
        .zadd(format!("{prefix}nodes"), 995, alive_until);
    pipe.query_async::<()>(&mut connection).await.expect("state");

    // Finished: the names it set aside are freed and announced (995 takes
    // back those of its members still there when it learns of the burial).
    let mut heard = Vec::new();
    until_heard(&mut bob, "ghost left", &mut heard).await;
    let left: (bool, bool, Option<f64>) = redis::pipe()
        .exists(format!("{prefix}holders:dev:ghost"))
        .exists(format!("{prefix}burying:995"))
        .zscore(format!("{prefix}burials"), 995)
        .query_async(&mut connection)
        .await
        .expect("state");
    assert_eq!(left, (false, false, None), "name freed, burial done");
}

/// Follows the member list `client` shows (starting from `list`: its
/// `joined` list) through presence events and corrections until it is
/// `expected`; panics if it is not within `within`.
async fn list_becomes(client: &mut JsonClient, list: &mut Vec<String>, expected: &[&str], within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while list != expected {
        let Ok(message) = tokio::time::timeout_at(deadline, client.next()).await else {
            panic!("the list stayed {list:?}, not {expected:?}, for {within:?}");
        };
        match message {
            ServerMessage::MemberJoined { nick, .. } if !list.contains(&nick.to_string()) => {
                list.push(nick.to_string());
                list.sort();
            }
            ServerMessage::MemberLeft { nick, .. } => list.retain(|name| *name != nick.as_str()),
            ServerMessage::Members { members, .. } => *list = members.iter().map(|m| m.to_string()).collect(),
            _ => {}
        }
    }
}

#[actix_web::test]
async fn a_join_that_crosses_one_on_another_node_is_listed_right_after_all() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    // Bob's join on B reads the room's list (B reuses it for a moment, for crowds).
    let mut bob = JsonClient::connect(node_b.address).await;
    let mut bobs = bob.try_join("dev", "bob").await.expect("bob joins");
    // Ann joins on A; B delivers her arrival to bob, its only member in #dev.
    let mut ann = JsonClient::connect(node_a.address).await;
    let mut anns = ann.try_join("dev", "ann").await.expect("ann joins");
    list_becomes(&mut bob, &mut bobs, &["ann", "bob"], Duration::from_secs(2)).await;
    // Cat joins on B at once: the list B gives her was read before ann came.
    let mut cat = JsonClient::connect(node_b.address).await;
    let mut cats = cat.try_join("dev", "cat").await.expect("cat joins");
    // Two checks a second apart, and the reads: corrected within 3 s of the join.
    list_becomes(&mut cat, &mut cats, &["ann", "bob", "cat"], Duration::from_secs(3)).await;
    list_becomes(&mut ann, &mut anns, &["ann", "bob", "cat"], Duration::from_secs(2)).await;
}

#[actix_web::test]
async fn member_lists_that_lost_presence_events_heal_within_the_check_period() {
    let Some((database, redis)) = services().await else { return };
    let check_every = Duration::from_secs(1);
    let on_redis = |database: String, url: String| {
        TestApp::spawn_configured(move |config| {
            config.database = chat_server::store::location::StoreLocation::Postgres(database);
            config.redis = Some(url.parse().expect("redis url"));
            config.check_members_secs = 1;
        })
    };
    let node_a = on_redis(database.clone(), redis.url()).await;
    let epoch = epoch_of(&node_a).await;
    let mut ann = JsonClient::connect(node_a.address).await;
    let mut anns = ann.try_join("dev", "ann").await.expect("ann joins");
    // A node whose presence events never reach anyone (as when they are lost
    // on a link that reconnects): "ghost" comes, unannounced, then its node dies.
    let ttl = Duration::from_millis(1500);
    let client = redis::Client::open(redis.url()).expect("client");
    let silent = RedisPresence::start_with_ttl(client, &epoch, 999, ttl).expect("presence");
    let tab = Claimant::guest(ClientId::parse("ghost-tab").expect("tab"));
    let ghost = Peer { node: 999, connection: 1 };
    assert_eq!(silent.claim(&room("dev"), &nick("ghost"), &tab, ghost).await.expect("claim").claim, Claim::Free);
    // Two checks agree, a second apart (plus a second's tick).
    let bound = check_every * 3 + Duration::from_secs(1);
    list_becomes(&mut ann, &mut anns, &["ann", "ghost"], bound).await;
    drop(silent);
    // Its entry expires with nobody to announce it gone.
    list_becomes(&mut ann, &mut anns, &["ann"], ttl + bound).await;
}

#[actix_web::test]
async fn after_redis_restarts_empty_no_name_is_free_before_its_holder_took_it_back() {
    let Some((database, mut redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    let mut ann = JsonClient::connect_as_tab(node_a.address, "tab-ann").await;
    ann.try_join("dev", "ann").await.expect("ann joins");
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.try_join("dev", "bob").await.expect("bob joins");

    redis.kill();
    redis.start_again().await;
    // From the moment Redis answers again, empty, someone else keeps trying
    // ann's name through the other node.
    let restarted = tokio::time::Instant::now();
    let mut impostor = JsonClient::connect(node_b.address).await;
    let mut answers = Vec::new();
    // Claims wait 10 s from the first beat after the restart (a second at most).
    while restarted.elapsed() < Duration::from_secs(12) {
        answers.push(impostor.try_join("dev", "ann").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answers.iter().all(|answer| matches!(answer, Err(ErrorCode::NicknameTaken | ErrorCode::Unavailable))),
        "ann's name was given away: {answers:?}"
    );
    // Then claims are answered again (how soon depends on when the nodes'
    // connections to the new Redis came back): ann's, by ann.
    let answered = tokio::time::Instant::now() + Duration::from_secs(10);
    while answers.last() != Some(&Err(ErrorCode::NicknameTaken)) {
        assert!(tokio::time::Instant::now() < answered, "claims never answered again: {:?}", answers.last());
        answers.push(impostor.try_join("dev", "ann").await);
        assert!(!matches!(answers.last(), Some(Ok(_))), "ann's name was given away: {answers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ann never noticed: her connection goes on under her name.
    let said = ann.say("still mine").await;
    ann.next_ack(&said).await;
}

#[actix_web::test]
async fn a_node_started_just_after_redis_restarts_empty_gives_no_name_away_before_its_holder_took_it_back() {
    let Some((database, mut redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let mut ann = JsonClient::connect_as_tab(node_a.address, "tab-ann").await;
    ann.try_join("dev", "ann").await.expect("ann joins");
    let epoch = epoch_of(&node_a).await;

    redis.kill();
    redis.start_again().await;
    // A node that just started (it held nothing, knew no incarnation of
    // presence) beats first: it cannot tell this from a new history. Found
    // by the fault run: it opened claims at once, before node A's next beat
    // took ann's name back, and an impostor got it.
    let client = redis::Client::open(redis.url()).expect("redis client");
    let fresh = RedisPresence::start(client, &epoch, 997, false).expect("presence");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    let impostor = Peer { node: 997, connection: 1 };
    let tab = Claimant::guest(ClientId::parse("tab-impostor").expect("tab"));
    let mut answers = Vec::new();
    while started.elapsed() < Duration::from_secs(13) {
        answers.push(fresh.claim(&room("dev"), &nick("ann"), &tab, impostor).await.map(|claimed| claimed.claim));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answers.iter().all(|answer| matches!(answer, Ok(Claim::Recovering | Claim::Taken))),
        "ann's name was given away: {answers:?}"
    );
    // Then it is answered again (how soon depends on when node A's
    // connection to the new Redis came back): taken, by ann.
    let answered = tokio::time::Instant::now() + Duration::from_secs(10);
    while !matches!(answers.last(), Some(Ok(Claim::Taken))) {
        assert!(tokio::time::Instant::now() < answered, "never answered again: {:?}", answers.last());
        answers.push(fresh.claim(&room("dev"), &nick("ann"), &tab, impostor).await.map(|claimed| claimed.claim));
        assert!(matches!(answers.last(), Some(Ok(Claim::Recovering | Claim::Taken))), "given away: {answers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_node_of_a_history_in_use_started_after_redis_restarts_empty_waits_out_a_cut_off_nodes_lease() {
    let Some((database, mut redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    drop(node_a);
    // Node 996 holds ann's name, then is cut off (its heartbeat stops; its
    // lease, counted from its last beat, runs up to 8 s more).
    let client = redis::Client::open(redis.url()).expect("redis client");
    let cut_off = RedisPresence::start(client, &epoch, 996, true).expect("presence");
    cut_off.first_beat().await.expect("a beat");
    let ann = Peer { node: 996, connection: 1 };
    let tab = Claimant::guest(ClientId::parse("tab-ann").expect("tab"));
    assert_eq!(cut_off.claim(&room("dev"), &nick("ann"), &tab, ann).await.expect("claim").claim, Claim::Free);
    let last_beat = tokio::time::Instant::now();
    drop(cut_off);

    redis.kill();
    redis.start_again().await;
    // A node that just started, of this history (it has messages), beats
    // first: no live node will beat to extend its mark, so it must give the
    // full grace itself. Found by the fault run: with 5 s (and 2 s for a
    // node that just started) an impostor got a cut-off node's names while
    // its lease still ran.
    let client = redis::Client::open(redis.url()).expect("redis client");
    let fresh = RedisPresence::start(client, &epoch, 995, true).expect("presence");
    let impostor = Peer { node: 995, connection: 1 };
    let other_tab = Claimant::guest(ClientId::parse("tab-impostor").expect("tab"));
    let lease_ends = last_beat + Duration::from_secs(8);
    while tokio::time::Instant::now() < lease_ends {
        let claimed = fresh.claim(&room("dev"), &nick("ann"), &other_tab, impostor).await;
        assert!(
            matches!(claimed, Ok(Claimed { claim: Claim::Recovering, .. })),
            "claimed while the lease ran: {claimed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_connection_whose_name_another_took_while_presence_was_lost_is_closed() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    let mut ann = JsonClient::connect_as_tab(node_a.address, "tab-ann").await;
    ann.try_join("dev", "ann").await.expect("ann joins");
    // While node A was cut off past its burial, someone on another node took "ann".
    let client = redis::Client::open(redis.url()).expect("client");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let entry = format!("chat:{}:holders:dev:ann", epoch.as_str());
    redis::pipe()
        .del(&entry)
        .hset(&entry, "999 1", "someone-elses-tab -")
        .pexpire(&entry, 60_000)
        .query_async::<()>(&mut connection)
        .await
        .expect("set");
    // Node A finds out at its next refresh (every 5 s): ann must not go on as "ann".
    let found_out = Duration::from_secs(5) + Duration::from_secs(2);
    let code = tokio::time::timeout(found_out, ann.raw().close_code()).await.expect("closed in time");
    assert_eq!(code, 1008);
}

#[actix_web::test]
async fn a_node_cut_off_from_presence_closes_its_members_before_the_others_may_give_their_names_away() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let mut ann = JsonClient::connect_as_tab(node_a.address, "tab-ann").await;
    ann.try_join("dev", "ann").await.expect("ann joins");
    let mut bob = JsonClient::connect(node_a.address).await;
    bob.try_join("dev", "bob").await.expect("bob joins");

    // Nothing reaches Redis: after 10 s without a beat, any node that
    // reached it would bury node A and free ann's name.
    redis.pause();
    let cut_off = tokio::time::Instant::now();
    let code = ann.raw().close_code_within(Duration::from_secs(10)).await;
    let closed_after = cut_off.elapsed();
    let bobs = bob.raw().close_code_within(Duration::from_secs(1)).await;
    redis.resume();
    assert_eq!(code.expect("ann's connection was closed before the burial deadline"), 1008);
    assert!(closed_after >= Duration::from_secs(7), "not before the lease ran out: {closed_after:?}");
    assert_eq!(bobs, Some(1008), "every name held here");
    // Reconnected once the node reaches presence again: her tab takes her name back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = JsonClient::connect_as_tab(node_a.address, "tab-ann").await;
        if again.try_join("dev", "ann").await.is_ok() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ann never got back in");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[actix_web::test]
async fn a_claim_held_up_until_its_node_gave_up_on_it_changes_nothing_when_it_reaches_redis() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    let client = redis::Client::open(redis.url()).expect("client");
    let presence = RedisPresence::start(client.clone(), &epoch, 993, false).expect("presence");
    presence.first_beat().await.expect("beat");
    // Redis stops answering (as in a partition that holds what was sent):
    // the claim waits in its socket, and the node gives up on it.
    redis.pause();
    let tab = Claimant::guest(ClientId::parse("held-up").expect("tab"));
    let claimed = presence.claim(&room("dev"), &nick("ghost"), &tab, Peer { node: 993, connection: 1 }).await;
    assert!(claimed.is_err(), "{claimed:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    redis.resume();
    // Redis reads the claim now, past its deadline: nothing is claimed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let entry = format!("chat:{}:holders:dev:ghost", epoch.as_str());
    let fields: Vec<String> = redis::cmd("HGETALL").arg(&entry).query_async(&mut connection).await.expect("entry");
    assert_eq!(fields, Vec::<String>::new(), "a ghost holder");
}
