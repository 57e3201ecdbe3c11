//! The room bus of several nodes: Redis pub/sub carries each room's events
//! between them, and the history store fills whatever pub/sub lost.
//!
//! Each hub shard has its own [`RedisBus`]: the shard's side is a pair of
//! queues (it never waits), and a task of its own (`link`) holds the Redis
//! subscription, puts messages in order (`sequencer`), reads gaps and
//! missed stretches from the store, and reconnects by itself; publishing
//! goes through another task (`publisher`), which pipelines and, while Redis
//! is away, keeps the messages to publish once it is back.
//!
//! One channel per room, named after the history's epoch (nodes of another
//! history on the same Redis never hear these), carrying JSON [`Envelope`]s.
//! A node hears its own events at once, through the same sequencer, and
//! skips their echo from Redis.

mod counts;
mod link;
mod publisher;
mod sequencer;

pub use counts::exchange_counts;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chat_shared::{Epoch, RoomName};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{BusEvent, NodeId, Published, RoomBus};
use crate::metrics::Metrics;
use crate::store::HistoryStore;

/// Events a shard has not taken yet, per shard; past this the bus task waits
/// (and Redis buffers, up to its own limit for subscribers).
const EVENT_QUEUE_CAPACITY: usize = 4096;

/// What travels on a room's channel.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The node that published it (which skips it when it comes back).
    node: NodeId,
    /// The event.
    published: Published,
}

/// A room event as `node` publishes it: its room's channel and the encoded
/// envelope. Presence announces with it, on a dead node's behalf, that its
/// members are gone (every live node hears it, none skips it as its own).
pub fn announcement(epoch: &Epoch, node: NodeId, published: Published) -> serde_json::Result<(String, Vec<u8>)> {
    let channel = Channels::new(epoch).of(&published.room);
    Ok((channel, serde_json::to_vec(&Envelope { node, published })?))
}

/// Names the channels of one history.
#[derive(Debug, Clone)]
struct Channels {
    prefix: String,
}

impl Channels {
    fn new(epoch: &Epoch) -> Self {
        Self { prefix: format!("chat:{}:room:", epoch.as_str()) }
    }

    fn of(&self, room: &RoomName) -> String {
        format!("{}{}", self.prefix, room.as_str())
    }

    fn room(&self, channel: &str) -> Option<RoomName> {
        RoomName::parse(channel.strip_prefix(&self.prefix)?).ok()
    }
}

/// A Redis server's URL; logs and `Debug` leave its password out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// A client for it (nothing is connected yet).
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        redis::Client::open(self.0.as_str())
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if ["redis://", "rediss://", "redis+unix://", "unix://"].iter().any(|scheme| value.starts_with(scheme)) {
            Ok(Self(value.to_owned()))
        } else {
            Err("a Redis URL starts with redis://, rediss:// or unix://".into())
        }
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::store::location::redacted(&self.0))
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Whether each shard's bus holds a live Redis subscription, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct BusHealth {
    links: Vec<Arc<AtomicBool>>,
}

impl BusHealth {
    /// Whether every bus is connected (there is at least one).
    pub fn connected(&self) -> bool {
        !self.links.is_empty() && self.links.iter().all(|link| link.load(Ordering::Relaxed))
    }
}

/// What the shard side does before its task runs: the task starts on the
/// runtime of the hub that first uses the bus.
type Unstarted = Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>;

/// A shard's side of the Redis bus.
pub struct RedisBus {
    node: NodeId,
    commands: mpsc::UnboundedSender<link::Command>,
    events: mpsc::Receiver<(u64, BusEvent)>,
    /// Rooms subscribed, and which subscription each is: events of an older
    /// one (queued before an unsubscribe) are not this one's.
    subscribed: HashMap<RoomName, u64>,
    generations: u64,
    task: Unstarted,
}

impl RedisBus {
    /// One bus per hub shard of a node, all sharing `client`'s server and
    /// `node`'s id; `health` learns of each.
    pub fn for_shards(
        client: &redis::Client,
        store: &Arc<dyn HistoryStore>,
        node: NodeId,
        shards: usize,
        metrics: &Metrics,
    ) -> (Vec<Self>, BusHealth) {
        let mut health = BusHealth::default();
        let buses = (0..shards)
            .map(|_| {
                let connected = Arc::new(AtomicBool::new(false));
                health.links.push(connected.clone());
                Self::new(client.clone(), store.clone(), node, connected, metrics.clone())
            })
            .collect();
        (buses, health)
    }

    fn new(
        client: redis::Client,
        store: Arc<dyn HistoryStore>,
        node: NodeId,
        connected: Arc<AtomicBool>,
        metrics: Metrics,
    ) -> Self {
        let (commands, command_queue) = mpsc::unbounded_channel();
        let (event_queue, events) = mpsc::channel(EVENT_QUEUE_CAPACITY);
        let channels = Channels::new(store.epoch());
        let task = link::BusTask::new(link::BusParts {
            client,
            store,
            node,
            channels,
            commands: command_queue,
            events: event_queue,
            connected,
            metrics,
        });
        Self { node, commands, events, subscribed: HashMap::new(), generations: 0, task: Some(Box::pin(task.run())) }
    }

    fn start(&mut self) {
        if let Some(task) = self.task.take() {
            tokio::spawn(task);
        }
    }

    fn send(&mut self, command: link::Command) {
        self.start();
        // The task ends only when this side is dropped.
        let _ = self.commands.send(command);
    }

    /// Whether an event of subscription `generation` is still this bus's.
    fn current(&self, generation: u64, event: &BusEvent) -> bool {
        let room = match event {
            BusEvent::Room(published) => &published.room,
            BusEvent::Ready(room) => room,
        };
        self.subscribed.get(room) == Some(&generation)
    }
}

#[async_trait]
impl RoomBus for RedisBus {
    fn node(&self) -> NodeId {
        self.node
    }

    fn publish(&mut self, published: Published) {
        self.send(link::Command::Publish(published));
    }

    fn subscribe(&mut self, room: &RoomName) {
        if !self.subscribed.contains_key(room) {
            self.generations += 1;
            self.subscribed.insert(room.clone(), self.generations);
            self.send(link::Command::Subscribe(room.clone(), self.generations));
        }
    }

    fn unsubscribe(&mut self, room: &RoomName) {
        if self.subscribed.remove(room).is_some() {
            self.send(link::Command::Unsubscribe(room.clone()));
        }
    }

    fn try_next(&mut self) -> Option<BusEvent> {
        while let Ok((generation, event)) = self.events.try_recv() {
            if self.current(generation, &event) {
                return Some(event);
            }
        }
        None
    }

    async fn next(&mut self) -> BusEvent {
        self.start();
        loop {
            match self.events.recv().await {
                Some((generation, event)) if self.current(generation, &event) => return event,
                Some(_) => {}
                // The task stopped (it ends only if this side is dropped).
                None => std::future::pending().await,
            }
        }
    }
}

/// A random id for this process, so nodes tell their own events apart.
pub fn random_node_id() -> NodeId {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    // 0 is the single-process bus's node.
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_per_history_and_read_back() {
        let channels = Channels::new(&Epoch::parse("e1").expect("epoch"));
        let dev = RoomName::parse("dev").expect("room");
        assert_eq!(channels.of(&dev), "chat:e1:room:dev");
        assert_eq!(channels.room("chat:e1:room:dev"), Some(dev));
        assert_eq!(channels.room("chat:e2:room:dev"), None, "another history");
        assert_eq!(channels.room("chat:e1:room:"), None);
    }

    #[test]
    fn redis_urls_are_checked_and_shown_without_their_password() {
        let url: RedisUrl = "redis://:s3cret@cache:6379/2".parse().expect("url");
        assert_eq!(url.to_string(), "redis://:***@cache:6379/2");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.client().is_ok());
        assert!("cache:6379".parse::<RedisUrl>().is_err());
    }

    #[test]
    fn node_ids_differ_between_calls_and_are_never_the_single_process_id() {
        let (a, b) = (random_node_id(), random_node_id());
        assert_ne!(a, b);
        assert!(a != 0 && b != 0);
    }
}
