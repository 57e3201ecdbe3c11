//! The per-node cache of rooms' standings (is it private, what is this
//! account in it), which every join consults. An entry is used only while
//! the node hears every room change (it is "trusted"): on one node always;
//! with several, only while the change relay's subscription is up, so a
//! node cut off from the others reads the database instead of trusting what
//! it knew. A room's change drops its entries; a load that started before a
//! change (anywhere) is not kept. One load per key at a time: a crowd
//! joining one room costs one read, not one per joiner.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_shared::RoomName;
use tokio::time::Instant;

use super::rules::{Party, Standing};
use crate::store::StoreError;

/// How long an entry is used at most, even while nothing says it changed:
/// bounds the harm of a change notice that never arrived.
const LIVES: Duration = Duration::from_secs(30);

/// Past this many entries the cache starts over (bounds its memory).
const MAX_ENTRIES: usize = 100_000;

type Slot = Arc<tokio::sync::Mutex<Option<(Standing, Instant)>>>;

#[derive(Default)]
struct Inner {
    /// Per room, per party (an account, an address, or anyone: what the room is).
    rooms: HashMap<RoomName, HashMap<Party, Slot>>,
    entries: usize,
    /// Bumped by every change: a load that began before one is not kept.
    version: u64,
    trusted: bool,
}

/// Rooms' standings, as last read (see the module doc).
pub struct StandingCache {
    inner: Mutex<Inner>,
}

impl StandingCache {
    /// An empty cache; `trusted` if this node hears every change from the start.
    pub fn new(trusted: bool) -> Self {
        Self { inner: Mutex::new(Inner { trusted, ..Inner::default() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `party`'s standing in `room`, from the cache or from `load`.
    pub async fn get_or_load<F, Fut>(&self, room: &RoomName, party: Party, load: F) -> Result<Standing, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Standing, StoreError>>,
    {
        let claimed = {
            let mut inner = self.lock();
            inner.trusted.then(|| Self::slot(&mut inner, room, party))
        };
        let Some((slot, version)) = claimed else { return load().await };
        let mut held = slot.lock().await;
        if let Some((standing, loaded)) = *held
            && loaded.elapsed() < LIVES
        {
            return Ok(standing);
        }
        let standing = load().await?;
        let inner = self.lock();
        if inner.trusted && inner.version == version {
            *held = Some((standing, Instant::now()));
        }
        Ok(standing)
    }

    /// The slot of `party` in `room` (made if missing), and the version now.
    fn slot(inner: &mut Inner, room: &RoomName, party: Party) -> (Slot, u64) {
        if inner.entries >= MAX_ENTRIES {
            inner.rooms.clear();
            inner.entries = 0;
        }
        let Inner { rooms, entries, version, .. } = inner;
        // A hit (every post, every join) clones no name.
        if !rooms.contains_key(room) {
            rooms.insert(room.clone(), HashMap::new());
        }
        let Some(slots) = rooms.get_mut(room) else { return (Slot::default(), *version) };
        let slot = slots.entry(party).or_insert_with(|| {
            *entries += 1;
            Slot::default()
        });
        (slot.clone(), *version)
    }

    /// `room` changed: its entries go.
    pub fn forget(&self, room: &RoomName) {
        let mut inner = self.lock();
        inner.version += 1;
        if let Some(gone) = inner.rooms.remove(room) {
            inner.entries = inner.entries.saturating_sub(gone.len());
        }
    }

    /// `party`'s standing in `room` changed: its entry and the room's go,
    /// the other parties' stand. (`Anyone`: what the room is changed, slow
    /// mode say, which every party's entry holds too: all go.)
    pub fn forget_party(&self, room: &RoomName, party: Party) {
        if party == Party::Anyone {
            return self.forget(room);
        }
        let mut inner = self.lock();
        inner.version += 1;
        let Some(slots) = inner.rooms.get_mut(room) else { return };
        let gone = usize::from(slots.remove(&Party::Anyone).is_some()) + usize::from(slots.remove(&party).is_some());
        inner.entries = inner.entries.saturating_sub(gone);
    }

    /// Whether entries are used: only while every change is heard.
    pub fn set_trusted(&self, trusted: bool) {
        let mut inner = self.lock();
        inner.version += 1;
        inner.rooms.clear();
        inner.entries = 0;
        inner.trusted = trusted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("room")
    }

    const PRIVATE: Standing = Standing {
        created: true,
        private: true,
        role: None,
        banned: false,
        banned_until_ms: None,
        has_bans: false,
        slow_mode_secs: 0,
        admin: false,
    };

    #[tokio::test]
    async fn a_crowd_costs_one_read_and_a_change_costs_the_next() {
        let cache = Arc::new(StandingCache::new(true));
        let reads = Arc::new(AtomicUsize::new(0));
        let read = {
            let reads = reads.clone();
            move || {
                let reads = reads.clone();
                async move {
                    reads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(PRIVATE)
                }
            }
        };
        let crowd: Vec<_> = (0..50)
            .map(|_| {
                let (cache, read) = (cache.clone(), read.clone());
                tokio::spawn(async move { cache.get_or_load(&room("ops"), Party::Anyone, read).await })
            })
            .collect();
        for joiner in crowd {
            assert_eq!(joiner.await.expect("task").expect("standing"), PRIVATE);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        cache.forget(&room("ops"));
        cache.get_or_load(&room("ops"), Party::Anyone, read.clone()).await.expect("standing");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_load_that_a_change_overtook_is_not_kept_and_untrusted_nodes_keep_nothing() {
        let cache = Arc::new(StandingCache::new(true));
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load(&room("ops"), Party::User(1), || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Standing { role: Some(chat_shared::api::Role::Member), ..PRIVATE })
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        cache.forget(&room("ops"));
        slow.await.expect("task").expect("standing");
        let now = cache.get_or_load(&room("ops"), Party::User(1), || async { Ok(PRIVATE) }).await.expect("standing");
        assert_eq!(now, PRIVATE, "the member removed meanwhile is not let in from the cache");

        cache.set_trusted(false);
        cache.get_or_load(&room("ops"), Party::Anyone, || async { Ok(PRIVATE) }).await.expect("standing");
        let again = cache.get_or_load(&room("ops"), Party::Anyone, || async { Ok(Standing::default()) }).await;
        assert_eq!(again.expect("standing"), Standing::default(), "read again");
    }
}
