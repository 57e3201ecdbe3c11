//! Deleting messages: the store's rule (a deletion is an entry of the room's
//! log with its own id; a message is deleted once; only messages can be),
//! on SQLite and on PostgreSQL; then through the HTTP API and real sockets:
//! authors delete their own, moderators anyone's (audited, its reports
//! resolved), members online hear it at once, a client that was away hears
//! it on resume, a newcomer's history shows the message deleted, and nobody
//! else can delete anything, from any path; finally across two nodes.

mod support;

use chat_server::store::sqlite::SqliteStore;
use chat_server::store::{Appended, HistoryStore, NewMessage, Page};
use chat_shared::api::{ApiErrorCode, AuditLog, MessageDeleted};
use chat_shared::{ChatMessage, DELETED_TEXT, MessageText, Nickname, RoomName, ServerMessage};
use reqwest::Method;
use serde_json::json;
use support::accounts::{Answer, api, registered};
use support::{JsonClient, TestApp};

fn said(text: &str) -> NewMessage {
    NewMessage {
        room: RoomName::lobby(),
        ts: 1,
        nick: Nickname::parse("alice").expect("nick"),
        text: MessageText::parse(text).expect("text"),
        client_id: None,
        deletes: None,
    }
}

fn deletion(target: u64) -> NewMessage {
    NewMessage::deletion(RoomName::lobby(), target, Nickname::parse("mod").expect("nick"), 2)
}

/// What the same calls do on either store.
async fn deleting_follows_the_rule(store: &dyn HistoryStore) {
    for text in ["one", "two", "three"] {
        store.append(said(text)).await.expect("stored");
    }
    let first = store.append(deletion(2)).await.expect("deletion stored");
    let Appended::New(change) = &first else { panic!("a new entry: {first:?}") };
    assert_eq!((change.id, change.deletes, change.nick.as_str()), (4, Some(2), "mod"));
    // Again, alone and twice in one batch: the first deletion, nothing new.
    assert_eq!(store.append(deletion(2)).await.expect("again"), Appended::Duplicate(change.clone()));
    let batch = store.append_batch(vec![deletion(1), deletion(1), said("four")]).await.expect("batch");
    assert!(matches!(&batch[0], Appended::New(m) if m.id == 5 && m.deletes == Some(1)), "{batch:?}");
    assert!(matches!(&batch[1], Appended::Duplicate(m) if m.id == 5), "{batch:?}");
    assert!(matches!(&batch[2], Appended::New(m) if m.id == 6), "{batch:?}");
    // No such message, and a change is no message: nothing stored, no id spent.
    assert_eq!(store.append(deletion(99)).await.expect("no target"), Appended::NoTarget);
    assert_eq!(store.append(deletion(4)).await.expect("a change"), Appended::NoTarget);
    assert_eq!(store.latest_id(&RoomName::lobby()).await.expect("latest"), Some(6));

    let log = store.page(&RoomName::lobby(), Page::Latest { limit: 50 }).await.expect("page");
    assert_eq!(log.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6], "one order, no gap");
    let shown = |m: &ChatMessage| (m.id, m.text.to_string(), m.deleted, m.deletes);
    assert_eq!(
        log.iter().map(shown).collect::<Vec<_>>(),
        [
            (1, DELETED_TEXT.to_owned(), true, None),
            (2, DELETED_TEXT.to_owned(), true, None),
            (3, "three".to_owned(), false, None),
            (4, DELETED_TEXT.to_owned(), false, Some(2)),
            (5, DELETED_TEXT.to_owned(), false, Some(1)),
            (6, "four".to_owned(), false, None),
        ],
        "the deleted texts are gone from the store"
    );
}

#[tokio::test]
async fn the_sqlite_store_deletes_a_message_once_in_the_rooms_order() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("chat.sqlite3")).await.expect("opens");
    deleting_follows_the_rule(&store).await;
    store.close().await;
}

#[tokio::test]
async fn the_postgres_store_deletes_a_message_once_in_the_rooms_order() {
    let Some(url) = support::postgres::fresh_database().await else { return };
    let store = chat_server::store::postgres::PostgresStore::open(&url).await.expect("opens");
    deleting_follows_the_rule(&store).await;
    store.close().await;
}

async fn delete(address: std::net::SocketAddr, cookie: &str, room: &str, id: u64) -> Answer {
    api(Method::DELETE, address, &format!("/api/rooms/{room}/messages/{id}"), None, cookie).await
}

fn deleted_id(answer: &Answer) -> u64 {
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str::<MessageDeleted>(&answer.body).expect("answer").id
}

/// The next entry `client` hears that is a deletion.
async fn next_deletion(client: &mut JsonClient) -> ChatMessage {
    let heard = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            if let ServerMessage::Message(message) = client.next().await
                && message.deletes.is_some()
            {
                return message;
            }
        }
    });
    heard.await.expect("the deletion arrives within 2 s")
}

#[actix_web::test]
async fn authors_and_moderators_delete_and_everyone_hears_it_however_they_come_back() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (
        registered(app.address, "alice").await,
        registered(app.address, "bob").await,
        registered(app.address, "carol").await,
    );
    assert_eq!(api(Method::POST, app.address, "/api/rooms", Some(json!({ "name": "town" })), &alice).await.status, 201);
    let mut alice_tab = JsonClient::connect_with_cookie(app.address, Some(&alice)).await;
    alice_tab.enter("town", "alice", None).await;
    let mut bob_tab = JsonClient::connect_with_cookie(app.address, Some(&bob)).await;
    bob_tab.enter("town", "bob", None).await;
    let mut guest = JsonClient::connect(app.address).await;
    let (before, _) = guest.enter("town", "gus", None).await;
    assert!(before.is_empty());

    let oops = bob_tab.say("oops, my password is hunter2").await;
    let oops = bob_tab.next_ack(&oops).await;
    let rude = guest.say("something rude").await;
    let rude = guest.next_ack(&rude).await;
    // Gus goes away having seen both.
    guest.close().await;

    // Nobody but the author or a moderator; nobody without an account; nothing that is not a message.
    let by_carol = delete(app.address, &carol, "town", oops).await;
    assert_eq!((by_carol.status, by_carol.error()), (403, ApiErrorCode::Forbidden));
    let path = format!("/api/rooms/town/messages/{oops}");
    let anonymous = support::accounts::request(Method::DELETE, app.address, &path, None, None, None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(delete(app.address, &bob, "town", 999).await.status, 404);
    assert_eq!(delete(app.address, &bob, "nowhere", 1).await.status, 404);

    // The author deletes it: both members online hear it at once, in the room's order.
    let gone = deleted_id(&delete(app.address, &bob, "town", oops).await);
    assert!(gone > rude);
    for tab in [&mut alice_tab, &mut bob_tab] {
        let change = next_deletion(tab).await;
        assert_eq!((change.id, change.deletes), (gone, Some(oops)));
    }
    // Deleting again is answered with the same deletion; a deletion cannot be deleted.
    assert_eq!(deleted_id(&delete(app.address, &bob, "town", oops).await), gone);
    assert_eq!(delete(app.address, &alice, "town", gone).await.status, 404);

    // A member reports the guest's line; the owner deletes it: audited, the report resolved.
    let report = json!({ "room": "town", "id": rude, "reason": "rude" });
    assert_eq!(api(Method::POST, app.address, "/api/reports", Some(report), &carol).await.status, 201);
    let second = deleted_id(&delete(app.address, &alice, "town", rude).await);
    let log: AuditLog =
        serde_json::from_str(&api(Method::GET, app.address, "/api/rooms/town/audit", None, &alice).await.body)
            .expect("audit");
    assert_eq!(
        (log.entries[0].action.as_str(), log.entries[0].target.as_str(), log.entries[0].detail.as_str()),
        ("delete_message", "gus", format!("message {rude}").as_str())
    );
    let queue = api(Method::GET, app.address, "/api/rooms/town/reports", None, &alice).await;
    assert!(serde_json::from_str::<chat_shared::api::Reports>(&queue.body).expect("queue").reports.is_empty());
    let again = json!({ "room": "town", "id": rude, "reason": "still rude" });
    assert_eq!(api(Method::POST, app.address, "/api/reports", Some(again), &carol).await.status, 404, "gone");

    // Gus comes back after the last message he saw: the deletions come with what he missed.
    let mut back = JsonClient::connect(app.address).await;
    let (missed, resumed) = back.enter("town", "gus", Some(oops)).await;
    assert!(resumed);
    let changes: Vec<(u64, Option<u64>)> = missed.iter().map(|m| (m.id, m.deletes)).collect();
    assert_eq!(changes, [(rude, None), (gone, Some(oops)), (second, Some(rude))]);
    assert_eq!(missed[0].text.as_str(), DELETED_TEXT, "what he missed comes deleted already");
    // A newcomer sees both messages deleted, their texts nowhere.
    let mut newcomer = JsonClient::connect(app.address).await;
    let (history, _) = newcomer.enter("town", "nina", None).await;
    let deleted: Vec<u64> = history.iter().filter(|m| m.deleted).map(|m| m.id).collect();
    assert_eq!(deleted, [oops, rude]);
    assert!(history.iter().all(|m| !m.text.as_str().contains("hunter2") && !m.text.as_str().contains("rude")));
}

#[actix_web::test]
async fn a_private_rooms_stranger_cannot_delete_or_learn_of_its_messages() {
    let app = TestApp::spawn().await;
    let (alice, mallory) = (registered(app.address, "alice").await, registered(app.address, "mallory").await);
    let created = api(Method::POST, app.address, "/api/rooms", Some(json!({ "name": "ops", "private": true })), &alice);
    assert_eq!(created.await.status, 201);
    let mut alice_tab = JsonClient::connect_with_cookie(app.address, Some(&alice)).await;
    alice_tab.enter("ops", "alice", None).await;
    let plan = alice_tab.say("the plan").await;
    let plan = alice_tab.next_ack(&plan).await;
    // The same answer as for a room that does not exist, whether the message does or not.
    let (exists, absent) =
        (delete(app.address, &mallory, "ops", plan).await, delete(app.address, &mallory, "ops", 99).await);
    assert_eq!((exists.status, exists.error()), (404, ApiErrorCode::NotFound));
    assert_eq!((exists.status, exists.body.replace("ops", "")), (absent.status, absent.body.replace("ops", "")));
    alice_tab.close().await;
    let mut again = JsonClient::connect_with_cookie(app.address, Some(&alice)).await;
    let (history, _) = again.enter("ops", "alice", None).await;
    assert_eq!(history.iter().map(|m| (m.text.as_str(), m.deleted)).collect::<Vec<_>>(), [("the plan", false)]);
}

#[actix_web::test]
async fn a_deletion_on_one_node_reaches_members_on_another_and_a_resume_there() {
    let Some((database, redis)) = support::redis::services().await else { return };
    let (a, b) = (support::redis::node(&database, &redis).await, support::redis::node(&database, &redis).await);
    let alice = registered(a.address, "alice").await;
    let mut on_b = JsonClient::connect(b.address).await;
    on_b.enter("lobby", "bea", None).await;
    let mut alice_on_a = JsonClient::connect_with_cookie(a.address, Some(&alice)).await;
    alice_on_a.enter("lobby", "alice", None).await;
    let said = alice_on_a.say("typo").await;
    let id = alice_on_a.next_ack(&said).await;
    assert_eq!(on_b.next_chat().await.id, id);
    let mut away = JsonClient::connect(b.address).await;
    away.enter("lobby", "otto", None).await;
    away.close().await;

    // Deleted through node B's API: node A's member hears it, and B's.
    let gone = deleted_id(&delete(b.address, &alice, "lobby", id).await);
    assert_eq!(next_deletion(&mut alice_on_a).await.id, gone);
    assert_eq!(next_deletion(&mut on_b).await.id, gone);
    // Otto resumes on node A after the message: the deletion comes with what he missed.
    let mut back = JsonClient::connect(a.address).await;
    let (missed, resumed) = back.enter("lobby", "otto", Some(id)).await;
    assert!(resumed);
    assert_eq!(missed.iter().map(|m| (m.id, m.deletes)).collect::<Vec<_>>(), [(gone, Some(id))]);
}
