//! The heartbeat of a node's presence: it keeps the node's names alive, keeps
//! the node among the live nodes, and buries the nodes that stopped beating.
//!
//! Every [`BEATS_PER_TTL`]th of the entry lifetime (a second) the node
//! tells Redis it is alive for two thirds of that lifetime more (ten
//! seconds), by Redis's clock: nodes' clocks need not agree. Any node that
//! finds another past its time buries it (one script claims the burial, so
//! one of several survivors does it): the dead node's names are freed, a
//! chunk at a time, and each of its members is announced as gone in its
//! room, on the dead node's behalf.
//! A node that was only late (a long pause, Redis out of its reach) finds
//! its burial mark at its next beat, takes its names back and announces
//! them as joined again. Every third of the lifetime it refreshes its names.

use std::collections::{HashMap, HashSet};
use std::sync::Weak;
use std::time::Duration;

use chat_shared::limits::PRESENCE_EVENTS_MAX;
use chat_shared::{Nickname, RoomName};

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::{Held, RedisPresence, failed, holder_field, scripts};
use crate::bus::redis::announcement;
use crate::bus::{NodeId, Peer, Published, RoomEvent};
use crate::presence::{LostName, Presence, PresenceError};

/// Beats per entry lifetime (one a second for 15 s entries).
const BEATS_PER_TTL: u32 = 15;

/// Beats between refreshes of the node's names (a third of their lifetime).
const BEATS_PER_REFRESH: u32 = BEATS_PER_TTL / 3;

/// Names a survivor frees per script when it buries a node.
const FREE_CHUNK: usize = 500;

/// How long a burial mark stays: a node late by more than this never
/// learns it was buried (its names are refreshed back all the same).
const BURIAL_MARK_SECONDS: u64 = 3600;

/// What a refresh found.
#[derive(Debug, Default)]
struct Refreshed {
    /// Names another node took meanwhile.
    lost: usize,
    /// Names still this node's (refreshed, or taken again where the entry
    /// was gone), with their holder values; listed only for a come-back
    /// (the regular refresh every 5 s need not copy every name).
    ours: Vec<(Held, String)>,
}

/// Beats while the presence lives.
pub(super) async fn run(presence: Weak<RedisPresence>) {
    let Some(every) = presence.upgrade().map(|presence| presence.ttl / BEATS_PER_TTL) else { return };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for beat in 1u32.. {
        ticks.tick().await;
        let Some(presence) = presence.upgrade() else { return };
        if let Err(error) = presence.beat().await {
            tracing::warn!(%error, "presence heartbeat failed; retrying");
        }
        if beat % BEATS_PER_REFRESH == 0 {
            let unreleased = presence.release_again().await;
            if unreleased > 0 {
                tracing::warn!(unreleased, "names given back here are not released in redis yet; retrying");
            }
            match presence.refresh(false).await {
                Ok(Refreshed { lost: 0, .. }) => {}
                Ok(Refreshed { lost, .. }) => {
                    tracing::warn!(lost, "names held here were taken on another node while redis was away");
                }
                Err(error) => tracing::warn!(%error, "refreshing presence failed; retrying"),
            }
        }
    }
}

/// Watches the lease while the presence lives, on its own clock (a beat may
/// hang for seconds on a Redis that does not answer): once it runs out, the
/// connections holding names here are closed, once per lapse.
pub(super) async fn watch_lease(presence: Weak<RedisPresence>) {
    let Some(every) = presence.upgrade().map(|presence| presence.ttl / (BEATS_PER_TTL * 4)) else { return };
    let mut fenced_lease = None;
    loop {
        tokio::time::sleep(every).await;
        let Some(presence) = presence.upgrade() else { return };
        // Cut off (or frozen) for nearly as long as the others wait before they
        // bury this node: its names may go to others any moment now.
        let lease = presence.lease_until.load(Ordering::Acquire);
        if presence.lease_expired() && fenced_lease != Some(lease) {
            fenced_lease = Some(lease);
            presence.fence();
        }
    }
}

impl RedisPresence {
    /// Tells Redis this node is alive; buries the nodes past their time;
    /// comes back if this node was buried itself.
    /// Returns how long until presence takes claims (zero unless Redis
    /// lost its data, or the history is new, moments ago).
    pub(super) async fn beat(&self) -> Result<Duration, PresenceError> {
        let sent_at = std::time::Instant::now();
        let mut connection = self.connection.clone();
        let alive_for = self.ttl_millis() * 2 / 3;
        let known = self.incarnation.lock().unwrap_or_else(PoisonError::into_inner).clone();
        // A node that held nothing and knew no incarnation, of a history never
        // used, lost nothing if Redis did.
        let may_have_lost = known.is_some() || !self.held().is_empty() || self.history_in_use.load(Ordering::Relaxed);
        let (buried, expired, incarnation, ready_in, redis_now): (bool, Vec<NodeId>, String, u64, u64) = self
            .scripts
            .beat
            .key(self.keys.nodes())
            .key(self.keys.buried(self.node))
            .key(self.keys.burials())
            .key(self.keys.incarnation())
            .arg(self.node)
            .arg(alive_for)
            .arg(self.burial_stalls_after())
            .arg(known.as_deref().unwrap_or_default())
            .arg(self.restore_grace())
            .arg(format!("{:016x}", crate::bus::redis::random_node_id()))
            .arg(u8::from(may_have_lost))
            .arg(self.fresh_wait())
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        self.set_redis_clock(sent_at, redis_now);
        if known.as_ref().is_some_and(|known| *known != incarnation) {
            // Redis lost its data: every name is missing, and claims wait
            // until the nodes have had time to take theirs back. Now, not at
            // the next regular refresh.
            let Refreshed { lost, .. } = self.refresh(false).await?;
            tracing::warn!(lost, "redis lost presence (restarted empty?); this node's names are taken back");
        }
        *self.incarnation.lock().unwrap_or_else(PoisonError::into_inner) = Some(incarnation);
        // Redis counts this node alive for `alive_for` from when it ran the
        // script, which is after `sent_at`: the lease ends a margin before that.
        let lease = self.elapsed_millis(sent_at) + alive_for.saturating_sub(self.fence_margin());
        self.lease_until.fetch_max(lease, Ordering::AcqRel);
        if buried {
            self.come_back().await?;
        }
        for node in expired.into_iter().filter(|node| *node != self.node) {
            self.bury(node).await?;
        }
        Ok(Duration::from_millis(ready_in))
    }

    /// Buries `node` (if no other survivor did first, or takes on a burial
    /// of it that stalled), frees its names a chunk at a time and tells the
    /// rooms its members left.
    async fn bury(&self, node: NodeId) -> Result<(), PresenceError> {
        let mut connection = self.connection.clone();
        let burying = self.keys.burying(node);
        let buried: bool = self
            .scripts
            .bury
            .key(self.keys.nodes())
            .key(self.keys.held_by(node))
            .key(self.keys.buried(node))
            .key(&burying)
            .key(self.keys.burials())
            .arg(node)
            .arg(BURIAL_MARK_SECONDS)
            .arg(self.burial_stalls_after())
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        if !buried {
            return Ok(());
        }
        let members = self.read_held(&burying).await?;
        // Crowded rooms (counted before anyone is freed) get no presence events.
        let mut rooms: Vec<&RoomName> = members.iter().map(|(held, _)| &held.room).collect();
        rooms.sort();
        rooms.dedup();
        let mut sizes = redis::pipe();
        for room in &rooms {
            sizes.zcard(self.keys.names(room));
        }
        let sizes: Vec<usize> =
            if rooms.is_empty() { Vec::new() } else { sizes.query_async(&mut connection).await.map_err(failed)? };
        let crowded: HashSet<&RoomName> =
            rooms.iter().zip(sizes).filter(|(_, size)| *size > PRESENCE_EVENTS_MAX).map(|(room, _)| *room).collect();
        let mut announced = 0;
        for chunk in members.chunks(FREE_CHUNK) {
            let mut free = self.scripts.free.prepare_invoke();
            free.key(&burying).arg(self.keys.prefix()).arg(node);
            for (held, holder) in chunk {
                free.arg(held.room.as_str()).arg(held.nick.as_str()).arg(held.connection).arg(holder);
            }
            let freed: Vec<usize> = free.invoke_async(&mut connection).await.map_err(failed)?;
            let events = freed
                .into_iter()
                .filter_map(|index| chunk.get(index))
                .filter(|(held, _)| !crowded.contains(&held.room))
                .map(|(held, _)| {
                    let member = Peer { node, connection: held.connection };
                    let event = RoomEvent::MemberLeft { nick: held.nick.clone(), member };
                    Published { room: held.room.clone(), event }
                })
                .collect();
            announced += self.announce(node, events).await?;
        }
        let mut done = redis::pipe();
        done.del(&burying).ignore().zrem(self.keys.burials(), node).ignore();
        done.query_async::<()>(&mut connection).await.map_err(failed)?;
        tracing::info!(node, announced, "a node stopped beating: its names are free and its members announced as gone");
        Ok(())
    }

    /// How long before the others may bury this node it stops speaking for
    /// its names (two beats: 2 s).
    fn fence_margin(&self) -> u64 {
        self.ttl_millis() * 2 / BEATS_PER_TTL as u64
    }

    /// Closes every connection holding a name here: this node has not
    /// reached Redis for so long that the others may bury it and give its
    /// names away. Its clients come back, through this node or another, and
    /// take their names again (their tabs may).
    fn fence(&self) {
        let held: Vec<(Held, String)> = self.held().iter().map(|(h, v)| (h.clone(), v.clone())).collect();
        tracing::warn!(
            names = held.len(),
            "cut off from presence too long: closing the connections holding names here"
        );
        for (held, _) in held {
            // Nobody listens in tests of presence alone.
            let _ = self.lost.send(LostName { room: held.room, connection: held.connection });
        }
    }

    /// How long a mark made by a node that just started waits: two beats,
    /// so every live node beats once before claims are taken.
    fn fresh_wait(&self) -> u64 {
        self.ttl_millis() * 2 / u64::from(BEATS_PER_TTL)
    }

    /// How long after Redis lost its data nobody may claim a name: as long
    /// as a node counts itself alive after its last beat (two thirds of the
    /// entry lifetime, 10 s). A live node learns of the loss at its next
    /// beat and takes its names back; one cut off from Redis meanwhile
    /// cannot, but its lease (counted from its last beat, which came before
    /// the loss) ends within this and it closes its holders first. The fault
    /// run found 5 s too short: an impostor got the names of a node cut off
    /// from Redis 0.2 s before its lease ended.
    fn restore_grace(&self) -> u64 {
        self.ttl_millis() * 2 / 3
    }

    /// How long a burial under way may go unheard of before another node
    /// takes it on (a third of the entry lifetime: 5 s; one takes well
    /// under a second).
    fn burial_stalls_after(&self) -> u64 {
        self.ttl_millis() / 3
    }

    /// What a held hash lists, read a chunk at a time (`HSCAN`, so Redis is
    /// never busy with all of it at once).
    async fn read_held(&self, key: &str) -> Result<Vec<(Held, String)>, PresenceError> {
        let mut connection = self.connection.clone();
        let mut all: HashMap<String, String> = HashMap::new();
        let mut cursor = 0u64;
        loop {
            let (next, fields): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(key)
                .arg(cursor)
                .arg("COUNT")
                .arg(FREE_CHUNK)
                .query_async(&mut connection)
                .await
                .map_err(failed)?;
            all.extend(fields);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(all
            .into_iter()
            .filter_map(|(field, holder)| {
                let mut parts = field.splitn(3, ' ');
                let (room, connection, nick) = (parts.next()?, parts.next()?, parts.next()?);
                let held = Held {
                    room: RoomName::parse(room).ok()?,
                    nick: Nickname::parse(nick).ok()?,
                    connection: connection.parse().ok()?,
                };
                Some((held, holder))
            })
            .collect())
    }

    /// This node was taken for dead, and its burial is over: takes its
    /// names back at once (the burial freed them) and tells
    /// the other nodes' members they are here (this node's never heard them leave).
    async fn come_back(&self) -> Result<(), PresenceError> {
        // Every name still ours was announced as gone (if this fails half
        // way, the next beat comes back again and announces them all).
        let Refreshed { lost, ours } = self.refresh(true).await?;
        let mut per_room: HashMap<&RoomName, usize> = HashMap::new();
        for (held, _) in &ours {
            *per_room.entry(&held.room).or_default() += 1;
        }
        let events = ours
            .iter()
            .filter(|(held, _)| per_room.get(&held.room).is_some_and(|n| *n <= PRESENCE_EVENTS_MAX))
            .map(|(held, _)| {
                let member = Peer { node: self.node, connection: held.connection };
                let event = RoomEvent::MemberJoined { nick: held.nick.clone(), member };
                Published { room: held.room.clone(), event }
            })
            .collect();
        let announced = self.announce(self.node, events).await?;
        let mut connection = self.connection.clone();
        redis::cmd("DEL").arg(self.keys.buried(self.node)).query_async::<()>(&mut connection).await.map_err(failed)?;
        tracing::warn!(lost, announced, "this node was taken for dead (it missed its beats); its names are back");
        Ok(())
    }

    /// Publishes `events` on `node`'s behalf; how many went out.
    async fn announce(&self, node: NodeId, events: Vec<Published>) -> Result<usize, PresenceError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut pipeline = redis::pipe();
        let mut announced = 0;
        for published in events {
            match announcement(&self.epoch, node, published) {
                Ok((channel, payload)) => {
                    pipeline.publish(channel, payload).ignore();
                    announced += 1;
                }
                Err(error) => tracing::error!(%error, "cannot encode a presence event"),
            }
        }
        let mut connection = self.connection.clone();
        pipeline.query_async::<()>(&mut connection).await.map_err(failed)?;
        Ok(announced)
    }

    /// Refreshes every name this node holds (taking back those whose entry
    /// is gone); `list_ours`: also list the names still this node's.
    async fn refresh(&self, list_ours: bool) -> Result<Refreshed, PresenceError> {
        let held: Vec<(Held, String)> = self.held().iter().map(|(h, v)| (h.clone(), v.clone())).collect();
        let mut refreshed = Refreshed::default();
        if held.is_empty() {
            return Ok(refreshed);
        }
        let mut connection = self.connection.clone();
        // Loaded each time: Redis may have restarted without it since.
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(scripts::REFRESH)
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        // Pipelined in chunks: one round trip per thousand names.
        for chunk in held.chunks(1000) {
            let mut pipeline = redis::pipe();
            for (entry, value) in chunk {
                pipeline
                    .cmd("EVALSHA")
                    .arg(&sha)
                    .arg(3)
                    .arg(self.keys.entry(&entry.room, &entry.nick))
                    .arg(self.keys.names(&entry.room))
                    .arg(self.keys.held_by(self.node))
                    .arg(holder_field(Peer { node: self.node, connection: entry.connection }))
                    .arg(value)
                    .arg(self.ttl_millis())
                    .arg(entry.nick.as_str())
                    .arg(entry.field())
                    .arg(self.deadline());
            }
            let kept: Vec<i64> = pipeline.query_async(&mut connection).await.map_err(failed)?;
            for (answer, entry) in kept.into_iter().zip(chunk) {
                match answer {
                    0 => {
                        // Not this node's any more: refreshing it back later
                        // (once its new holder gives it up) would steal it.
                        let mut held = self.held();
                        if held.get(&entry.0) == Some(&entry.1) {
                            held.remove(&entry.0);
                        }
                        refreshed.lost += 1;
                        // Its connection cannot go on under a name someone else holds.
                        let lost = LostName { room: entry.0.room.clone(), connection: entry.0.connection };
                        // Nobody listens in tests of presence alone.
                        let _ = self.lost.send(lost);
                    }
                    // Too late to do anything: the next refresh will.
                    4 => {}
                    // Taken again, but its connection gave it back meanwhile: give it back again.
                    2 | 3 if self.held().get(&entry.0) != Some(&entry.1) => {
                        self.give_back_later(entry.0.clone(), entry.1.clone(), std::time::Instant::now());
                    }
                    // Back beside its user's other connections: the room never heard it leave.
                    3 => {}
                    _ if list_ours => refreshed.ours.push(entry.clone()),
                    _ => {}
                }
            }
        }
        Ok(refreshed)
    }
}
