//! Message history behind a trait, so the hub and sessions do not care where
//! it lives. SQLite ([`sqlite::SqliteStore`]) is the embedded default;
//! PostgreSQL ([`postgres::PostgresStore`]) is the one several nodes share.
//! `startup` picks one by the [`location::StoreLocation`] configured.

pub mod instrumented;
pub mod latest_page_cache;
pub mod location;
pub mod postgres;
mod rows;
pub mod sqlite;
mod sqlite_writer;

use std::collections::HashMap;

use async_trait::async_trait;
use chat_shared::{ChatMessage, ClientId, Epoch, MessageText, Nickname, RoomName};

/// A message to store; the store assigns its id.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The room.
    pub room: RoomName,
    /// When the server accepted it, in ms since the Unix epoch.
    pub ts: u64,
    /// The author.
    pub nick: Nickname,
    /// The text.
    pub text: MessageText,
    /// The sender's id for it, used to store a resend once.
    pub client_id: Option<ClientId>,
    /// Set on a deletion: the message of the room it deletes (whose text
    /// the same transaction wipes).
    pub deletes: Option<u64>,
}

impl NewMessage {
    /// The deletion of message `target` of `room` by `by`.
    pub fn deletion(room: RoomName, target: u64, by: Nickname, ts: u64) -> Self {
        Self { room, ts, nick: by, text: deleted_text(), client_id: None, deletes: Some(target) }
    }
}

/// What a deleted message (and a deletion) holds as its text.
pub fn deleted_text() -> MessageText {
    // A constant that passes the rule; the fallback is never taken.
    MessageText::parse(chat_shared::DELETED_TEXT).unwrap_or_else(|_| unreachable!("DELETED_TEXT is valid text"))
}

/// What [`HistoryStore::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored as this new message.
    New(ChatMessage),
    /// A message with the same client id was stored before (or, for a
    /// deletion, the message was deleted before); this is it.
    Duplicate(ChatMessage),
    /// A deletion of what is not a message of the room: nothing stored.
    NoTarget,
}

/// Which part of a room's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest `limit` messages.
    Latest { limit: u32 },
    /// Up to `limit` messages with ids below `id`, the newest of them.
    Before { id: u64, limit: u32 },
    /// Up to `limit` messages with ids above `id`, the oldest of them.
    After { id: u64, limit: u32 },
}

/// The store failed. Which database library failed stays behind this type:
/// callers only learn whether to retry (unavailable), or that the data or
/// schema is wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error (unreachable, locked, full disk...).
    #[error("history store: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Setting up the schema failed.
    #[error("history store migration: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored row no longer passes the protocol's validation.
    #[error("history store holds an invalid row: {0}")]
    Corrupt(String),
    /// The store was closed (the server is stopping).
    #[error("history store is closed")]
    Closed,
}

impl StoreError {
    /// Wraps an error of the database library.
    pub fn database(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Database(Box::new(error))
    }
}

/// Durable, per-room message history. Ids start at 1 in each room and grow by
/// one per message, so a reader can tell a gap from the end.
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Stores several messages, in order, as one durable unit, each with the
    /// next id of its room; a message whose client id is already stored in its
    /// room (a resend) is not stored again and comes back as [`Appended::Duplicate`].
    async fn append_batch(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError>;

    /// Stores one message, durably, before returning.
    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        let mut appended = self.append_batch(vec![message]).await?;
        appended.pop().ok_or_else(|| StoreError::Corrupt("a batch of one stored nothing".into()))
    }

    /// Reads a page of a room's history, oldest first.
    async fn page(&self, room: &RoomName, page: Page) -> Result<Vec<ChatMessage>, StoreError>;

    /// The id of the newest message of `room`, if it has any.
    async fn latest_id(&self, room: &RoomName) -> Result<Option<u64>, StoreError>;

    /// The newest id of each of `rooms` that has messages (the others are
    /// left out). A node subscribing thousands of rooms at once (a join
    /// storm, a reconnect to Redis) asks once, not once per room.
    async fn latest_ids(&self, rooms: &[RoomName]) -> Result<HashMap<RoomName, u64>, StoreError> {
        let mut newest = HashMap::with_capacity(rooms.len());
        for room in rooms {
            if let Some(id) = self.latest_id(room).await? {
                newest.insert(room.clone(), id);
            }
        }
        Ok(newest)
    }

    /// For each room and id of `from`, up to `limit` of the room's messages
    /// after that id, each room's oldest first: what a node missed in many
    /// rooms, read at once.
    async fn pages_after(&self, from: &[(RoomName, u64)], limit: u32) -> Result<Vec<ChatMessage>, StoreError> {
        let mut read = Vec::new();
        for (room, after) in from {
            read.extend(self.page(room, Page::After { id: *after, limit }).await?);
        }
        Ok(read)
    }

    /// The epoch of this history, made with the database: ids of another
    /// epoch mean nothing here.
    fn epoch(&self) -> &Epoch;

    /// Which database it is (`sqlite`, `postgres`), for `/readyz` and logs.
    fn kind(&self) -> &'static str;

    /// Checks the store is reachable.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether any message was ever stored: a history in use, whose nodes
    /// may hold names in presence (a node that starts then cannot take a
    /// Redis without names for a new history). Assumed so unless a store
    /// can say.
    async fn has_messages(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Flushes and closes; called once at shutdown.
    async fn close(&self);
}
