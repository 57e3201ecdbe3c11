//! Who may enter which room: created rooms (open or private), their
//! members and invite links, and the rules ([`rules::decide`]) that the
//! socket sessions and the HTTP API both apply.
//!
//! A join asks [`RoomPolicy::may_read`], answered from a per-node cache
//! ([`cache`]) that a room's change clears on every node ([`relay`]); the
//! session then watches its room ([`changes`]) and checks again when it
//! changes, so a member removed on any node stops receiving the room at
//! once. The HTTP API's decisions read the database ([`RoomPolicy::fresh_standing`]).

pub mod cache;
pub mod changes;
pub mod relay;
pub mod rules;
pub mod sql;
pub mod store;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use chat_shared::RoomName;

use cache::StandingCache;
use changes::{RoomChanges, RoomWatch};
use relay::ChangeRelay;
use rules::{Action, Caller, Denial, Standing, decide};
use store::RoomStore;

use crate::store::StoreError;

/// Created rooms and who may enter them, for this node.
pub struct RoomPolicy {
    store: Arc<dyn RoomStore>,
    cache: StandingCache,
    changes: RoomChanges,
    /// Every private room's name: kept out of the room lists everyone sees.
    private_names: RwLock<HashSet<RoomName>>,
    /// Tells the other nodes of changes (several nodes).
    relay: OnceLock<ChangeRelay>,
}

impl RoomPolicy {
    /// The policy of rooms kept in `store`; `alone` when this node is the
    /// only one (it hears every change, so its cache is trusted from the start).
    pub async fn new(store: Arc<dyn RoomStore>, alone: bool) -> Self {
        let policy = Self {
            store,
            cache: StandingCache::new(alone),
            changes: RoomChanges::default(),
            private_names: RwLock::default(),
            relay: OnceLock::new(),
        };
        policy.reload_private_names().await;
        policy
    }

    /// Hears and tells the other nodes' changes through Redis.
    pub fn relay_through(self: &Arc<Self>, client: redis::Client, epoch: &chat_shared::Epoch) {
        let _ = self.relay.set(ChangeRelay::start(client, epoch, self));
    }

    /// The rooms, durably.
    pub fn store(&self) -> &dyn RoomStore {
        self.store.as_ref()
    }

    /// Whether `room` is private, as far as this node knows (for the room
    /// lists; entering is decided by [`Self::may_read`]).
    pub fn is_private(&self, room: &RoomName) -> bool {
        self.private_names.read().unwrap_or_else(PoisonError::into_inner).contains(room)
    }

    /// Whether `caller` may enter and read `room` (cached; see the module doc).
    pub async fn may_read(&self, caller: Caller, room: &RoomName) -> Result<Result<(), Denial>, StoreError> {
        // What the room is costs one entry per room; who is in it, one per
        // member, asked only of private rooms.
        let load = |user| move || self.store.standing(room.as_str(), user);
        let mut standing = self.cache.get_or_load(room, None, load(None)).await?;
        if standing.private
            && let Some(user) = caller.account()
        {
            standing = self.cache.get_or_load(room, Some(user), load(Some(user))).await?;
        }
        Ok(decide(caller, standing, Action::Read))
    }

    /// `caller`'s standing in `room`, read from the database (for the
    /// HTTP API's decisions, which change things).
    pub async fn fresh_standing(&self, caller: Caller, room: &RoomName) -> Result<Standing, StoreError> {
        self.store.standing(room.as_str(), caller.account()).await
    }

    /// Watches `room` for changes (before deciding on a join, so a change
    /// right after the decision is not missed).
    pub fn watch(&self, room: &RoomName) -> RoomWatch {
        self.changes.watch(room)
    }

    /// This node changed `room` in the store: every node forgets what it
    /// knew of it and the room's sessions check again.
    pub async fn changed(&self, room: &RoomName) {
        self.heard(room).await;
        if let Some(relay) = self.relay.get() {
            relay.publish(room).await;
        }
    }

    /// `room` changed (here or on another node).
    async fn heard(&self, room: &RoomName) {
        self.cache.forget(room);
        match self.store.standing(room.as_str(), None).await {
            Ok(standing) => {
                let mut names = self.private_names.write().unwrap_or_else(PoisonError::into_inner);
                if standing.private {
                    names.insert(room.clone());
                } else {
                    names.remove(room);
                }
            }
            Err(error) => tracing::warn!(%error, %room, "cannot read a changed room"),
        }
        self.changes.notify(room);
    }

    /// Changes may be missed from now on: nothing cached is trusted.
    fn lost(&self) {
        self.cache.set_trusted(false);
    }

    /// Every change is heard again: what was missed meanwhile is read anew,
    /// and every session checks again.
    async fn regained(&self) {
        self.cache.set_trusted(true);
        self.reload_private_names().await;
        self.changes.notify_all();
    }

    async fn reload_private_names(&self) {
        match self.store.private_rooms().await {
            Ok(names) => {
                let names = names.into_iter().filter_map(|name| RoomName::parse(name).ok()).collect();
                *self.private_names.write().unwrap_or_else(PoisonError::into_inner) = names;
            }
            Err(error) => tracing::warn!(%error, "cannot read which rooms are private"),
        }
    }
}
