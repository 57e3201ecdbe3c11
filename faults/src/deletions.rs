//! Deleting messages under faults. An account (`editor`) chats in the first
//! clients' room from random nodes, reconnecting as clients do, and now and
//! then deletes one of its acknowledged messages through a random node's
//! HTTP API, asking again (of another node) until one answers. It is in
//! the room from a second device too (its phone), which comes and goes on
//! random nodes: one name held from two connections, often on two nodes,
//! whose room hears it leave only with the last (both are gone once the
//! run is quiet, so every member list must have lost the name by then). The clients
//! of that room thus get deletions among their messages, through every
//! path a fault sends them down (live, a resume, a gap read from the store),
//! and the general invariants check they got each once, in order, no gap.
//! Here the checker reads the store: every deletion a node confirmed is
//! there once, its message deleted, and nothing is deleted without one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_shared::{ClientId, ClientMessage, MessageText, RoomName, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::checker::Checked;
use crate::client::Phase;
use crate::trespass::{connect, http, join};

/// The account that deletes.
pub const EDITOR: &str = "editor";

/// How many nodes one deletion is asked of, in turn, before it is given up.
const ASKS: usize = 20;

/// What the editor did and was told.
#[derive(Debug, Default)]
pub struct Record {
    /// Deletions a node confirmed: message id → the deletion's id.
    pub confirmed: BTreeMap<u64, u64>,
    /// Deletions no node confirmed in [`ASKS`] tries (faults; not a violation).
    pub unanswered: u32,
    /// Answers that break the rules (a confirmed message not found, two
    /// deletions of one message).
    pub wrong: Vec<String>,
}

type Shared = Arc<Mutex<Record>>;

fn lock(record: &Shared) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers the editor through `node` (before any fault); its session cookie.
pub async fn prepare(node: SocketAddr) -> String {
    let body = serde_json::json!({ "username": EDITOR, "password": "correct horse" }).to_string();
    let (status, text, cookie) =
        http(reqwest::Method::POST, node, "/api/register", Some(body), None).await.expect("register");
    assert_eq!(status, 201, "registering {EDITOR}: {text}");
    cookie.expect("a session cookie")
}

/// Chats in `room` and deletes, and has its phone come and go there,
/// until the run goes quiet; then leaves.
pub async fn run(
    cookie: String,
    room: RoomName,
    nodes: Vec<SocketAddr>,
    seed: u64,
    phase: watch::Receiver<Phase>,
) -> Record {
    let phone = phone(cookie.clone(), room.clone(), nodes.clone(), seed ^ 1, phase.clone());
    let (record, ()) = tokio::join!(chat_and_delete(cookie, room, nodes, seed, phase), phone);
    record
}

/// The editor's phone: in `room` for a few seconds at a time through a
/// random node, reading what comes, until the run goes quiet.
async fn phone(cookie: String, room: RoomName, nodes: Vec<SocketAddr>, seed: u64, mut phase: watch::Receiver<Phase>) {
    let mut rng = StdRng::seed_from_u64(seed);
    while *phase.borrow() == Phase::Chatting {
        let Some(mut socket) = connect(nodes[rng.random_range(0..nodes.len())], Some(&cookie)).await else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        if socket.send(join(room.as_str(), EDITOR, "editor-phone", None)).await.is_err() {
            continue;
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(rng.random_range(1_000..8_000));
        loop {
            tokio::select! {
                frame = socket.next() => if !matches!(frame, Some(Ok(_))) { break },
                () = tokio::time::sleep_until(until) => break,
                _ = phase.changed() => if *phase.borrow() != Phase::Chatting { break },
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), socket.close(None)).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1_500))).await;
    }
}

/// Chats in `room` and deletes, until the run goes quiet; then leaves.
async fn chat_and_delete(
    cookie: String,
    room: RoomName,
    nodes: Vec<SocketAddr>,
    seed: u64,
    mut phase: watch::Receiver<Phase>,
) -> Record {
    let record = Shared::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut said = 0_u64;
    // Messages acknowledged and not yet deleted, by client id → stored id.
    let mut sent: BTreeMap<String, Option<u64>> = BTreeMap::new();
    while *phase.borrow() == Phase::Chatting {
        let Some(mut socket) = connect(nodes[rng.random_range(0..nodes.len())], Some(&cookie)).await else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        if socket.send(join(room.as_str(), EDITOR, "editor-tab", None)).await.is_err() {
            continue;
        }
        // A deadline kept across frames: a sleep started anew per frame would
        // rarely end in a busy room.
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(ServerMessage::Ack { client_id, id, .. }) = ServerMessage::decode(&text) {
                            sent.insert(client_id.to_string(), Some(id));
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                () = tokio::time::sleep_until(next) => {
                    next = tokio::time::Instant::now() + Duration::from_millis(rng.random_range(300..900));
                    let stored: Vec<u64> = sent.values().flatten().copied().collect();
                    if !stored.is_empty() && rng.random_bool(0.4) {
                        let target = stored[rng.random_range(0..stored.len())];
                        sent.retain(|_, id| *id != Some(target));
                        delete(&cookie, &room, target, &nodes, &mut rng, &record).await;
                        continue;
                    }
                    said += 1;
                    let client_id = format!("editor-{seed}-{said}");
                    sent.insert(client_id.clone(), None);
                    let send = ClientMessage::Send {
                        room: room.clone(),
                        client_id: ClientId::parse(client_id).expect("id"),
                        text: MessageText::parse(format!("a line to delete maybe, {said}")).expect("text"),
                    };
                    if socket.send(Message::text(send.encode())).await.is_err() {
                        break;
                    }
                }
                _ = phase.changed() => if *phase.borrow() != Phase::Chatting { break },
            }
        }
        // Gone before the run is checked: its socket is no client's.
        let _ = tokio::time::timeout(Duration::from_secs(3), socket.close(None)).await;
    }
    std::mem::take(&mut *lock(&record))
}

/// Deletes message `target` of `room`, asking random nodes until one answers.
async fn delete(cookie: &str, room: &RoomName, target: u64, nodes: &[SocketAddr], rng: &mut StdRng, record: &Shared) {
    let path = format!("/api/rooms/{room}/messages/{target}");
    for _ in 0..ASKS {
        let node = nodes[rng.random_range(0..nodes.len())];
        match http(reqwest::Method::DELETE, node, &path, None, Some(cookie)).await {
            Some((200, body, _)) => {
                let id = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["id"].as_u64());
                let mut record = lock(record);
                match id {
                    Some(id) => {
                        if let Some(before) = record.confirmed.insert(target, id) {
                            record.wrong.push(format!("message {target} deleted twice: as {before} and {id}"));
                        }
                    }
                    None => record.wrong.push(format!("deleting {target} through {node} answered {body}")),
                }
                return;
            }
            Some((404, body, _)) => {
                lock(record).wrong.push(format!("acknowledged message {target} not found through {node}: {body}"));
                return;
            }
            // Unavailable, unreachable, paused: ask another node.
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
    lock(record).unanswered += 1;
}

/// The invariant: `stored` is the room's rows as (id, deletes, deleted).
pub fn check(record: &Record, stored: &[(u64, Option<u64>, bool)]) -> Checked {
    let mut checked = Checked {
        name: "a confirmed deletion is stored once, its message deleted",
        cases: record.confirmed.len(),
        violations: record.wrong.clone(),
    };
    let deleted: BTreeMap<u64, bool> = stored.iter().map(|(id, _, deleted)| (*id, *deleted)).collect();
    let mut deletions: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (id, deletes, _) in stored {
        if let Some(target) = deletes {
            deletions.entry(*target).or_default().push(*id);
        }
    }
    for (target, id) in &record.confirmed {
        if deletions.get(target).map(Vec::as_slice) != Some(&[*id][..]) {
            checked.violations.push(format!("message {target}: confirmed as {id}, stored {:?}", deletions.get(target)));
        }
    }
    for (target, ids) in &deletions {
        if deleted.get(target) != Some(&true) {
            checked.violations.push(format!("deletions {ids:?} of message {target}, which is not deleted"));
        }
    }
    for (id, is_deleted) in &deleted {
        if *is_deleted && !deletions.contains_key(id) {
            checked.violations.push(format!("message {id} is deleted but no deletion names it"));
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(confirmed: &[(u64, u64)]) -> Record {
        Record { confirmed: confirmed.iter().copied().collect(), ..Record::default() }
    }

    #[test]
    fn a_stored_deletion_of_a_deleted_message_passes_and_every_other_shape_is_caught() {
        let good = [(3, None, true), (7, Some(3), false)];
        assert!(check(&record(&[(3, 7)]), &good).violations.is_empty());
        // The confirmed deletion is missing, stored twice, or its message is not deleted.
        assert_eq!(check(&record(&[(3, 7)]), &[]).violations.len(), 1);
        assert_eq!(
            check(&record(&[(3, 7)]), &[(3, None, true), (7, Some(3), false), (9, Some(3), false)]).violations.len(),
            1
        );
        assert_eq!(check(&record(&[(3, 7)]), &[(7, Some(3), false)]).violations.len(), 1);
        // A message deleted without a deletion, even one nobody confirmed.
        assert_eq!(check(&record(&[]), &[(5, None, true)]).violations.len(), 1);
    }
}
