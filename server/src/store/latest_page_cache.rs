//! The newest page of each busy room, kept in memory in front of the store.
//!
//! Every join without a resume reads its room's newest page. When a crowd
//! rejoins after a restart, that is thousands of reads of the same page,
//! each a round trip to the database thread: here the first read fills the
//! cache and the others copy it, until a message is stored in the room.
//!
//! Correctness rests on one rule: a page read from the store is cached only
//! if no message was stored in its room (and the cache was not cleared)
//! while it was being read, so a cached page is never older than a commit
//! that finished before the page is served. Only valid while this process
//! is the store's only writer (several nodes on one database must invalidate
//! it from the bus as well).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chat_shared::{ChatMessage, Epoch, RoomName};

use super::{Appended, HistoryStore, NewMessage, Page, StoreError};

/// Rooms tracked at most; past this the cache starts over (bounds memory
/// whatever rooms a client invents).
const ROOMS_MAX: usize = 1_024;

/// Bytes of cached pages at most (a page may hold 256 KiB of long
/// messages): a page that does not fit is served but not kept.
const BYTES_MAX: usize = 16 << 20;

/// About what a page holds in memory.
fn page_bytes(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .map(|m| {
            let client_id = m.client_id.as_ref().map_or(0, |c| c.as_str().len());
            std::mem::size_of::<ChatMessage>()
                + m.room.as_str().len()
                + m.nick.as_str().len()
                + m.text.as_str().len()
                + client_id
        })
        .sum()
}

/// One room's cached page and how many times its history changed.
#[derive(Default)]
struct RoomEntry {
    changes: u64,
    /// The page size asked for, the page, and its bytes.
    latest: Option<(u32, Arc<Vec<ChatMessage>>, usize)>,
}

#[derive(Default)]
struct Cache {
    rooms: HashMap<RoomName, RoomEntry>,
    /// How many times the whole cache was cleared.
    resets: u64,
    /// Bytes of the pages held.
    bytes: usize,
}

impl Cache {
    /// What a reader must find unchanged to cache what it read.
    fn version(&self, room: &RoomName) -> (u64, u64) {
        (self.resets, self.rooms.get(room).map_or(0, |entry| entry.changes))
    }

    /// Forgets `room`'s page: a message was stored in it.
    fn changed(&mut self, room: RoomName) {
        let entry = self.rooms.entry(room).or_default();
        entry.changes += 1;
        if let Some((_, _, bytes)) = entry.latest.take() {
            self.bytes -= bytes;
        }
    }

    /// Keeps `messages` as `room`'s newest page of `limit`, if there is room for it.
    fn keep(&mut self, room: &RoomName, limit: u32, messages: &[ChatMessage]) {
        let bytes = page_bytes(messages);
        let held = self.rooms.get(room).and_then(|e| e.latest.as_ref()).map_or(0, |(_, _, b)| *b);
        let fits = self.bytes - held + bytes <= BYTES_MAX;
        if !fits || (!self.rooms.contains_key(room) && self.rooms.len() >= ROOMS_MAX) {
            return;
        }
        self.bytes = self.bytes - held + bytes;
        self.rooms.entry(room.clone()).or_default().latest = Some((limit, Arc::new(messages.to_vec()), bytes));
    }
}

/// A [`HistoryStore`] that serves each room's newest page from memory.
pub struct LatestPageCache {
    inner: Arc<dyn HistoryStore>,
    cache: Mutex<Cache>,
}

impl LatestPageCache {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn HistoryStore>) -> Self {
        Self { inner, cache: Mutex::default() }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl HistoryStore for LatestPageCache {
    async fn append_batch(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        let rooms: Vec<RoomName> = messages.iter().map(|m| m.room.clone()).collect();
        // Forgotten after the commit (or its failure), not before: a page read
        // between the two would hold the old history with a current version.
        let result = self.inner.append_batch(messages).await;
        let mut cache = self.cache();
        for room in rooms {
            cache.changed(room);
        }
        if cache.rooms.len() > ROOMS_MAX {
            cache.rooms.clear();
            cache.bytes = 0;
            cache.resets += 1;
        }
        result
    }

    async fn page(&self, room: &RoomName, page: Page) -> Result<Vec<ChatMessage>, StoreError> {
        let Page::Latest { limit } = page else { return self.inner.page(room, page).await };
        let version = {
            let cache = self.cache();
            let cached = cache.rooms.get(room).and_then(|entry| entry.latest.as_ref());
            if let Some((cached_limit, messages, _)) = cached
                && *cached_limit == limit
            {
                return Ok(messages.as_ref().clone());
            }
            cache.version(room)
        };
        let messages = self.inner.page(room, page).await?;
        let mut cache = self.cache();
        if cache.version(room) == version {
            cache.keep(room, limit, &messages);
        }
        Ok(messages)
    }

    async fn latest_id(&self, room: &RoomName) -> Result<Option<u64>, StoreError> {
        self.inner.latest_id(room).await
    }

    async fn latest_ids(&self, rooms: &[RoomName]) -> Result<HashMap<RoomName, u64>, StoreError> {
        self.inner.latest_ids(rooms).await
    }

    async fn pages_after(&self, from: &[(RoomName, u64)], limit: u32) -> Result<Vec<ChatMessage>, StoreError> {
        self.inner.pages_after(from, limit).await
    }

    fn epoch(&self) -> &Epoch {
        self.inner.epoch()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chat_shared::{MessageText, Nickname};
    use tokio::sync::Notify;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// The real store, counting its page reads; a read can be held at a gate.
    struct Counting {
        inner: SqliteStore,
        reads: AtomicUsize,
        gate: Option<(Arc<Notify>, Arc<Notify>)>,
    }

    #[async_trait]
    impl HistoryStore for Counting {
        async fn append_batch(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
            self.inner.append_batch(messages).await
        }
        async fn page(&self, room: &RoomName, page: Page) -> Result<Vec<ChatMessage>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let messages = self.inner.page(room, page).await;
            if let Some((reading, release)) = &self.gate {
                reading.notify_one();
                release.notified().await;
            }
            messages
        }
        async fn latest_id(&self, room: &RoomName) -> Result<Option<u64>, StoreError> {
            self.inner.latest_id(room).await
        }
        fn epoch(&self) -> &Epoch {
            self.inner.epoch()
        }
        fn kind(&self) -> &'static str {
            self.inner.kind()
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.inner.ping().await
        }
        async fn close(&self) {
            self.inner.close().await;
        }
    }

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

    async fn counting(dir: &tempfile::TempDir, gate: Option<(Arc<Notify>, Arc<Notify>)>) -> Arc<Counting> {
        let inner = SqliteStore::open(&dir.path().join("chat.db")).await.expect("opens");
        Arc::new(Counting { inner, reads: AtomicUsize::new(0), gate })
    }

    fn texts(messages: &[ChatMessage]) -> Vec<String> {
        messages.iter().map(|m| m.text.to_string()).collect()
    }

    const LATEST: Page = Page::Latest { limit: 50 };

    #[tokio::test]
    async fn the_newest_page_is_read_once_until_a_message_is_stored_in_its_room() {
        let dir = tempfile::tempdir().expect("dir");
        let store = counting(&dir, None).await;
        let cache = LatestPageCache::new(store.clone());
        cache.append(said("one")).await.expect("append");
        for _ in 0..3 {
            assert_eq!(texts(&cache.page(&RoomName::lobby(), LATEST).await.expect("page")), ["one"]);
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), 1, "read once, then copied");
        cache.page(&RoomName::lobby(), Page::Latest { limit: 1 }).await.expect("page");
        assert_eq!(store.reads.load(Ordering::SeqCst), 2, "another page size is another read");

        cache.append(said("two")).await.expect("append");
        assert_eq!(texts(&cache.page(&RoomName::lobby(), LATEST).await.expect("page")), ["one", "two"]);
        let dev = RoomName::parse("dev").expect("room");
        cache.append(NewMessage { room: dev.clone(), ..said("elsewhere") }).await.expect("append");
        assert_eq!(texts(&cache.page(&RoomName::lobby(), LATEST).await.expect("page")), ["one", "two"]);
        assert_eq!(store.reads.load(Ordering::SeqCst), 3, "a message in another room keeps this page");
    }

    #[tokio::test]
    async fn a_page_read_while_a_message_is_stored_is_served_once_and_not_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let (reading, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let store = counting(&dir, Some((reading.clone(), release.clone()))).await;
        let cache = Arc::new(LatestPageCache::new(store.clone()));
        cache.append(said("one")).await.expect("append");
        let slow_reader = tokio::spawn({
            let cache = cache.clone();
            async move { cache.page(&RoomName::lobby(), LATEST).await }
        });
        // The read has its page (without "two") and is held; "two" is committed meanwhile.
        reading.notified().await;
        cache.append(said("two")).await.expect("append");
        release.notify_one();
        let page = slow_reader.await.expect("task").expect("page");
        assert_eq!(texts(&page), ["one"], "what it read");
        // Not cached: the next reader reads again and sees "two".
        let next = tokio::spawn({
            let cache = cache.clone();
            async move { cache.page(&RoomName::lobby(), LATEST).await }
        });
        reading.notified().await;
        release.notify_one();
        assert_eq!(texts(&next.await.expect("task").expect("page")), ["one", "two"]);
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_cache_holds_a_bounded_number_of_bytes() {
        let dir = tempfile::tempdir().expect("dir");
        let store = counting(&dir, None).await;
        let cache = LatestPageCache::new(store.clone());
        // 40 rooms of 50 messages of 4,000 four-byte characters: 32 MB of pages, twice the bound.
        let long = "😀".repeat(4_000);
        for n in 0..40 {
            let room = RoomName::parse(format!("big{n}")).expect("room");
            let page: Vec<NewMessage> = (0..50).map(|_| NewMessage { room: room.clone(), ..said(&long) }).collect();
            cache.append_batch(page).await.expect("append");
            assert_eq!(cache.page(&room, LATEST).await.expect("page").len(), 50, "served whole");
        }
        let held = cache.cache().bytes;
        assert!(held <= BYTES_MAX, "{held} bytes held");
        assert!(held > BYTES_MAX / 2, "the bound is used, not avoided: {held}");
        let pages = cache.cache().rooms.values().filter(|e| e.latest.is_some()).count();
        assert!(pages < 40, "pages past the bound are served, not kept");
    }

    #[tokio::test]
    async fn the_cache_holds_a_bounded_number_of_rooms() {
        let dir = tempfile::tempdir().expect("dir");
        let store = counting(&dir, None).await;
        let cache = LatestPageCache::new(store.clone());
        for n in 0..ROOMS_MAX + 10 {
            let room = RoomName::parse(format!("r{n}")).expect("room");
            cache.page(&room, LATEST).await.expect("page");
        }
        assert!(cache.cache().rooms.len() <= ROOMS_MAX);
        for n in 0..ROOMS_MAX + 10 {
            let room = RoomName::parse(format!("r{n}")).expect("room");
            cache.append(NewMessage { room, ..said("x") }).await.expect("append");
        }
        assert!(cache.cache().rooms.len() <= ROOMS_MAX + 1, "cleared once past the bound");
    }
}
