//! Presence across nodes (Redis): a nickname is unique in a room whichever
//! node its holder is on, claimed atomically; a browser tab takes its name
//! back through another node (its old connection there is closed); the names
//! of a node that stops refreshing them come free when their entries expire.

mod support;

use std::time::Duration;

use chat_server::bus::Peer;
use chat_server::presence::{Claim, Presence, RedisPresence};
use chat_shared::{ClientId, Epoch, ErrorCode, ServerMessage};
use support::redis::{node, services};
use support::{JsonClient, TestApp, nick, room};

/// Joins `room` as `name` and returns the answer: `joined`'s member list
/// (once its history followed), or the error code.
async fn try_join(client: &mut JsonClient, room_name: &str, name: &str) -> Result<Vec<String>, ErrorCode> {
    client.send_join(room_name, name, None).await;
    let members = match client.next().await {
        ServerMessage::Joined { members, .. } => members.iter().map(|m| m.to_string()).collect(),
        ServerMessage::Error { code, .. } => return Err(code),
        other => panic!("expected joined or an error, got {other:?}"),
    };
    while !matches!(client.next().await, ServerMessage::History { .. }) {}
    Ok(members)
}

async fn epoch_of(app: &TestApp) -> Epoch {
    let mut client = JsonClient::connect(app.address).await;
    client.send_join("lobby", "epoch-reader", None).await;
    match client.next().await {
        ServerMessage::Joined { epoch, .. } => epoch,
        other => panic!("expected joined, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_nickname_is_unique_in_a_room_across_nodes_and_its_tab_takes_it_back_through_another_node() {
    let Some((database, redis)) = services().await else { return };
    let (node_a, node_b) = (node(&database, &redis).await, node(&database, &redis).await);

    let mut ann = JsonClient::connect_as_tab(node_a.address, "tab-ann").await;
    ann.enter("dev", "ann", None).await;
    let mut impostor = JsonClient::connect(node_b.address).await;
    assert_eq!(try_join(&mut impostor, "dev", "ann").await, Err(ErrorCode::NicknameTaken));
    // Another room is another namespace.
    assert!(try_join(&mut impostor, "ops", "ann").await.is_ok());

    let mut bob = JsonClient::connect(node_b.address).await;
    let (_, _) = bob.enter("dev", "bob", None).await;
    // ann's tab reconnects through node B (the balancer picked it): it takes the name back.
    let mut ann_again = JsonClient::connect_as_tab(node_b.address, "tab-ann").await;
    let members = try_join(&mut ann_again, "dev", "ann").await.expect("taken back");
    assert_eq!(members, ["ann", "bob"], "listed once, across nodes");
    assert_eq!(ann.raw().close_code().await, 1008, "the stale connection on node A is closed");
    // Its late release on node A does not free the name.
    tokio::time::sleep(support::QUIET).await;
    let mut late = JsonClient::connect(node_a.address).await;
    assert_eq!(try_join(&mut late, "dev", "ann").await, Err(ErrorCode::NicknameTaken));
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
        futures_util::future::join_all(clients.iter_mut().map(|client| try_join(client, "dev", "alice"))).await;
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
    let tab = ClientId::parse("ghost-tab").expect("tab");
    let ghost = Peer { node: 999, connection: 1 };
    assert_eq!(dying.claim(&room("dev"), &nick("ghost"), &tab, ghost).await.expect("claim"), Claim::Free);

    let mut early = JsonClient::connect(node_a.address).await;
    assert_eq!(try_join(&mut early, "dev", "ghost").await, Err(ErrorCode::NicknameTaken), "alive: refreshed");
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(try_join(&mut early, "dev", "ghost").await, Err(ErrorCode::NicknameTaken), "the heartbeat kept it");
    drop(dying);

    tokio::time::sleep(ttl + Duration::from_millis(600)).await;
    let mut after = JsonClient::connect(node_a.address).await;
    let members = try_join(&mut after, "dev", "ghost").await.expect("free once expired");
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
    // Node A's members leave: node B's lists follow.
    for client in on_a {
        client.close().await;
    }
    until_listed(&mut watcher, "dev", 1).await;
}
