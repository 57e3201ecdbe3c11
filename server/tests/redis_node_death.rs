//! Two real `chat-server` processes on one PostgreSQL and Redis; one is
//! killed with SIGKILL in the middle of a burst. Nothing it acknowledged is
//! lost, the survivor's clients see every stored message in id order with no
//! gap, and the burst's sender resumes through the survivor. Its members are
//! announced as gone to every survivor's clients, once, within 15 s, except
//! those whose tabs came back through a survivor meanwhile.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chat_shared::ChatMessage;
use support::JsonClient;
use support::process::{ServerProcess, burst_then_kill};
use support::redis::{presence_events, services};

async fn start_node(database: &str, redis: &str) -> ServerProcess {
    ServerProcess::start(["--database", database, "--redis", redis]).await
}

/// Waits until the node's bus is connected.
async fn ready(node: &ServerProcess) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = reqwest::get(format!("http://{}/readyz", node.address)).await.map(|r| r.status().as_u16());
        if status.is_ok_and(|s| s == 200) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_node_killed_mid_burst_loses_nothing_acknowledged_and_the_survivor_carries_on() {
    let Some((database, redis)) = services().await else { return };
    let mut doomed = start_node(&database, &redis.url()).await;
    let survivor = start_node(&database, &redis.url()).await;
    ready(&doomed).await;
    ready(&survivor).await;

    let mut bob = JsonClient::connect(survivor.address).await;
    bob.enter("lobby", "bob", None).await;
    let mut alice = JsonClient::connect_as_tab(doomed.address, "tab-alice").await;
    alice.enter("lobby", "alice", None).await;

    let burst = burst_then_kill(&mut alice, &mut doomed, 2_000, 300).await;
    let (texts, acked, last_acked) = (&burst.texts, &burst.acked, burst.last_acked());

    // The survivor carries on: a message sent there reaches bob after every
    // message the dead node stored (those it never published are read from
    // PostgreSQL once this one shows the gap).
    let mut carol = JsonClient::connect(survivor.address).await;
    carol.enter("lobby", "carol", None).await;
    let after = carol.say("after the crash").await;
    let after_id = carol.next_ack(&after).await;
    assert!(after_id > last_acked);
    eprintln!("acked {} (last {last_acked}); stored before the crash: {}", acked.len(), after_id - 1);
    let mut heard: Vec<ChatMessage> = Vec::new();
    while heard.last().is_none_or(|m| m.id != after_id) {
        let next = tokio::time::timeout(Duration::from_secs(10), bob.next_chat()).await;
        heard.push(next.unwrap_or_else(|_| panic!("bob stalled after id {:?}", heard.last().map(|m| m.id))));
    }
    let ids: Vec<u64> = heard.iter().map(|m| m.id).collect();
    assert_eq!(ids, (1..=after_id).collect::<Vec<_>>(), "every id once, in order, no gap");
    let by_id: HashMap<u64, &str> = heard.iter().map(|m| (m.id, m.text.as_str())).collect();
    for (client_id, id) in acked {
        assert_eq!(by_id.get(id).copied(), Some(texts[client_id].as_str()), "acknowledged {client_id} as {id}, lost");
    }

    // Alice's tab reconnects through the survivor, takes her name back, and
    // resumes after the last message she had: exactly what she missed.
    let mut alice_again = JsonClient::connect_as_tab(survivor.address, "tab-alice").await;
    let (missed, _, (resumed, has_newer)) = alice_again.enter_paged("lobby", "alice", Some(last_acked)).await;
    assert!(resumed);
    let missed_ids: Vec<u64> = missed.iter().map(|m| m.id).collect();
    let first_page = (last_acked + 1)..=(last_acked + missed_ids.len() as u64);
    assert_eq!(missed_ids, first_page.collect::<Vec<_>>(), "from the next id on, no gap");
    assert_eq!(missed_ids.last() == Some(&after_id), !has_newer, "to the end, or says there is more");
}

#[actix_web::test]
async fn the_members_of_a_killed_node_are_announced_as_gone_once_within_15_seconds() {
    let Some((database, redis)) = services().await else { return };
    let mut doomed = start_node(&database, &redis.url()).await;
    let survivors = [start_node(&database, &redis.url()).await, start_node(&database, &redis.url()).await];
    for node in [&doomed, &survivors[0], &survivors[1]] {
        ready(node).await;
    }
    let mut bob = JsonClient::connect(survivors[0].address).await;
    bob.enter("dev", "bob", None).await;
    let mut carol = JsonClient::connect(survivors[1].address).await;
    carol.enter("dev", "carol", None).await;
    let mut doomed_clients = Vec::new();
    for name in ["dave", "erin"] {
        let mut client = JsonClient::connect_as_tab(doomed.address, &format!("tab-{name}")).await;
        client.enter("dev", name, None).await;
        doomed_clients.push(client);
    }
    let before = presence_events(&mut bob, Duration::from_millis(500)).await;
    assert_eq!(before, ["carol joined", "dave joined", "erin joined"]);
    presence_events(&mut carol, Duration::from_millis(10)).await;

    doomed.child.start_kill().expect("SIGKILL sent");
    let killed_at = tokio::time::Instant::now();
    let _ = doomed.child.wait().await;
    // Erin's page reconnects through a survivor at once and takes her name back.
    let mut erin = JsonClient::connect_as_tab(survivors[0].address, "tab-erin").await;
    erin.enter("dev", "erin", None).await;

    let mut heard_by_bob = Vec::new();
    while !heard_by_bob.iter().any(|e| e == "dave left") {
        assert!(killed_at.elapsed() < Duration::from_secs(15), "dave never left; bob heard {heard_by_bob:?}");
        heard_by_bob.extend(presence_events(&mut bob, Duration::from_millis(100)).await);
    }
    let announced_after = killed_at.elapsed();
    eprintln!("the dead node's members were announced as gone {announced_after:?} after the kill");
    heard_by_bob.extend(presence_events(&mut bob, Duration::from_secs(3)).await);
    let heard_by_carol = presence_events(&mut carol, Duration::from_millis(100)).await;
    assert_eq!(heard_by_bob, ["dave left"], "once, and erin never left");
    assert_eq!(heard_by_carol, ["dave left"]);
    drop(doomed_clients);
}
