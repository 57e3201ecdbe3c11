//! A dead node with thousands of members, buried whole: its own test
//! binary, so that no other test's servers share the machine's moment (under
//! load, beside the other presence tests, its node's bus reconnected during
//! the burial and lost some of the announcements, which presence events
//! sent during a reconnect are). The likely cause was found later: every
//! link with a room subscribed took its ping's answer for a failure and
//! reconnected 5 s after connecting, which a test slowed by load outlived.
//! Fixed, and beside its siblings under load it passed 6 runs of 6; but the
//! old failure did not come back with the fix undone either (2 of 2 passed),
//! so it stays on its own.

mod support;

use std::time::Duration;

use chat_server::bus::Peer;
use chat_server::presence::{Claim, Claimant, Presence, RedisPresence};
use chat_shared::ClientId;
use futures_util::StreamExt;
use support::redis::{epoch_of, node, presence_events, services};
use support::{JsonClient, nick, room};

#[actix_web::test]
async fn a_dead_node_with_thousands_of_members_is_buried_whole() {
    let Some((database, redis)) = services().await else { return };
    let node_a = node(&database, &redis).await;
    let epoch = epoch_of(&node_a).await;
    let client = redis::Client::open(redis.url()).expect("client");
    let dying = RedisPresence::start_with_ttl(client.clone(), &epoch, 996, Duration::from_secs(3)).expect("presence");
    const ROOMS: usize = 50;
    const PER_ROOM: usize = 99;
    let claims = (0..ROOMS * PER_ROOM).map(|n| {
        let dying = dying.clone();
        async move {
            let (room_name, name) = (room(&format!("r{}", n % ROOMS)), nick(&format!("m{n}")));
            let tab = Claimant::guest(ClientId::parse(format!("tab-{n}")).expect("tab"));
            let member = Peer { node: 996, connection: n as u64 + 1 };
            dying.claim(&room_name, &name, &tab, member).await.expect("claim").claim
        }
    });
    // 64 at a time: thousands at once would starve the test's own node.
    let claimed: Vec<Claim> = futures_util::stream::iter(claims).buffer_unordered(64).collect().await;
    assert!(claimed.iter().all(|claim| *claim == Claim::Free));
    let mut bob = JsonClient::connect(node_a.address).await;
    bob.enter("r0", "bob", None).await;

    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(2000)
        .query_async(&mut connection)
        .await
        .expect("config");
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut connection).await.expect("reset");
    drop(dying);
    let died = std::time::Instant::now();
    let mut heard = Vec::new();
    while heard.iter().filter(|e: &&String| e.ends_with(" left")).count() < PER_ROOM {
        if died.elapsed() > Duration::from_secs(20) {
            // Presence events sent while a node's bus reconnects are lost: say so.
            let metrics = reqwest::get(format!("http://{}/metrics", node_a.address)).await.expect("metrics");
            let metrics = metrics.text().await.expect("metrics");
            let reconnects = metrics.lines().find(|line| line.starts_with("chat_bus_reconnects_total"));
            panic!("heard only {} leaves; {reconnects:?} (2 are the first connections)", heard.len());
        }
        heard.extend(presence_events(&mut bob, Duration::from_millis(100)).await);
    }
    eprintln!(
        "{} members of a dead node buried; bob's room heard its {PER_ROOM} leave {:?} after",
        ROOMS * PER_ROOM,
        died.elapsed()
    );
    heard.extend(presence_events(&mut bob, Duration::from_millis(500)).await);
    assert_eq!(heard.len(), PER_ROOM, "each of r0's members once: {heard:?}");
    // Every name of every room is free, and nothing of the dead node is left in Redis.
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg(format!("chat:{}:holders:*", epoch.as_str()))
        .query_async(&mut connection)
        .await
        .expect("keys");
    assert_eq!(entries, [format!("chat:{}:holders:r0:bob", epoch.as_str())]);
    let held: bool = redis::cmd("EXISTS")
        .arg(format!("chat:{}:held:996", epoch.as_str()))
        .query_async(&mut connection)
        .await
        .expect("exists");
    assert!(!held);
    // Redis is never busy with the burial for long (the slow log keeps commands over 2 ms).
    let slow: Vec<(i64, i64, i64, Vec<String>, String, String)> =
        redis::cmd("SLOWLOG").arg("GET").arg(10).query_async(&mut connection).await.expect("slow log");
    for (_, _, micros, command, _, _) in slow {
        eprintln!("redis slow log: {micros} µs in {}", command.join(" ").chars().take(60).collect::<String>());
    }
}
