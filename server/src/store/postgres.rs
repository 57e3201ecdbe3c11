//! History on a PostgreSQL server (`--database postgres://...`): the store
//! several nodes share. Migrations are applied by sqlx at start (by whichever
//! node gets there first; sqlx takes an advisory lock).
//!
//! Ids are assigned by the database, atomically: a transaction storing into a
//! room first locks the room's counter row (`rooms`), in name order when a
//! batch spans rooms (so two nodes cannot deadlock), and holds it until it
//! commits. Writers of one room thus take turns across nodes; each sees the
//! messages the previous one committed, so a resend of a client id (maybe to
//! another node) is found and stored once, and ids have no gaps.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chat_shared::{ChatMessage, ClientId, Epoch, RoomName};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::rows::{COLUMNS, corrupt, message_from_row, oldest_first, page_query, to_i64};
use super::{Appended, HistoryStore, NewMessage, Page, StoreError};

/// Connections per node: sessions read history side by side; writes come
/// from one writer task per node, one transaction at a time.
const CONNECTIONS: u32 = 8;

/// How long a request waits for a connection (or to connect) before it
/// fails as `store_unavailable`, instead of hanging while the server is away.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// History in PostgreSQL.
pub struct PostgresStore {
    pool: PgPool,
    epoch: Epoch,
}

impl PostgresStore {
    /// Connects to `url`, brings the schema up to date and reads the epoch.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool =
            PgPoolOptions::new().max_connections(CONNECTIONS).acquire_timeout(ACQUIRE_TIMEOUT).connect(url).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let epoch: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'epoch'").fetch_one(&pool).await?;
        let epoch = Epoch::parse(epoch).map_err(corrupt)?;
        Ok(Self { pool, epoch })
    }

    /// Locks each room's counter (creating it at 0), in name order; returns the last ids.
    async fn lock_rooms(
        transaction: &mut Transaction<'_, Postgres>,
        rooms: BTreeSet<&RoomName>,
    ) -> Result<HashMap<RoomName, u64>, StoreError> {
        let mut last_ids = HashMap::with_capacity(rooms.len());
        for room in rooms {
            // An upsert that changes nothing still locks the row, and returns it.
            let last_id: i64 = sqlx::query_scalar(
                "INSERT INTO rooms (room, last_id) VALUES ($1, 0) \
                 ON CONFLICT (room) DO UPDATE SET last_id = rooms.last_id RETURNING last_id",
            )
            .bind(room.as_str())
            .fetch_one(&mut **transaction)
            .await?;
            last_ids.insert(room.clone(), u64::try_from(last_id).map_err(corrupt)?);
        }
        Ok(last_ids)
    }
}

#[async_trait]
impl HistoryStore for PostgresStore {
    async fn append_batch(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction = self.pool.begin().await?;
        let mut last_ids = Self::lock_rooms(&mut transaction, messages.iter().map(|m| &m.room).collect()).await?;
        let first_ids = last_ids.clone();
        // Resends within this batch, which the table cannot show yet.
        let mut in_batch: HashMap<(RoomName, ClientId), ChatMessage> = HashMap::new();
        let mut results = Vec::with_capacity(messages.len());
        for NewMessage { room, ts, nick, text, client_id } in messages {
            if let Some(client_id) = &client_id {
                let key = (room.clone(), client_id.clone());
                if let Some(first) = in_batch.get(&key) {
                    results.push(Appended::Duplicate(first.clone()));
                    continue;
                }
                let stored = sqlx::query(&format!("SELECT {COLUMNS} FROM messages WHERE room = $1 AND client_id = $2"))
                    .bind(room.as_str())
                    .bind(client_id.as_str())
                    .fetch_optional(&mut *transaction)
                    .await?;
                if let Some(row) = stored {
                    let first = message_from_row(&row)?;
                    in_batch.insert(key, first.clone());
                    results.push(Appended::Duplicate(first));
                    continue;
                }
            }
            let last_id = last_ids.entry(room.clone()).or_default();
            *last_id += 1;
            let id = *last_id;
            sqlx::query("INSERT INTO messages (room, id, ts, nick, text, client_id) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(room.as_str())
                .bind(to_i64(id))
                .bind(to_i64(ts))
                .bind(nick.as_str())
                .bind(text.as_str())
                .bind(client_id.as_ref().map(ClientId::as_str))
                .execute(&mut *transaction)
                .await?;
            let stored = ChatMessage { room, id, ts, nick, text, client_id };
            if let Some(client_id) = &stored.client_id {
                in_batch.insert((stored.room.clone(), client_id.clone()), stored.clone());
            }
            results.push(Appended::New(stored));
        }
        for (room, last_id) in &last_ids {
            if first_ids.get(room) != Some(last_id) {
                sqlx::query("UPDATE rooms SET last_id = $2 WHERE room = $1")
                    .bind(room.as_str())
                    .bind(to_i64(*last_id))
                    .execute(&mut *transaction)
                    .await?;
            }
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

    async fn close(&self) {
        self.pool.close().await;
    }
}
