//! The PostgreSQL store (`--database postgres://...`), on the private server
//! `./scripts/test` starts: the same history as SQLite, and the guarantees
//! that matter once several nodes share it: ids assigned atomically by the
//! database (once each, no gap, even when two nodes write one room at the
//! same moment), a resend stored once whichever node it reaches, and a
//! client resuming on another node getting exactly what it missed.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chat_server::store::location::StoreLocation;
use chat_server::store::postgres::PostgresStore;
use chat_server::store::{Appended, HistoryStore, NewMessage, Page};
use chat_shared::{ChatMessage, ClientId, MessageText, Nickname, RoomName};
use sqlx::Connection;
use support::postgres::fresh_database;
use support::{JsonClient, TestApp};

fn said(room: &str, text: &str, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        room: RoomName::parse(room).expect("room"),
        ts: 1_700_000_000_000,
        nick: Nickname::parse("alice").expect("nick"),
        text: MessageText::parse(text).expect("text"),
        client_id: client_id.map(|c| ClientId::parse(c).expect("client id")),
        deletes: None,
    }
}

fn stored(appended: &Appended) -> &ChatMessage {
    match appended {
        Appended::New(message) | Appended::Duplicate(message) => message,
        Appended::NoTarget => panic!("nothing stored"),
    }
}

fn texts(messages: &[ChatMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

#[tokio::test]
async fn ids_pages_and_resends_work_as_on_sqlite() {
    let Some(url) = fresh_database().await else { return };
    let store = PostgresStore::open(&url).await.expect("opens and migrates");
    let lobby = RoomName::lobby();
    for n in 1..=5 {
        let appended = store.append(said("lobby", &format!("l{n}"), Some(&format!("c{n}")))).await.expect("append");
        assert!(matches!(&appended, Appended::New(m) if m.id == n), "{appended:?}");
    }
    assert_eq!(stored(&store.append(said("dev", "d1", None)).await.expect("append")).id, 1, "ids count per room");

    assert_eq!(texts(&store.page(&lobby, Page::Latest { limit: 2 }).await.expect("page")), ["l4", "l5"]);
    assert_eq!(texts(&store.page(&lobby, Page::Before { id: 4, limit: 2 }).await.expect("page")), ["l2", "l3"]);
    assert_eq!(texts(&store.page(&lobby, Page::After { id: 1, limit: 2 }).await.expect("page")), ["l2", "l3"]);
    assert_eq!(store.latest_id(&lobby).await.expect("latest"), Some(5));
    assert_eq!(store.latest_id(&RoomName::parse("empty").expect("room")).await.expect("latest"), None);
    let rooms = [lobby.clone(), RoomName::parse("dev").expect("room"), RoomName::parse("empty").expect("room")];
    let newest = store.latest_ids(&rooms).await.expect("latest ids");
    assert_eq!(newest.len(), 2, "rooms without messages are left out: {newest:?}");
    assert_eq!((newest[&rooms[0]], newest[&rooms[1]]), (5, 1));
    assert!(store.latest_ids(&[]).await.expect("none asked").is_empty());
    let from = [(rooms[0].clone(), 2), (rooms[1].clone(), 0), (rooms[2].clone(), 0)];
    let read = store.pages_after(&from, 2).await.expect("pages after");
    let mut read: Vec<(String, u64)> = read.iter().map(|m| (m.room.to_string(), m.id)).collect();
    read.sort();
    assert_eq!(read, [("dev".into(), 1), ("lobby".into(), 3), ("lobby".into(), 4)], "up to 2 per room, after each id");

    // A resend, alone or twice within one batch, comes back as the stored copy.
    let batch =
        vec![said("lobby", "again", Some("c2")), said("lobby", "l6", Some("c6")), said("lobby", "l6", Some("c6"))];
    let appended = store.append_batch(batch).await.expect("batch");
    assert!(matches!(&appended[0], Appended::Duplicate(m) if m.id == 2 && m.text.as_str() == "l2"));
    assert!(matches!(&appended[1], Appended::New(m) if m.id == 6));
    assert!(matches!(&appended[2], Appended::Duplicate(m) if m.id == 6));
    assert_eq!(store.latest_id(&lobby).await.expect("latest"), Some(6), "nothing stored twice, no id skipped");

    // Reopening (another node starting) keeps the history and its epoch.
    let again = PostgresStore::open(&url).await.expect("reopens");
    assert_eq!(again.epoch(), store.epoch());
    assert_eq!(again.latest_id(&lobby).await.expect("latest"), Some(6));
    store.close().await;
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_writing_the_same_rooms_at_once_get_every_id_once_with_no_gap() {
    let Some(url) = fresh_database().await else { return };
    let nodes = [
        Arc::new(PostgresStore::open(&url).await.expect("node a")),
        Arc::new(PostgresStore::open(&url).await.expect("node b")),
    ];
    // Eight writers, four per node, each committing batches that span both
    // rooms in opposite orders (a deadlock, were rooms locked as they come),
    // and all of them resending the same ten client ids.
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let store = nodes[writer % 2].clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for batch in 0..20 {
                    let (first, second) = if writer % 2 == 0 { ("dev", "ops") } else { ("ops", "dev") };
                    let messages = vec![
                        said(first, &format!("w{writer}b{batch}a"), Some(&format!("w{writer}-{batch}-a"))),
                        said(second, &format!("w{writer}b{batch}b"), Some(&format!("w{writer}-{batch}-b"))),
                        said("dev", &format!("shared {}", batch % 10), Some(&format!("shared-{}", batch % 10))),
                    ];
                    results.extend(store.append_batch(messages).await.expect("batch commits"));
                }
                results
            })
        })
        .collect();
    let mut results = Vec::new();
    for writer in writers {
        results.extend(writer.await.expect("writer"));
    }

    for room in ["dev", "ops"] {
        let room = RoomName::parse(room).expect("room");
        let log = nodes[0].page(&room, Page::After { id: 0, limit: 10_000 }).await.expect("whole log");
        let ids: Vec<u64> = log.iter().map(|m| m.id).collect();
        assert_eq!(ids, (1..=log.len() as u64).collect::<Vec<_>>(), "#{room}: every id once, no gap");
        let new = results.iter().filter(|a| matches!(a, Appended::New(m) if m.room == room)).count();
        assert_eq!(log.len(), new, "#{room}: every new message stored, nothing else");
    }
    // Each shared client id: stored once, and every resend (on either node) got that copy.
    let mut shared: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for appended in &results {
        let message = stored(appended);
        if let Some(client_id) = message.client_id.as_ref().filter(|c| c.as_str().starts_with("shared-")) {
            shared.entry(client_id.to_string()).or_default().push(message.id);
        }
    }
    assert_eq!(shared.len(), 10);
    for (client_id, ids) in &shared {
        assert_eq!(ids.len(), 16, "{client_id}: sent twice by each of the eight writers");
        assert!(ids.iter().all(|id| *id == ids[0]), "{client_id} stored more than once: {ids:?}");
    }
    let new_shared = results.iter().filter(|a| matches!(a, Appended::New(m) if m.client_id.as_ref().is_some_and(|c| c.as_str().starts_with("shared-")))).count();
    assert_eq!(new_shared, 10, "one new copy per shared client id");
}

#[actix_web::test]
async fn a_client_resumes_on_another_node_and_a_resend_there_is_stored_once() {
    let Some(url) = fresh_database().await else { return };
    let on_postgres = |config: &mut chat_server::config::Config| config.database = StoreLocation::Postgres(url.clone());
    let node_a = TestApp::spawn_configured(on_postgres).await;
    let node_b = TestApp::spawn_configured(on_postgres).await;

    let mut alice = JsonClient::join(node_a.address, "alice").await;
    let mut ids = HashMap::new();
    for text in ["one", "two", "three"] {
        let client_id = alice.say(text).await;
        let id = alice.next_ack(&client_id).await;
        ids.insert(text, (client_id, id));
    }
    assert_eq!(ids["three"].1, 3);

    // Bob saw "one" on node A, lost his connection, and comes back through node B.
    let mut bob = JsonClient::connect(node_b.address).await;
    let (missed, _) = bob.enter("lobby", "bob", Some(ids["one"].1)).await;
    assert_eq!(texts(&missed), ["two", "three"], "exactly what he missed, from the shared history");

    // Alice's connection drops before her ack of "three" arrives; her tab resends it through node B.
    let mut alice_again = JsonClient::connect(node_b.address).await;
    alice_again.enter("lobby", "alice2", None).await;
    let (resent_id, stored_id) = &ids["three"];
    alice_again.say_with_id("three", resent_id).await;
    assert_eq!(alice_again.next_ack(resent_id).await, *stored_id, "acked as the copy node A stored");
    let (latest, _) = JsonClient::connect(node_b.address).await.enter("lobby", "carol", None).await;
    assert_eq!(texts(&latest), ["one", "two", "three"], "stored once");
    // And node B's own messages continue the room's ids.
    let next = alice_again.say("four").await;
    assert_eq!(alice_again.next_ack(&next).await, 4);
    // Bob is on node B too: he hears it live (across nodes, that takes the bus).
    let message = bob.next_chat().await;
    assert_eq!((message.id, message.text.as_str()), (4, "four"));
}

#[tokio::test]
async fn a_read_stuck_behind_a_lock_fails_in_bounded_time_instead_of_hanging() {
    let Some(url) = fresh_database().await else { return };
    let store = PostgresStore::open(&url).await.expect("opens");
    store.append(said("dev", "hello", None)).await.expect("append");
    // Someone (a migration by hand, a backup tool) holds the table.
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connects");
    sqlx::query("BEGIN").execute(&mut blocker).await.expect("begin");
    sqlx::query("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE").execute(&mut blocker).await.expect("lock");
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        store.page(&RoomName::parse("dev").expect("room"), Page::Latest { limit: 10 }),
    )
    .await
    .expect("the read ends within 20 s");
    assert!(read.is_err(), "cancelled by the statement timeout: {read:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(9), "it did wait for the lock a while");
    sqlx::query("ROLLBACK").execute(&mut blocker).await.expect("rollback");
    // The store goes on.
    assert_eq!(
        store.page(&RoomName::parse("dev").expect("room"), Page::Latest { limit: 10 }).await.expect("reads").len(),
        1
    );
}
