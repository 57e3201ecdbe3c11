//! The embedded default store: one SQLite file, created on first start, with
//! migrations applied by sqlx.
//!
//! WAL mode, one writer connection and a pool of readers: readers never wait
//! for the writer (nor it for them), so a long history read does not hold up
//! a commit. With `synchronous = FULL` (the default) a commit is on disk
//! before it returns, so an acknowledged message survives a power loss;
//! `NORMAL` survives a process crash only (see [`Durability`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chat_shared::{ChatMessage, Epoch, RoomName};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::rows::{corrupt, message_from_row, oldest_first, page_query, to_i64};
use super::sqlite_writer::WriterThread;
use super::{Appended, HistoryStore, NewMessage, Page, StoreError};

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous = FULL`: acknowledged means on disk, even across a power loss.
    #[default]
    Full,
    /// `synchronous = NORMAL`: survives a crash of the process, but the last
    /// acknowledged messages may be lost if the machine loses power.
    Normal,
}

/// Readers in the pool: history pages and resumes of different sessions run
/// side by side.
const READERS: u32 = 4;

/// History in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    /// The one connection that writes, on its own thread.
    writer: Arc<WriterThread>,
    /// Connections that only read.
    readers: SqlitePool,
    epoch: Epoch,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(Box::new(error))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, and its folder, and
    /// brings the schema up to date; commits are fully durable.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full).await
    }

    /// The files SQLite keeps for the database at `path`: the database, its
    /// write-ahead log and shared memory, and a rollback journal.
    pub fn files(path: &Path) -> Vec<PathBuf> {
        ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|suffix| {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                PathBuf::from(name)
            })
            .collect()
    }

    /// Like [`SqliteStore::open`], with the given durability.
    pub async fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::database)?;
        }
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(std::time::Duration::from_secs(5));
        // sqlx applies the migrations and reads the epoch; then the writer
        // thread takes over the one writing connection.
        let migrator = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&migrator).await?;
        let epoch: String =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'epoch'").fetch_one(&migrator).await?;
        let epoch = Epoch::parse(epoch).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        migrator.close().await;
        let writer = Arc::new(WriterThread::start(path, durability)?);
        // No ping before each read: a local file's connection does not go stale,
        // and the ping was a round trip to the connection's thread per read.
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, readers, epoch })
    }
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn append_batch(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        self.writer.append(messages).await
    }

    async fn page(&self, room: &RoomName, page: Page) -> Result<Vec<ChatMessage>, StoreError> {
        let (sql, limit, bound) = page_query(page, '?');
        let mut query = sqlx::query(&sql).bind(room.as_str()).bind(i64::from(limit));
        if let Some(id) = bound {
            query = query.bind(to_i64(id));
        }
        let rows = query.fetch_all(&self.readers).await?;
        Ok(oldest_first(rows.iter().map(message_from_row).collect::<Result<_, _>>()?, page))
    }

    async fn latest_id(&self, room: &RoomName) -> Result<Option<u64>, StoreError> {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM messages WHERE room = ?")
            .bind(room.as_str())
            .fetch_one(&self.readers)
            .await?;
        max.map(|id| u64::try_from(id).map_err(corrupt)).transpose()
    }

    fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        // An empty batch goes through the writer thread and back.
        self.writer.append(Vec::new()).await?;
        Ok(())
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::{ClientId, MessageText, Nickname};

    fn new(room: &str, text: &str, client_id: Option<&str>) -> NewMessage {
        NewMessage {
            room: RoomName::parse(room).expect("room"),
            ts: 1_700_000_000_000,
            nick: Nickname::parse("alice").expect("nick"),
            text: MessageText::parse(text).expect("text"),
            client_id: client_id.map(|c| ClientId::parse(c).expect("client id")),
            deletes: None,
        }
    }

    fn id_of(appended: Appended) -> u64 {
        match appended {
            Appended::New(m) | Appended::Duplicate(m) => m.id,
            Appended::NoTarget => panic!("nothing stored"),
        }
    }

    #[tokio::test]
    async fn ids_increase_per_room_and_pages_read_back_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("nested/chat.db")).await.expect("opens");
        for n in 1..=5 {
            assert_eq!(id_of(store.append(new("lobby", &format!("l{n}"), None)).await.expect("append")), n);
        }
        assert_eq!(id_of(store.append(new("dev", "d1", None)).await.expect("append")), 1);

        let lobby = RoomName::parse("lobby").expect("room");
        let texts = |ms: Vec<ChatMessage>| ms.into_iter().map(|m| m.text.to_string()).collect::<Vec<_>>();
        assert_eq!(texts(store.page(&lobby, Page::Latest { limit: 2 }).await.expect("page")), ["l4", "l5"]);
        assert_eq!(texts(store.page(&lobby, Page::Before { id: 4, limit: 2 }).await.expect("page")), ["l2", "l3"]);
        assert_eq!(texts(store.page(&lobby, Page::After { id: 3, limit: 10 }).await.expect("page")), ["l4", "l5"]);
        // What has_more rests on: a page before an id is empty only at the start.
        assert!(!store.page(&lobby, Page::Before { id: 2, limit: 1 }).await.expect("page").is_empty());
        assert!(store.page(&lobby, Page::Before { id: 1, limit: 1 }).await.expect("page").is_empty());
        assert_eq!(store.latest_id(&lobby).await.expect("query"), Some(5));
        assert_eq!(store.latest_id(&RoomName::parse("empty").expect("room")).await.expect("query"), None);
    }

    #[tokio::test]
    async fn each_database_has_its_own_epoch() {
        let dir = tempfile::tempdir().expect("dir");
        let one = SqliteStore::open(&dir.path().join("one.db")).await.expect("opens");
        let two = SqliteStore::open_with(&dir.path().join("two.db"), Durability::Normal).await.expect("opens");
        assert_ne!(one.epoch(), two.epoch());
        assert_eq!(one.epoch().as_str().len(), 32, "128 random bits in hex");
    }

    #[tokio::test]
    async fn a_resend_with_the_same_client_id_is_stored_once() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("chat.db")).await.expect("opens");
        let first = store.append(new("lobby", "once", Some("tab-1"))).await.expect("append");
        let again = store.append(new("lobby", "once", Some("tab-1"))).await.expect("append");
        assert!(matches!(first, Appended::New(_)));
        assert!(matches!(&again, Appended::Duplicate(m) if m.id == 1));
        // The same client id in another room is another message.
        assert!(matches!(store.append(new("dev", "once", Some("tab-1"))).await, Ok(Appended::New(_))));
    }

    #[tokio::test]
    async fn a_batch_stores_in_order_and_dedupes_like_single_appends() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("chat.db")).await.expect("opens");
        store.append(new("lobby", "before", Some("c0"))).await.expect("append");
        let batch = vec![
            new("lobby", "one", Some("c1")),
            new("dev", "dev one", None),
            new("lobby", "again", Some("c0")),
            new("lobby", "two", Some("c2")),
            new("lobby", "one resent", Some("c1")),
        ];
        let results = store.append_batch(batch).await.expect("batch");
        let summary: Vec<(bool, &str, u64)> = results
            .iter()
            .map(|r| match r {
                Appended::New(m) => (true, m.room.as_str(), m.id),
                Appended::Duplicate(m) => (false, m.room.as_str(), m.id),
                Appended::NoTarget => panic!("nothing stored"),
            })
            .collect();
        assert_eq!(
            summary,
            [(true, "lobby", 2), (true, "dev", 1), (false, "lobby", 1), (true, "lobby", 3), (false, "lobby", 2)]
        );
        let lobby = RoomName::lobby();
        let texts: Vec<String> = store
            .page(&lobby, Page::Latest { limit: 10 })
            .await
            .expect("page")
            .into_iter()
            .map(|m| m.text.to_string())
            .collect();
        assert_eq!(texts, ["before", "one", "two"]);
    }

    #[tokio::test]
    async fn history_survives_reopening_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("chat.db");
        let store = SqliteStore::open(&path).await.expect("opens");
        store.append(new("lobby", "remember me", None)).await.expect("append");
        store.close().await;

        let epoch = store.epoch().clone();
        let reopened = SqliteStore::open(&path).await.expect("reopens");
        assert_eq!(reopened.epoch(), &epoch, "the epoch belongs to the database");
        let lobby = RoomName::lobby();
        let page = reopened.page(&lobby, Page::Latest { limit: 10 }).await.expect("page");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].text.as_str(), "remember me");
        assert_eq!(id_of(reopened.append(new("lobby", "next", None)).await.expect("append")), 2);
    }

    #[tokio::test]
    async fn finding_a_resend_searches_the_index_and_never_scans_the_room() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("chat.db");
        let store = SqliteStore::open(&path).await.expect("opens");
        let batch = (0..2_000).map(|n| new("lobby", "filler", Some(&format!("c{n}")))).collect();
        store.append_batch(batch).await.expect("batch");
        let plan = super::super::sqlite_writer::query_plan(&path, super::super::sqlite_writer::FIND_RESEND);
        assert!(plan.contains("SEARCH messages USING") && plan.contains("messages_room_client_id"), "{plan}");
        assert!(plan.contains("client_id=?"), "both columns of the index are used: {plan}");
        assert!(!plan.contains("SCAN"), "{plan}");
    }
}
