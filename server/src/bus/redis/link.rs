//! A Redis bus's task: holds the subscription of one hub shard's rooms,
//! sequences what it hears and what its shard publishes, reads from the
//! store what pub/sub lost, and reconnects (resubscribing, then reading
//! what was stored meanwhile) whenever the link to Redis breaks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_shared::{ChatMessage, RoomName};
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::publisher::{self, Outgoing};
use super::sequencer::{Gap, Sequencer};
use super::{Channels, Envelope};
use crate::bus::{BusEvent, NodeId, Published, RoomEvent};
use crate::metrics::{GaugeShare, Metrics};
use crate::store::{HistoryStore, Page};

/// How long one Redis request may take before the link counts as broken.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How often an idle link is pinged, so a Redis that stopped answering
/// (not only one that closed the connection) is noticed.
const PING_EVERY: Duration = Duration::from_secs(5);

/// How long a ping may go unanswered. Longer than other requests: a false
/// alarm costs a reconnect, which loses the presence events sent meanwhile
/// (a loaded machine answered pings in over 2 s); a hung Redis is still
/// noticed within 10 s.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The first wait before reconnecting, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Messages read from the store per page when catching up.
const CATCH_UP_PAGE: u32 = 500;

/// Rooms whose first missed messages are read in one query after a
/// reconnect, and how many of each ([`CATCH_UP_PAGE`] at a time after that).
const CATCH_UP_ROOMS: usize = 200;
const CATCH_UP_FIRST: u32 = 50;

/// Most channels per SUBSCRIBE, and rooms per newest-ids query, when
/// subscribing many rooms at once.
const SUBSCRIBE_CHUNK: usize = 1000;

/// Most commands taken from the shard's queue in one turn (subscriptions
/// among them are made together).
const COMMANDS_PER_TURN: usize = 4096;

/// How reading a gap went.
#[derive(Debug, PartialEq, Eq)]
enum GapRead {
    Done,
    /// The store failed; the gap is tried again later.
    Failed,
}

/// What a shard asks of its bus task.
pub(super) enum Command {
    Publish(Published),
    Subscribe(RoomName, u64),
    Unsubscribe(RoomName),
}

/// A change of the subscription connection's channels.
enum Change {
    Subscribe(Vec<String>),
    Unsubscribe(String),
}

/// A live subscription connection.
struct Link {
    sink: PubSubSink,
    stream: PubSubStream,
    next_ping: Instant,
}

/// What a bus task is made of.
pub(super) struct BusParts {
    pub(super) client: redis::Client,
    pub(super) store: Arc<dyn HistoryStore>,
    pub(super) node: NodeId,
    pub(super) channels: Channels,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) events: mpsc::Sender<(u64, BusEvent)>,
    pub(super) connected: Arc<AtomicBool>,
    pub(super) metrics: Metrics,
}

pub(super) struct BusTask {
    parts: BusParts,
    sequencer: Sequencer,
    publish: mpsc::UnboundedSender<Outgoing>,
    publisher: Option<publisher::Publisher>,
    link: Option<Link>,
    reconnect_at: Instant,
    backoff: Duration,
    /// This bus's share of the messages-held-ahead gauge.
    held_ahead: GaugeShare,
}

/// The hub is gone: the task ends.
struct HubGone;

/// The link to Redis broke.
struct LinkBroken;

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl BusTask {
    pub(super) fn new(parts: BusParts) -> Self {
        let (publish, outgoing) = mpsc::unbounded_channel();
        let publisher = publisher::Publisher::new(parts.client.clone(), outgoing, parts.metrics.clone());
        let held_ahead = GaugeShare::of(&parts.metrics.held.bus_ahead);
        Self {
            parts,
            sequencer: Sequencer::default(),
            publish,
            publisher: Some(publisher),
            link: None,
            reconnect_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            held_ahead,
        }
    }

    pub(super) async fn run(mut self) {
        if let Some(publisher) = self.publisher.take() {
            tokio::spawn(publisher.run());
        }
        while self.turn().await.is_ok() {
            self.held_ahead.report(self.sequencer.held());
        }
        self.parts.connected.store(false, Ordering::Relaxed);
    }

    /// Waits for one thing to do and does it.
    async fn turn(&mut self) -> Result<(), HubGone> {
        let wake = self.next_wake();
        tokio::select! {
            command = self.parts.commands.recv() => match command {
                Some(command) => self.commands(command).await,
                None => Err(HubGone),
            },
            heard = next_heard(&mut self.link) => match heard {
                Some(message) => self.heard(message.get_channel_name(), message.get_payload_bytes()).await,
                None => {
                    self.lost("the subscription connection closed");
                    Ok(())
                }
            },
            () = tokio::time::sleep_until(wake.into()) => self.tick().await,
        }
    }

    /// The next time something is due: a reconnect, a ping, a gap to read.
    fn next_wake(&self) -> Instant {
        let link = match &self.link {
            Some(link) => link.next_ping,
            None => self.reconnect_at,
        };
        self.sequencer.next_due().map_or(link, |gap| gap.min(link))
    }

    /// Carries out `first` and whatever else the shard queued meanwhile, in
    /// order; rooms to subscribe in a row are subscribed together (one
    /// SUBSCRIBE, one read of their newest ids), not one round trip each.
    async fn commands(&mut self, first: Command) -> Result<(), HubGone> {
        let mut subscribing = Vec::new();
        let mut next = Some(first);
        let mut taken = 1;
        while let Some(command) = next.take() {
            match command {
                Command::Subscribe(room, generation) => subscribing.push((room, generation)),
                other => {
                    self.subscribe(std::mem::take(&mut subscribing)).await?;
                    self.command(other).await?;
                }
            }
            if taken < COMMANDS_PER_TURN {
                next = self.parts.commands.try_recv().ok();
                taken += 1;
            }
        }
        self.subscribe(subscribing).await
    }

    /// Subscribes `rooms`, reads their baselines, and tells the shard each is ready.
    async fn subscribe(&mut self, rooms: Vec<(RoomName, u64)>) -> Result<(), HubGone> {
        if rooms.is_empty() {
            return Ok(());
        }
        for (room, generation) in &rooms {
            self.sequencer.subscribe(room.clone(), *generation);
        }
        let names: Vec<RoomName> = rooms.into_iter().map(|(room, _)| room).collect();
        if self.link.is_some() {
            let channels: Vec<String> = names.iter().map(|room| self.parts.channels.of(room)).collect();
            for chunk in channels.chunks(SUBSCRIBE_CHUNK) {
                if self.change(Change::Subscribe(chunk.to_vec())).await.is_err() {
                    self.lost("subscribing failed");
                    break;
                }
            }
        }
        // Subscribed (or not connected: then the reconnect reads what this
        // node missed): what is stored from here on will be heard.
        self.set_baselines(&names).await?;
        for room in names {
            self.emit_to(&room, BusEvent::Ready(room.clone())).await?;
        }
        Ok(())
    }

    async fn command(&mut self, command: Command) -> Result<(), HubGone> {
        match command {
            Command::Publish(published) => {
                let channel = self.parts.channels.of(&published.room);
                let message = published.event.message_id().is_some();
                let envelope = Envelope { node: self.parts.node, published };
                match serde_json::to_vec(&envelope) {
                    Ok(payload) => {
                        let _ = self.publish.send(Outgoing { channel, payload, message });
                    }
                    Err(error) => tracing::error!(%error, "cannot encode a room event"),
                }
                // Heard here at once, in sequence with what other nodes publish.
                let delivered = self.sequencer.heard(envelope.published, Instant::now());
                self.emit(delivered, false).await
            }
            Command::Subscribe(room, generation) => self.subscribe(vec![(room, generation)]).await,
            Command::Unsubscribe(room) => {
                self.sequencer.unsubscribe(&room);
                if self.link.is_some() {
                    let channel = self.parts.channels.of(&room);
                    if self.change(Change::Unsubscribe(channel)).await.is_err() {
                        self.lost("unsubscribing failed");
                    }
                }
                Ok(())
            }
        }
    }

    /// Changes the subscription, bounded in time.
    async fn change(&mut self, change: Change) -> Result<(), LinkBroken> {
        let Some(link) = self.link.as_mut() else { return Err(LinkBroken) };
        let request = async {
            match change {
                Change::Subscribe(channels) => link.sink.subscribe(channels).await,
                Change::Unsubscribe(channel) => link.sink.unsubscribe(channel).await,
            }
        };
        match timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "redis subscription request failed");
                Err(LinkBroken)
            }
            Err(_) => {
                tracing::warn!("redis subscription request timed out");
                Err(LinkBroken)
            }
        }
    }

    /// Reads `rooms`' newest ids as their baselines. For rooms whose
    /// newest id the store cannot say, the first message heard starts the sequence.
    async fn set_baselines(&mut self, rooms: &[RoomName]) -> Result<(), HubGone> {
        for chunk in rooms.chunks(SUBSCRIBE_CHUNK) {
            match self.parts.store.latest_ids(chunk).await {
                Ok(newest) => {
                    for room in chunk {
                        let newest = newest.get(room).copied().unwrap_or(0);
                        let delivered = self.sequencer.baseline(room, newest, Instant::now());
                        self.emit(delivered, true).await?;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, rooms = chunk.len(), "cannot read rooms' newest ids; their first message heard starts them");
                    for room in chunk {
                        self.sequencer.start_at_first(room);
                    }
                }
            }
        }
        Ok(())
    }

    /// An envelope heard on a channel.
    async fn heard(&mut self, channel: &str, payload: &[u8]) -> Result<(), HubGone> {
        let Some(room) = self.parts.channels.room(channel) else { return Ok(()) };
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, %room, "ignoring an undecodable event from redis");
                return Ok(());
            }
        };
        // This node heard its own events when it published them.
        if envelope.node == self.parts.node || envelope.published.room != room {
            return Ok(());
        }
        let delivered = self.sequencer.heard(envelope.published, Instant::now());
        self.emit(delivered, true).await
    }

    /// Hands delivered events to the shard, each tagged with its room's subscription.
    async fn emit(&mut self, delivered: Vec<Published>, remote: bool) -> Result<(), HubGone> {
        for published in delivered {
            if remote && let RoomEvent::Message { message, .. } = &published.event {
                let lag = now_millis().saturating_sub(message.ts);
                self.parts.metrics.observe_bus_lag(Duration::from_millis(lag));
            }
            let room = published.room.clone();
            self.emit_to(&room, BusEvent::Room(published)).await?;
        }
        Ok(())
    }

    async fn emit_to(&mut self, room: &RoomName, event: BusEvent) -> Result<(), HubGone> {
        let Some(generation) = self.sequencer.generation(room) else { return Ok(()) };
        self.parts.events.send((generation, event)).await.map_err(|_| HubGone)
    }

    /// Reconnects, pings, or reads the gaps that are due.
    async fn tick(&mut self) -> Result<(), HubGone> {
        let now = Instant::now();
        if self.link.is_none() && now >= self.reconnect_at {
            self.reconnect().await?;
        } else if let Some(link) = self.link.as_mut()
            && now >= link.next_ping
        {
            link.next_ping = now + PING_EVERY;
            // Any reply will do: with channels subscribed Redis answers
            // `["pong", ""]`, not `PONG`, and reading that as a string failed.
            let ping = timeout(PING_TIMEOUT, link.sink.ping::<redis::Value>()).await;
            if !matches!(ping, Ok(Ok(_))) {
                self.lost("redis did not answer a ping");
            }
        }
        let started = self.sequencer.started(Instant::now());
        self.emit(started, true).await?;
        let mut gaps = self.sequencer.due_gaps(Instant::now()).into_iter();
        while let Some(gap) = gaps.next() {
            if self.read_gap(gap).await? == GapRead::Failed {
                // The store is failing: the other rooms' gaps wait for the next
                // try too, rather than holding this link a timeout each.
                for gap in gaps.by_ref() {
                    self.sequencer.retry_later(&gap.room, Instant::now());
                }
            }
        }
        Ok(())
    }

    /// Reads a gap pub/sub lost from the store, page by page.
    async fn read_gap(&mut self, Gap { room, mut after, through }: Gap) -> Result<GapRead, HubGone> {
        self.parts.metrics.bus_gap_reads.inc();
        while after < through {
            let limit = u32::try_from(through - after).unwrap_or(u32::MAX).min(CATCH_UP_PAGE);
            let read = match self.parts.store.page(&room, Page::After { id: after, limit }).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(%error, %room, "cannot read a gap from the store; retrying");
                    self.sequencer.retry_later(&room, Instant::now());
                    return Ok(GapRead::Failed);
                }
            };
            let newest = read.last().map(|message| message.id);
            if read.len() < limit as usize {
                // The store has fewer than the gap: the rest does not exist.
                let (delivered, skipped) = self.sequencer.filled(&room, after, read, Instant::now());
                if let Some(skipped) = skipped {
                    tracing::error!(%room, after, skipped, "ids missing from the store were skipped");
                    self.parts.metrics.bus_skipped_ids.inc_by(skipped);
                }
                self.emit(delivered, true).await?;
                return Ok(GapRead::Done);
            }
            let delivered = self.sequencer.filled_partly(&room, read, Instant::now());
            self.emit(delivered, true).await?;
            after = newest.unwrap_or(through);
        }
        Ok(GapRead::Done)
    }

    /// Notes a broken link; the next tick reconnects.
    fn lost(&mut self, why: &str) {
        if self.link.take().is_some() {
            tracing::warn!(why, "lost the redis subscription; reconnecting");
        }
        self.parts.connected.store(false, Ordering::Relaxed);
        self.reconnect_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Connects, subscribes every room, then reads from the store what was
    /// stored while this node was not subscribed.
    async fn reconnect(&mut self) -> Result<(), HubGone> {
        let pubsub = match timeout(REQUEST_TIMEOUT, self.parts.client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot connect to redis");
                self.lost("connecting failed");
                return Ok(());
            }
            Err(_) => {
                self.lost("connecting timed out");
                return Ok(());
            }
        };
        let (sink, stream) = pubsub.split();
        self.link = Some(Link { sink, stream, next_ping: Instant::now() + PING_EVERY });
        let positions = self.sequencer.positions();
        let channels: Vec<String> = positions.iter().map(|(room, _)| self.parts.channels.of(room)).collect();
        for chunk in channels.chunks(SUBSCRIBE_CHUNK) {
            if self.change(Change::Subscribe(chunk.to_vec())).await.is_err() {
                self.lost("resubscribing failed");
                return Ok(());
            }
        }
        self.parts.metrics.bus_reconnects.inc();
        self.parts.connected.store(true, Ordering::Relaxed);
        self.backoff = FIRST_BACKOFF;
        tracing::info!(rooms = positions.len(), "subscribed to redis");
        let (known, unknown): (Vec<_>, Vec<_>) = positions.into_iter().partition(|(_, last)| last.is_some());
        let unknown: Vec<RoomName> = unknown.into_iter().map(|(room, _)| room).collect();
        self.set_baselines(&unknown).await?;
        // Only rooms with something newer than what was delivered are read.
        for chunk in known.chunks(SUBSCRIBE_CHUNK) {
            let names: Vec<RoomName> = chunk.iter().map(|(room, _)| room.clone()).collect();
            let newest = match self.parts.store.latest_ids(&names).await {
                Ok(newest) => newest,
                Err(error) => {
                    // What is still missing is read as a gap once something newer is heard.
                    tracing::warn!(%error, "cannot read what was missed from the store");
                    continue;
                }
            };
            let behind: Vec<(RoomName, u64)> = chunk
                .iter()
                .map(|(room, last)| (room.clone(), last.unwrap_or(0)))
                .filter(|(room, last)| newest.get(room).is_some_and(|newest| newest > last))
                .collect();
            for rooms in behind.chunks(CATCH_UP_ROOMS) {
                self.catch_up_rooms(rooms).await?;
            }
        }
        Ok(())
    }

    /// Reads what `rooms` missed after their last delivered ids: the first
    /// page of each in one query, then, for a room that missed more, the
    /// rest page by page.
    async fn catch_up_rooms(&mut self, rooms: &[(RoomName, u64)]) -> Result<(), HubGone> {
        let read = match self.parts.store.pages_after(rooms, CATCH_UP_FIRST).await {
            Ok(read) => read,
            Err(error) => {
                // What is still missing is read as a gap once something newer is heard.
                tracing::warn!(%error, rooms = rooms.len(), "cannot read what was missed from the store");
                return Ok(());
            }
        };
        let mut per_room: HashMap<RoomName, Vec<ChatMessage>> = HashMap::new();
        for message in read {
            per_room.entry(message.room.clone()).or_default().push(message);
        }
        for (room, last) in rooms {
            let mut read = per_room.remove(room).unwrap_or_default();
            read.sort_by_key(|message| message.id);
            let full = read.len() == CATCH_UP_FIRST as usize;
            let newest = read.last().map_or(*last, |message| message.id);
            let delivered = self.sequencer.filled_partly(room, read, Instant::now());
            self.emit(delivered, true).await?;
            if full {
                self.catch_up(room, newest).await?;
            }
        }
        Ok(())
    }

    /// Reads `room`'s messages after `last` from the store, page by page.
    async fn catch_up(&mut self, room: &RoomName, mut last: u64) -> Result<(), HubGone> {
        loop {
            match self.parts.store.page(room, Page::After { id: last, limit: CATCH_UP_PAGE }).await {
                Ok(read) => {
                    let full = read.len() == CATCH_UP_PAGE as usize;
                    let Some(newest) = read.last().map(|message| message.id) else { return Ok(()) };
                    let delivered = self.sequencer.filled_partly(room, read, Instant::now());
                    self.emit(delivered, true).await?;
                    if !full {
                        return Ok(());
                    }
                    last = newest;
                }
                Err(error) => {
                    // What is still missing is read as a gap once something newer is heard.
                    tracing::warn!(%error, %room, "cannot read what was missed from the store");
                    return Ok(());
                }
            }
        }
    }
}

/// The next message of the link, or never when there is none.
async fn next_heard(link: &mut Option<Link>) -> Option<redis::Msg> {
    match link {
        Some(link) => link.stream.next().await,
        None => std::future::pending().await,
    }
}
