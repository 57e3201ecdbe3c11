//! Several nodes on one PostgreSQL history, linked by a Redis bus: clients
//! on different nodes hear each room's messages once, in id order, with no
//! gap, even when a publish is lost or Redis restarts. Runs against the
//! private PostgreSQL `./scripts/test` starts and a private Redis per test.

mod support;

use std::time::Duration;

use chat_server::config::Config;
use chat_server::store::postgres::PostgresStore;
use chat_server::store::{HistoryStore, NewMessage};
use chat_shared::{ChatMessage, MessageText, ServerMessage};
use support::redis::{node, services};
use support::{JsonClient, PATIENCE, QUIET, TestApp, nick, room};

async fn readyz(app: &TestApp) -> (u16, String) {
    let response = reqwest::get(format!("http://{}/readyz", app.address)).await.expect("readyz answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

/// Waits until `/readyz` says `expected` (the bus connects in the background).
async fn await_readyz(app: &TestApp, expected: u16) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = readyz(app).await;
        if status == expected {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "readyz stayed {status}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text =
        reqwest::get(format!("http://{}/metrics", app.address)).await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// Reads chat messages until `count` have arrived (acks and presence skipped).
async fn messages(client: &mut JsonClient, count: usize) -> Vec<ChatMessage> {
    let mut heard = Vec::with_capacity(count);
    while heard.len() < count {
        heard.push(client.next_chat().await);
    }
    heard
}

/// Checks that no further chat message arrives (acks may).
async fn no_more_messages(client: &mut JsonClient) {
    while let Ok(next) = tokio::time::timeout(QUIET, client.next()).await {
        assert!(matches!(next, ServerMessage::Ack { .. }), "unexpected {next:?}");
    }
}

fn ids(messages: &[ChatMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

#[actix_web::test]
async fn three_nodes_hear_every_message_of_a_room_once_in_id_order_while_all_send_at_once() {
    let Some((database, redis)) = services().await else { return };
    let nodes = [node(&database, &redis).await, node(&database, &redis).await, node(&database, &redis).await];
    for node in &nodes {
        assert_eq!(await_readyz(node, 200).await, "ready\nstore (postgres): ok\nbus (redis): ok\n");
    }
    let mut clients = Vec::new();
    for (node, name) in nodes.iter().zip(["ann", "bob", "cat"]) {
        let mut client = JsonClient::connect(node.address).await;
        client.enter("dev", name, None).await;
        clients.push(client);
    }
    // Presence and typing cross nodes too: ann (node 0) heard bob and cat arrive.
    for arrived in ["bob", "cat"] {
        match clients[0].next().await {
            ServerMessage::MemberJoined { nick: who, .. } => assert_eq!(who, nick(arrived)),
            other => panic!("expected {arrived} joining, got {other:?}"),
        }
    }
    clients[2].send(&chat_shared::ClientMessage::Typing { room: room("dev") }).await;
    match clients[0].next().await {
        ServerMessage::Typing { nick: who, .. } => assert_eq!(who, nick("cat")),
        other => panic!("expected cat typing, got {other:?}"),
    }

    const EACH: usize = 150;
    let total = EACH * clients.len();
    let runs = clients.iter_mut().enumerate().map(|(n, client)| async move {
        for i in 0..EACH {
            client.say(&format!("{n}:{i}")).await;
        }
        messages(client, total).await
    });
    let heard = tokio::time::timeout(PATIENCE * 4, futures_util::future::join_all(runs)).await.expect("all delivered");
    let expected: Vec<u64> = (1..=total as u64).collect();
    for (n, messages) in heard.iter().enumerate() {
        assert_eq!(ids(messages), expected, "client {n}: every id once, in order");
        // Each sender's own messages in the order it sent them.
        let own: Vec<String> =
            messages.iter().map(|m| m.text.as_str().to_owned()).filter(|t| t.starts_with(&format!("{n}:"))).collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("{n}:{i}")).collect();
        assert_eq!(own, sent);
    }
    for client in &mut clients {
        no_more_messages(client).await;
    }
}

/// A link with rooms subscribed is in Redis's subscribed mode, where PING is
/// answered as a pub/sub message (`["pong", ""]`), not `PONG`; it must count
/// as an answer. (Taken for a failure, it made every link that had a room
/// reconnect every 5 s, losing the presence events of the moment: 8
/// reconnects per node in a 40 s two-node storm.)
#[actix_web::test]
async fn a_link_with_rooms_subscribed_stays_connected_across_its_pings() {
    let Some((database, redis)) = services().await else { return };
    let nodes = [node(&database, &redis).await, node(&database, &redis).await];
    for node in &nodes {
        await_readyz(node, 200).await;
    }
    let mut ann = JsonClient::connect(nodes[0].address).await;
    ann.enter("dev", "ann", None).await;
    let connects = metric(&nodes[0], "chat_bus_reconnects_total").await;
    // Past the first ping of every link (5 s after it connected).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(metric(&nodes[0], "chat_bus_reconnects_total").await, connects, "no link reconnected");
    // And the link still carries the room: a join and a message from the other node.
    let mut bob = JsonClient::connect(nodes[1].address).await;
    bob.enter("dev", "bob", None).await;
    assert_eq!(ann.next().await, ServerMessage::MemberJoined { room: room("dev"), nick: nick("bob") });
    bob.say("still linked").await;
    assert_eq!(ann.next_chat().await.text.as_str(), "still linked");
}

#[actix_web::test]
async fn a_message_stored_but_never_published_reaches_the_other_nodes_with_the_next_one() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    await_readyz(&node_b, 200).await;
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.enter("dev", "bob", None).await;

    // A node that died between its commit and its publish: stored, never heard.
    let store = PostgresStore::open(&database).await.expect("store");
    let text = MessageText::parse("committed, then the node died").expect("text");
    let lost = NewMessage { room: room("dev"), ts: 0, nick: nick("ghost"), text, client_id: None, deletes: None };
    store.append(lost).await.expect("stored");
    bob.raw().assert_silent().await;

    let mut ann = JsonClient::connect(node_a.address).await;
    ann.enter("dev", "ann", None).await;
    ann.say("next").await;
    let heard = messages(&mut bob, 2).await;
    assert_eq!(ids(&heard), [1, 2]);
    assert_eq!(heard[0].text.as_str(), "committed, then the node died");
    assert!(metric(&node_b, "chat_bus_gap_reads_total").await >= 1);
    bob.raw().assert_silent().await;
}

#[actix_web::test]
async fn a_joiner_whose_history_has_a_message_its_node_relays_late_gets_it_once() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    await_readyz(&node_b, 200).await;
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.enter("dev", "bob", None).await;
    // Stored by a node that died before publishing it: node B relays it only
    // once the next message shows the gap.
    let store = PostgresStore::open(&database).await.expect("store");
    let text = MessageText::parse("committed, then the node died").expect("text");
    let lost = NewMessage { room: room("dev"), ts: 0, nick: nick("ghost"), text, client_id: None, deletes: None };
    store.append(lost).await.expect("stored");
    // Carol joins on node B meanwhile: her history has it.
    let mut carol = JsonClient::connect(node_b.address).await;
    let (history, _) = carol.enter("dev", "carol", None).await;
    let mut heard = ids(&history);
    assert_eq!(heard, [1]);
    let mut ann = JsonClient::connect(node_a.address).await;
    ann.enter("dev", "ann", None).await;
    ann.say("next").await;
    assert_eq!(ids(&messages(&mut bob, 2).await), [1, 2], "node B relayed the lost one");
    heard.extend(ids(&messages(&mut carol, 1).await));
    assert_eq!(heard, [1, 2], "each once, in order");
    carol.raw().assert_silent().await;
}

#[actix_web::test]
async fn after_redis_restarts_nodes_resubscribe_and_hear_what_was_stored_meanwhile_in_order() {
    let Some((database, mut redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    await_readyz(&node_a, 200).await;
    await_readyz(&node_b, 200).await;
    let mut ann = JsonClient::connect(node_a.address).await;
    ann.enter("lobby", "ann", None).await;
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.enter("lobby", "bob", None).await;
    let before = ann.say("before").await;
    ann.next_ack(&before).await;
    assert_eq!(ids(&messages(&mut bob, 1).await), [1]);

    redis.kill();
    assert_eq!(await_readyz(&node_a, 503).await, "not ready\nstore (postgres): ok\nbus (redis): unavailable\n");
    // Stored and acknowledged without Redis; heard on ann's own node at once.
    for text in ["one", "two", "three", "four", "five"] {
        let client_id = ann.say(text).await;
        ann.next_ack(&client_id).await;
    }
    // And a node that stored two more and died before Redis came back: only
    // the store has those (ann's node still holds its five to publish).
    let store = PostgresStore::open(&database).await.expect("store");
    for text in ["six", "seven"] {
        let text = MessageText::parse(text).expect("text");
        store
            .append(NewMessage {
                room: room("lobby"),
                ts: 0,
                nick: nick("ghost"),
                text,
                client_id: None,
                deletes: None,
            })
            .await
            .expect("stored");
    }
    tokio::time::sleep(QUIET).await;
    bob.raw().assert_silent().await;

    redis.start_again().await;
    await_readyz(&node_b, 200).await;
    let caught_up = tokio::time::timeout(PATIENCE, messages(&mut bob, 7)).await.expect("caught up");
    assert_eq!(ids(&caught_up), [2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(caught_up[6].text.as_str(), "seven");

    // Live again both ways, with nothing repeated (ann's node publishes what it
    // kept, which bob's node has read already).
    await_readyz(&node_a, 200).await;
    let caught_up = tokio::time::timeout(PATIENCE, messages(&mut ann, 2)).await.expect("ann caught up");
    assert_eq!(ids(&caught_up), [7, 8]);
    let back_id = bob.say("back").await;
    assert_eq!(bob.next_ack(&back_id).await, 9);
    let back = tokio::time::timeout(PATIENCE, ann.next_chat()).await.expect("heard across");
    assert_eq!((back.id, back.text.as_str()), (9, "back"));
    no_more_messages(&mut ann).await;
    no_more_messages(&mut bob).await;
    assert!(metric(&node_b, "chat_bus_reconnects_total").await >= 2);
}

#[actix_web::test]
async fn redis_without_a_shared_database_is_refused_at_startup() {
    let error = Config::load_from(["chat-server", "--redis", "redis://127.0.0.1:1/"]).expect_err("refused");
    assert!(error.to_string().contains("postgres"), "{error}");
    assert!(
        Config::load_from(["chat-server", "--redis", "localhost:6379", "--database", "postgres://db/chat"]).is_err()
    );
}

#[actix_web::test]
async fn plain_clients_on_one_node_and_web_clients_on_another_hear_each_other_in_the_lobby() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    await_readyz(&node_b, 200).await;
    // Only a plain client on node B: its node must still hear the lobby.
    let mut plain = support::RawClient::connect(node_b.address, "/").await;
    let mut ann = JsonClient::connect(node_a.address).await;
    ann.enter("lobby", "ann", None).await;
    tokio::time::sleep(QUIET).await;
    let said = ann.say("hello plain world").await;
    ann.next_ack(&said).await;
    assert_eq!(plain.next_text().await, "ann: hello plain world");
    plain.send(tokio_tungstenite::tungstenite::Message::text("hi from the seed client")).await;
    let heard = tokio::time::timeout(PATIENCE, ann.next_chat()).await.expect("heard across");
    assert_eq!(heard.text.as_str(), "hi from the seed client");
}

/// Waits for `count` events from `bus` that `keep` selects (others are skipped).
async fn collect<T>(
    bus: &mut chat_server::bus::RedisBus,
    count: usize,
    mut keep: impl FnMut(chat_server::bus::BusEvent) -> Option<T>,
) -> Vec<T> {
    use chat_server::bus::RoomBus;
    let mut kept = Vec::with_capacity(count);
    while kept.len() < count {
        let event = tokio::time::timeout(Duration::from_secs(60), bus.next()).await;
        let event = event.unwrap_or_else(|_| panic!("stalled after {} of {count} events", kept.len()));
        kept.extend(keep(event));
    }
    kept
}

#[actix_web::test]
async fn a_node_with_10_000_rooms_subscribes_them_and_catches_up_those_that_missed_messages() {
    use chat_server::bus::{BusEvent, RedisBus, RoomBus, RoomEvent};
    use std::sync::Arc;
    const ROOMS: usize = 10_000;
    const MISSED: usize = 2_000;
    let Some((database, mut redis)) = services().await else { return };
    let store: Arc<dyn HistoryStore> = Arc::new(PostgresStore::open(&database).await.expect("store"));
    let client = ::redis::Client::open(redis.url()).expect("client");
    let metrics = chat_server::metrics::Metrics::new();
    let (mut buses, health) = RedisBus::for_shards(&client, &store, 7, 1, &metrics);
    let mut bus = buses.pop().expect("one bus");
    let rooms: Vec<_> = (0..ROOMS).map(|n| room(&format!("r{n}"))).collect();

    // A join storm into 10,000 rooms new to this node.
    let started = std::time::Instant::now();
    for name in &rooms {
        bus.subscribe(name);
    }
    let ready = collect(&mut bus, ROOMS, |event| matches!(event, BusEvent::Ready(_)).then_some(())).await;
    assert_eq!(ready.len(), ROOMS);
    eprintln!("{ROOMS} rooms subscribed and ready in {:?}", started.elapsed());

    // Redis goes away; 2,000 of the rooms get a message meanwhile (stored by other nodes).
    redis.kill();
    // The first room misses more than one read of many rooms brings (50).
    const MISSED_IN_FIRST: usize = 120;
    let missed: Vec<NewMessage> = std::iter::repeat_n(&rooms[0], MISSED_IN_FIRST - 1)
        .chain(&rooms[..MISSED])
        .map(|name| NewMessage {
            room: name.clone(),
            ts: 1,
            nick: nick("elsewhere"),
            text: MessageText::parse(format!("missed in {name}")).expect("text"),
            client_id: None,
            deletes: None,
        })
        .collect();
    for chunk in missed.chunks(500) {
        store.append_batch(chunk.to_vec()).await.expect("stored");
    }
    redis.start_again().await;
    let started = std::time::Instant::now();
    let heard = collect(&mut bus, MISSED + MISSED_IN_FIRST - 1, |event| match event {
        BusEvent::Room(published) => match published.event {
            RoomEvent::Message { message, .. } => Some((published.room, message.id, message.text)),
            _ => None,
        },
        BusEvent::Ready(_) => None,
    })
    .await;
    eprintln!(
        "{} missed messages in {MISSED} of {ROOMS} rooms caught up {:?} after redis was back",
        heard.len(),
        started.elapsed()
    );
    let first: Vec<u64> = heard.iter().filter(|(name, _, _)| *name == rooms[0]).map(|(_, id, _)| *id).collect();
    assert_eq!(first, (1..=MISSED_IN_FIRST as u64).collect::<Vec<_>>(), "the first room's, in order, once");
    let mut others: Vec<String> =
        heard.iter().filter(|(name, _, _)| *name != rooms[0]).map(|(name, _, _)| name.to_string()).collect();
    others.sort();
    others.dedup();
    assert_eq!(others.len(), MISSED - 1, "each other room that missed a message hears it once");
    assert!(heard.iter().all(|(name, _, text)| text.as_str() == format!("missed in {name}")));
    assert!(health.connected());
    // Nothing more: rooms without news stay quiet.
    assert!(tokio::time::timeout(QUIET, bus.next()).await.is_err());
}

#[actix_web::test]
async fn a_node_redis_cuts_off_for_reading_too_slowly_still_hears_everything_once_in_order() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    await_readyz(&node_b, 200).await;
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.enter("dev", "bob", None).await;
    let mut alice = JsonClient::connect(node_a.address).await;
    alice.enter("dev", "alice", None).await;
    // Redis drops any subscriber more than 4 KiB behind (its default is 8 MiB
    // for a minute): node B falls that far behind during a burst.
    let mut admin =
        ::redis::Client::open(redis.url()).expect("client").get_multiplexed_async_connection().await.expect("redis");
    let _: () = ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 4kb 0 0")
        .query_async(&mut admin)
        .await
        .expect("config set");
    let reconnects_before = metric(&node_b, "chat_bus_reconnects_total").await;

    const BURST: usize = 2_000;
    for n in 0..BURST {
        alice.say(&format!("burst {n}")).await;
    }
    let heard = tokio::time::timeout(Duration::from_secs(60), messages(&mut bob, BURST)).await.expect("all heard");
    assert_eq!(ids(&heard), (1..=BURST as u64).collect::<Vec<_>>(), "every id once, in order");
    let texts: Vec<String> = heard.iter().map(|m| m.text.as_str().to_owned()).collect();
    assert_eq!(texts, (0..BURST).map(|n| format!("burst {n}")).collect::<Vec<_>>());
    no_more_messages(&mut bob).await;
    let reconnects = metric(&node_b, "chat_bus_reconnects_total").await - reconnects_before;
    eprintln!("node B was cut off and reconnected {reconnects} times during the burst");
    assert!(reconnects >= 1, "the test must have made Redis cut node B off");
}

/// A TCP proxy to `target` that holds what its clients send for `delay`
/// before passing it on (what comes back passes at once): a node whose
/// link to Redis is slow one way. Returns its URL for Redis.
async fn slow_outbound_proxy(target: std::net::SocketAddr, delay: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(target).await else { continue };
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            let (delayed, mut to_send) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
            tokio::spawn(async move {
                let mut buffer = vec![0; 64 * 1024];
                while let Ok(n) = from_client.read(&mut buffer).await {
                    if n == 0 || delayed.send((tokio::time::Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some((at, bytes)) = to_send.recv().await {
                    tokio::time::sleep_until(at).await;
                    if to_server.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
            });
        }
    });
    format!("redis://{address}/")
}

#[actix_web::test]
async fn an_author_whose_own_message_its_node_read_from_the_store_first_still_gets_its_ack() {
    let Some((database, mut redis)) = services().await else { return };
    let redis_address: std::net::SocketAddr =
        redis.url().trim_start_matches("redis://").trim_end_matches('/').parse().expect("redis address");
    // Node A's requests reach Redis 400 ms late: when its link reconnects,
    // its resubscription takes that long, and what its shard publishes
    // meanwhile waits behind it, while its catch-up reads the store.
    let slow = slow_outbound_proxy(redis_address, Duration::from_millis(400)).await;
    let node_a = TestApp::spawn_configured({
        let (database, slow) = (database.clone(), slow.clone());
        move |config| {
            config.database = chat_server::store::location::StoreLocation::Postgres(database);
            config.redis = Some(slow.parse().expect("redis url"));
        }
    })
    .await;
    await_readyz(&node_a, 200).await;
    let mut ann = JsonClient::connect(node_a.address).await;
    ann.enter("dev", "ann", None).await;

    redis.kill();
    redis.start_again().await;
    // Ann talks on through the reconnect (a message every 50 ms for 3 s, under her rate limit).
    let mut said = Vec::new();
    for n in 0..60 {
        said.push(ann.say(&format!("through the reconnect {n}")).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut acked = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while acked.len() < said.len() {
        match tokio::time::timeout_at(deadline, ann.next()).await {
            Ok(ServerMessage::Ack { client_id, .. }) => {
                acked.insert(client_id);
            }
            Ok(_) => {}
            Err(_) => {
                let missing: Vec<_> = said.iter().filter(|id| !acked.contains(*id)).collect();
                panic!("never acknowledged: {missing:?}");
            }
        }
    }
    assert!(metric(&node_a, "chat_bus_reconnects_total").await >= 2);
}

#[actix_web::test]
async fn a_resend_of_a_message_whose_commit_reply_was_lost_reaches_everyone() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);
    await_readyz(&node_b, 200).await;
    let mut ann = JsonClient::connect(node_a.address).await;
    ann.enter("dev", "ann", None).await;
    let mut bob = JsonClient::connect(node_b.address).await;
    bob.enter("dev", "bob", None).await;
    // Ann's message was committed, but the reply was lost on its way to her
    // node, which told her it was not stored: no node relayed it.
    let client_id = chat_shared::ClientId::parse("tab-ann-1").expect("client id");
    let store = PostgresStore::open(&database).await.expect("store");
    let text = MessageText::parse("committed, reply lost").expect("text");
    let lost = NewMessage {
        room: room("dev"),
        ts: 0,
        nick: nick("ann"),
        text,
        client_id: Some(client_id.clone()),
        deletes: None,
    };
    store.append(lost).await.expect("stored");
    // She resends it, as the web client does: stored once, and now everyone hears it.
    ann.say_with_id("committed, reply lost", &client_id).await;
    assert_eq!(ann.next_ack(&client_id).await, 1);
    let heard =
        tokio::time::timeout(PATIENCE, messages(&mut bob, 1)).await.expect("bob hears it without a next message");
    assert_eq!((heard[0].id, heard[0].text.as_str()), (1, "committed, reply lost"));
    no_more_messages(&mut bob).await;
}
