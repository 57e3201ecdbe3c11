//! The one connection that writes to the SQLite file, on a thread of its own.
//!
//! sqlx runs each statement as a round trip to its worker thread; a batch
//! (begin, look up resends, read the next id, insert, commit) cost about ten
//! thread hops. Here a batch is one hop in and one out: the thread owns a
//! plain `rusqlite` connection, keeps its statements prepared, and commits
//! every message of a batch in one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use chat_shared::{ChatMessage, ClientId, RoomName};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::rows::{StoredRow, corrupt, to_i64};
use super::sqlite::Durability;
use super::{Appended, NewMessage, StoreError};

/// A resend's first copy, found through the `(room, client_id)` index: the
/// lookup must be a search of that index, never a scan of the room (a room
/// of 100,000 messages made every batch read all of them).
pub(super) const FIND_RESEND: &str = "SELECT id, ts, nick, text, client_id, deletes, deleted FROM messages \
                                      INDEXED BY messages_room_client_id WHERE room = ?1 AND client_id = ?2";
/// A message's deletion, if it was deleted before.
const FIND_DELETION: &str = "SELECT id, ts, nick, text, client_id, deletes, deleted FROM messages \
                             INDEXED BY messages_room_deletes WHERE room = ?1 AND deletes = ?2";
/// Wipes the message a deletion deletes (never a change: those are not messages).
const WIPE: &str = "UPDATE messages SET text = ?3, deleted = 1 WHERE room = ?1 AND id = ?2 AND deletes IS NULL";
const LATEST_ID: &str = "SELECT MAX(id) FROM messages WHERE room = ?1";
const INSERT: &str =
    "INSERT INTO messages (room, id, ts, nick, text, client_id, deletes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// A batch to commit and where its outcome goes.
struct Job {
    messages: Vec<NewMessage>,
    done: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
}

/// The async side's handle on the writer thread.
pub(super) struct WriterThread {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WriterThread {
    /// Opens the writing connection to the (already migrated) database at
    /// `path` and starts its thread.
    pub(super) fn start(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(StoreError::database)?;
        connection.busy_timeout(Duration::from_secs(5)).map_err(StoreError::database)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        connection
            .execute_batch(&format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};"))
            .map_err(StoreError::database)?;
        let (jobs, incoming) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut connection = connection;
                // Ends once every handle is gone and the last batch is committed.
                while let Ok(Job { messages, done }) = incoming.recv() {
                    let _ = done.send(append(&mut connection, messages));
                }
            })
            .map_err(StoreError::database)?;
        Ok(Self { jobs: Mutex::new(Some(jobs)), thread: Mutex::new(Some(thread)) })
    }

    /// Commits `messages` as one transaction, in order.
    pub(super) async fn append(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        let (done, outcome) = oneshot::channel();
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.as_ref().is_some_and(|jobs| jobs.send(Job { messages, done }).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Err(StoreError::Closed);
        }
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    /// Lets the thread finish what it was given, then waits for it.
    pub(super) async fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// One transaction: each message is looked up by its client id (a resend
/// comes back as the stored copy) or inserted with its room's next id.
fn append(connection: &mut Connection, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    // IMMEDIATE takes the write lock up front, so the transaction cannot fail
    // half-way on a lock another process took meanwhile.
    let transaction =
        connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::database)?;
    let mut results = Vec::with_capacity(messages.len());
    {
        let mut find = transaction.prepare_cached(FIND_RESEND).map_err(StoreError::database)?;
        let mut latest = transaction.prepare_cached(LATEST_ID).map_err(StoreError::database)?;
        let mut insert = transaction.prepare_cached(INSERT).map_err(StoreError::database)?;
        let mut next_ids: HashMap<RoomName, u64> = HashMap::new();
        // Resends within this batch, which the index cannot see yet.
        let mut in_batch: HashMap<(RoomName, ClientId), ChatMessage> = HashMap::new();
        let mut find_deletion = transaction.prepare_cached(FIND_DELETION).map_err(StoreError::database)?;
        let mut wipe = transaction.prepare_cached(WIPE).map_err(StoreError::database)?;
        // Deletions within this batch, by (room, message deleted).
        let mut deleted_in_batch: HashMap<(RoomName, u64), ChatMessage> = HashMap::new();
        for message in messages {
            let NewMessage { room, ts, nick, text, client_id, deletes } = message;
            if let Some(target) = deletes {
                let key = (room.clone(), target);
                if let Some(first) = deleted_in_batch.get(&key) {
                    results.push(Appended::Duplicate(first.clone()));
                    continue;
                }
                let first = find_deletion
                    .query_row(params![room.as_str(), to_i64(target)], |row| found_row(&room, row))
                    .optional()
                    .map_err(StoreError::database)?;
                if let Some(first) = first {
                    results.push(Appended::Duplicate(first.into_message()?));
                    continue;
                }
                let wiped = wipe
                    .execute(params![room.as_str(), to_i64(target), text.as_str()])
                    .map_err(StoreError::database)?;
                if wiped == 0 {
                    results.push(Appended::NoTarget);
                    continue;
                }
            }
            if let Some(client_id) = &client_id {
                let key = (room.clone(), client_id.clone());
                if let Some(first) = in_batch.get(&key) {
                    results.push(Appended::Duplicate(first.clone()));
                    continue;
                }
                let stored = find
                    .query_row(params![room.as_str(), client_id.as_str()], |row| found_row(&room, row))
                    .optional()
                    .map_err(StoreError::database)?;
                if let Some(stored) = stored {
                    let first = stored.into_message()?;
                    in_batch.insert(key, first.clone());
                    results.push(Appended::Duplicate(first));
                    continue;
                }
            }
            let id = match next_ids.get(&room) {
                Some(next) => *next,
                None => {
                    let max: Option<i64> =
                        latest.query_row(params![room.as_str()], |row| row.get(0)).map_err(StoreError::database)?;
                    u64::try_from(max.unwrap_or(0)).map_err(corrupt)? + 1
                }
            };
            next_ids.insert(room.clone(), id + 1);
            insert
                .execute(params![
                    room.as_str(),
                    to_i64(id),
                    to_i64(ts),
                    nick.as_str(),
                    text.as_str(),
                    client_id.as_ref().map(ClientId::as_str),
                    deletes.map(to_i64)
                ])
                .map_err(StoreError::database)?;
            let stored = ChatMessage { room, id, ts, nick, text, client_id, deletes, deleted: false };
            if let Some(client_id) = &stored.client_id {
                in_batch.insert((stored.room.clone(), client_id.clone()), stored.clone());
            }
            if let Some(target) = deletes {
                deleted_in_batch.insert((stored.room.clone(), target), stored.clone());
            }
            results.push(Appended::New(stored));
        }
    }
    transaction.commit().map_err(StoreError::database)?;
    Ok(results)
}

/// A row of `room` found by [`FIND_RESEND`] or [`FIND_DELETION`] (the same columns).
fn found_row(room: &RoomName, row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        room: room.to_string(),
        id: row.get(0)?,
        ts: row.get(1)?,
        nick: row.get(2)?,
        text: row.get(3)?,
        client_id: row.get(4)?,
        deletes: row.get(5)?,
        deleted: row.get(6)?,
    })
}

/// The query plan of `sql` as SQLite explains it, one step per line (for tests).
#[cfg(test)]
pub(super) fn query_plan(path: &Path, sql: &str) -> String {
    let connection = Connection::open(path).expect("opens");
    let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explains");
    // The plan does not depend on the values; every parameter is bound to a string.
    let values: Vec<String> = (0..statement.parameter_count()).map(|n| format!("value{n}")).collect();
    let steps = statement.query_map(rusqlite::params_from_iter(values), |row| row.get::<_, String>(3)).expect("plan");
    steps.map(|step| step.expect("step")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HistoryStore;
    use crate::store::sqlite::SqliteStore;
    use chat_shared::{MessageText, Nickname};
    use rusqlite::StatementStatus;

    fn new(n: usize, client_id: &str) -> NewMessage {
        NewMessage {
            room: RoomName::lobby(),
            ts: 1,
            nick: Nickname::parse("alice").expect("nick"),
            text: MessageText::parse(format!("m{n}")).expect("text"),
            client_id: Some(ClientId::parse(client_id).expect("client id")),
            deletes: None,
        }
    }

    /// SQLite's own count of the steps the resend lookup takes for 100
    /// client ids that are not stored (the costliest case: nothing to stop
    /// at), and of its full-scan steps.
    fn lookup_work(connection: &Connection) -> (i32, i32) {
        let mut find = connection.prepare(FIND_RESEND).expect("prepares");
        for n in 0..100 {
            let found = find
                .query_row(params!["lobby", format!("absent{n}")], |row| row.get::<_, i64>(0))
                .optional()
                .expect("lookup");
            assert_eq!(found, None);
        }
        (find.get_status(StatementStatus::VmStep), find.get_status(StatementStatus::FullscanStep))
    }

    #[tokio::test]
    async fn finding_resends_costs_the_same_in_a_room_of_100_and_of_20_000() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("chat.db");
        SqliteStore::open(&path).await.expect("migrates").close().await;
        let mut connection = Connection::open(&path).expect("opens");

        append(&mut connection, (0..100).map(|n| new(n, &format!("c{n}"))).collect()).expect("small room");
        let (small, small_scans) = lookup_work(&connection);
        append(&mut connection, (100..20_000).map(|n| new(n, &format!("c{n}"))).collect()).expect("big room");
        let (big, big_scans) = lookup_work(&connection);
        // A resend within the writer's batch path is still found.
        let again = append(&mut connection, vec![new(0, "c19999")]).expect("resend");
        assert!(matches!(again.as_slice(), [Appended::Duplicate(m)] if m.id == 20_000));

        assert_eq!((small_scans, big_scans), (0, 0), "no full-scan steps");
        // An index search grows with the log of the room; a scan would take ~200× more here.
        assert!(big <= small * 2, "lookup steps grew with the room: {small} at 100 messages, {big} at 20,000");
    }
}
