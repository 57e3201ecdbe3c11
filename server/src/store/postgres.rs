//! History on a PostgreSQL server (`--database postgres://...`): the store
//! several nodes share. Migrations are applied by sqlx at start (by whichever
//! node gets there first; sqlx takes an advisory lock).
//!
//! Ids are assigned by the database, atomically: a transaction storing into a
//! room first locks the room's counter row (`rooms`), in name order when a
//! batch spans rooms (so two nodes cannot deadlock), and holds it until it
//! commits. Writers of one room thus take turns across nodes; each sees the
//! messages the previous one committed, so a resend of a client id (maybe to
//! another node) is found and stored once, and ids have no gaps. A batch
//! costs four statements however many messages it holds (lock, resend
//! lookup, insert, counter update), each over arrays (`UNNEST`).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chat_shared::{ChatMessage, ClientId, Epoch, RoomName};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::rows::{COLUMNS, corrupt, message_from_row, oldest_first, page_query, to_i64};
use super::{Appended, HistoryStore, NewMessage, Page, StoreError};

/// Connections per node: sessions read history side by side; writes come
/// from one writer task per node, one transaction at a time.
const CONNECTIONS: u32 = 8;

/// How long a request waits for a connection (or to connect) before it
/// fails as `store_unavailable`, instead of hanging while the server is away.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one statement may run before PostgreSQL cancels it: a read
/// stuck behind a lock or a failing disk fails as `store_unavailable`
/// instead of holding a connection (and whatever waits on it) for good.
/// Schema changes at startup have no such limit.
const STATEMENT_TIMEOUT: &str = "10s";

/// History in PostgreSQL.
pub struct PostgresStore {
    pool: PgPool,
    epoch: Epoch,
}

impl PostgresStore {
    /// Connects to `url`, brings the schema up to date and reads the epoch.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let migrating = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/postgres").run(&migrating).await?;
        migrating.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.options([("statement_timeout", STATEMENT_TIMEOUT)]))
            .await?;
        let epoch: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'epoch'").fetch_one(&pool).await?;
        let epoch = Epoch::parse(epoch).map_err(corrupt)?;
        Ok(Self { pool, epoch })
    }

    /// Locks each room's counter (creating it at 0), in name order, in one
    /// statement; returns the last ids.
    async fn lock_rooms(
        transaction: &mut Transaction<'_, Postgres>,
        rooms: BTreeSet<&RoomName>,
    ) -> Result<HashMap<RoomName, u64>, StoreError> {
        let names: Vec<&str> = rooms.iter().map(|room| room.as_str()).collect();
        // An upsert that changes nothing still locks the row, and returns it;
        // rows are taken in the order of the ordered select.
        let locked: Vec<(String, i64)> = sqlx::query_as(
            "INSERT INTO rooms (room, last_id) SELECT room, 0 FROM UNNEST($1::text[]) AS room ORDER BY room \
             ON CONFLICT (room) DO UPDATE SET last_id = rooms.last_id RETURNING room, last_id",
        )
        .bind(&names)
        .fetch_all(&mut **transaction)
        .await?;
        locked
            .into_iter()
            .map(|(room, last_id)| {
                Ok((RoomName::parse(room).map_err(corrupt)?, u64::try_from(last_id).map_err(corrupt)?))
            })
            .collect()
    }

    /// The stored messages with any of `keys`' client ids in their rooms, in one query.
    async fn stored_resends(
        transaction: &mut Transaction<'_, Postgres>,
        keys: &[(&RoomName, &ClientId)],
    ) -> Result<HashMap<(RoomName, ClientId), ChatMessage>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let rooms: Vec<&str> = keys.iter().map(|(room, _)| room.as_str()).collect();
        let client_ids: Vec<&str> = keys.iter().map(|(_, client_id)| client_id.as_str()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE (room, client_id) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[]))"
        ))
        .bind(&rooms)
        .bind(&client_ids)
        .fetch_all(&mut **transaction)
        .await?;
        let mut stored = HashMap::with_capacity(rows.len());
        for row in &rows {
            let message = message_from_row(row)?;
            if let Some(client_id) = message.client_id.clone() {
                stored.insert((message.room.clone(), client_id), message);
            }
        }
        Ok(stored)
    }
}

/// What a deletion found (its room's counter is locked: deletions of one
/// message on two nodes take turns).
enum Deletion {
    /// The message was deleted before, by this.
    Before(ChatMessage),
    /// There is no such message in the room (or it is a change).
    NoTarget,
    /// Its text is wiped; the deletion is to be stored.
    Wiped,
}

impl PostgresStore {
    /// Wipes message `target` of `room`, unless it was deleted before (by
    /// this batch, in `deleted`, or an earlier one). Deletions are rare: a
    /// statement or two each, beside the batch's four.
    async fn delete(
        transaction: &mut Transaction<'_, Postgres>,
        deleted: &mut HashMap<(RoomName, u64), ChatMessage>,
        room: &RoomName,
        target: u64,
        text: &chat_shared::MessageText,
    ) -> Result<Deletion, StoreError> {
        if let Some(first) = deleted.get(&(room.clone(), target)) {
            return Ok(Deletion::Before(first.clone()));
        }
        let first = sqlx::query(&format!("SELECT {COLUMNS} FROM messages WHERE room = $1 AND deletes = $2"))
            .bind(room.as_str())
            .bind(to_i64(target))
            .fetch_optional(&mut **transaction)
            .await?;
        if let Some(first) = first {
            return Ok(Deletion::Before(message_from_row(&first)?));
        }
        let wiped = sqlx::query(
            "UPDATE messages SET text = $3, deleted = true WHERE room = $1 AND id = $2 AND deletes IS NULL",
        )
        .bind(room.as_str())
        .bind(to_i64(target))
        .bind(text.as_str())
        .execute(&mut **transaction)
        .await?;
        Ok(if wiped.rows_affected() == 0 { Deletion::NoTarget } else { Deletion::Wiped })
    }
}

/// The new rows of a batch, column by column, for one `INSERT ... UNNEST`.
#[derive(Default)]
struct NewRows {
    rooms: Vec<String>,
    ids: Vec<i64>,
    timestamps: Vec<i64>,
    nicks: Vec<String>,
    texts: Vec<String>,
    client_ids: Vec<Option<String>>,
    deletes: Vec<Option<i64>>,
}

impl NewRows {
    fn push(&mut self, message: &ChatMessage) {
        self.rooms.push(message.room.as_str().to_owned());
        self.ids.push(to_i64(message.id));
        self.timestamps.push(to_i64(message.ts));
        self.nicks.push(message.nick.as_str().to_owned());
        self.texts.push(message.text.as_str().to_owned());
        self.client_ids.push(message.client_id.as_ref().map(|c| c.as_str().to_owned()));
        self.deletes.push(message.deletes.map(to_i64));
    }

    async fn insert(self, transaction: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO messages (room, id, ts, nick, text, client_id, deletes) \
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::int8[])",
        )
        .bind(&self.rooms)
        .bind(&self.ids)
        .bind(&self.timestamps)
        .bind(&self.nicks)
        .bind(&self.texts)
        .bind(&self.client_ids)
        .bind(&self.deletes)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl HistoryStore for PostgresStore {
    async fn append_batch(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // A handful of statements per batch, whatever its size: each message
        // costing its own round trips made one node store ~1,100 a second.
        let mut transaction = self.pool.begin().await?;
        let mut last_ids = Self::lock_rooms(&mut transaction, messages.iter().map(|m| &m.room).collect()).await?;
        let first_ids = last_ids.clone();
        let keys: Vec<(&RoomName, &ClientId)> =
            messages.iter().filter_map(|m| m.client_id.as_ref().map(|client_id| (&m.room, client_id))).collect();
        // Resends of stored messages, then (as the batch is walked) of earlier ones in it.
        let mut known = Self::stored_resends(&mut transaction, &keys).await?;
        let mut new = NewRows::default();
        let mut results = Vec::with_capacity(messages.len());
        // Deletions of this batch, by (room, message deleted).
        let mut deleted: HashMap<(RoomName, u64), ChatMessage> = HashMap::new();
        for NewMessage { room, ts, nick, text, client_id, deletes } in messages {
            if let Some(target) = deletes {
                match Self::delete(&mut transaction, &mut deleted, &room, target, &text).await? {
                    Deletion::Before(first) => {
                        results.push(Appended::Duplicate(first));
                        continue;
                    }
                    Deletion::NoTarget => {
                        results.push(Appended::NoTarget);
                        continue;
                    }
                    Deletion::Wiped => {}
                }
            }
            if let Some(client_id) = &client_id
                && let Some(first) = known.get(&(room.clone(), client_id.clone()))
            {
                results.push(Appended::Duplicate(first.clone()));
                continue;
            }
            let last_id = last_ids.entry(room.clone()).or_default();
            *last_id += 1;
            let stored = ChatMessage { room, id: *last_id, ts, nick, text, client_id, deletes, deleted: false };
            new.push(&stored);
            if let Some(client_id) = &stored.client_id {
                known.insert((stored.room.clone(), client_id.clone()), stored.clone());
            }
            if let Some(target) = deletes {
                deleted.insert((stored.room.clone(), target), stored.clone());
            }
            results.push(Appended::New(stored));
        }
        new.insert(&mut transaction).await?;
        let (rooms, ids): (Vec<&str>, Vec<i64>) = last_ids
            .iter()
            .filter(|(room, last_id)| first_ids.get(*room) != Some(*last_id))
            .map(|(room, last_id)| (room.as_str(), to_i64(*last_id)))
            .unzip();
        if !rooms.is_empty() {
            sqlx::query(
                "UPDATE rooms SET last_id = counted.last_id \
                 FROM UNNEST($1::text[], $2::int8[]) AS counted(room, last_id) WHERE rooms.room = counted.room",
            )
            .bind(&rooms)
            .bind(&ids)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(results)
    }

    async fn page(&self, room: &RoomName, page: Page) -> Result<Vec<ChatMessage>, StoreError> {
        let (sql, limit, bound) = page_query(page, '$');
        let mut query = sqlx::query(&sql).bind(room.as_str()).bind(i64::from(limit));
        if let Some(id) = bound {
            query = query.bind(to_i64(id));
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(oldest_first(rows.iter().map(message_from_row).collect::<Result<_, _>>()?, page))
    }

    async fn latest_id(&self, room: &RoomName) -> Result<Option<u64>, StoreError> {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM messages WHERE room = $1")
            .bind(room.as_str())
            .fetch_one(&self.pool)
            .await?;
        max.map(|id| u64::try_from(id).map_err(corrupt)).transpose()
    }

    async fn latest_ids(&self, rooms: &[RoomName]) -> Result<HashMap<RoomName, u64>, StoreError> {
        // One backward index scan per room, in one round trip.
        let names: Vec<&str> = rooms.iter().map(RoomName::as_str).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT r.room, m.id FROM UNNEST($1::text[]) AS r(room) \
             CROSS JOIN LATERAL (SELECT MAX(id) AS id FROM messages WHERE room = r.room) AS m \
             WHERE m.id IS NOT NULL",
        )
        .bind(&names)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(room, id)| Ok((RoomName::parse(room).map_err(corrupt)?, u64::try_from(id).map_err(corrupt)?)))
            .collect()
    }

    async fn pages_after(&self, from: &[(RoomName, u64)], limit: u32) -> Result<Vec<ChatMessage>, StoreError> {
        let rooms: Vec<&str> = from.iter().map(|(room, _)| room.as_str()).collect();
        let after: Vec<i64> = from.iter().map(|(_, id)| to_i64(*id)).collect();
        let sql = format!(
            "SELECT m.* FROM UNNEST($1::text[], $2::bigint[]) AS r(room, after) \
             CROSS JOIN LATERAL (SELECT {COLUMNS} FROM messages \
             WHERE room = r.room AND id > r.after ORDER BY id LIMIT $3) AS m"
        );
        let rows = sqlx::query(&sql).bind(&rooms).bind(&after).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(message_from_row).collect()
    }

    fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn has_messages(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rooms)").fetch_one(&self.pool).await?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
