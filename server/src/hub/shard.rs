//! One hub shard: owns the rooms that hash to it, applies their commands one
//! at a time, in order, and relays messages as the store writer reports them
//! committed. Shards share nothing but the room quota and the store writer:
//! rooms of different shards are sequenced in parallel. Membership is
//! decided here; delivery is the workers' relays reached through the
//! [`Outbox`]; member counts go to the [`super::directory`]; the lobby's
//! shard also carries the plain protocol's bridge ([`plain_bridge`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_shared::limits::PRESENCE_EVENTS_MAX;
use chat_shared::{ChatMessage, Epoch, ErrorCode, Nickname, RoomName, ServerMessage};
use tokio::sync::{mpsc, oneshot, watch};

use super::awaited::Awaited;
use super::directory::{self, CountChanges, Shown};
use super::outbox::Outbox;
use super::plain_bridge::PlainWorkers;
use super::rooms::{Member, RoomQuota, Rooms};
use super::roster::{self, Change, Rosters};
use super::store_writer::{Committed, StoreWriter};
use super::worker_relay::Delivery;
use super::{
    CloseCause, Command, ConnectionId, Control, JoinClaim, JoinRequest, Outbound, StoreUnavailable, frame, plain_bridge,
};
use crate::bus::{Author, BusEvent, NodeId, Peer, Published, RoomBus, RoomEvent};
use crate::metrics::{GaugeShare, HeldGauges};
use crate::presence::{Departure, Presence, PresenceError};
use crate::store::{Appended, NewMessage};

/// Most commands taken from the queue at once.
const MAX_BATCH: usize = 512;

/// Most messages waiting for the store writer, per shard. Past this the
/// store is not keeping up (a locked or failing database): new messages are
/// refused with `store_unavailable` instead of piling up in memory.
const MAX_WAITING_MESSAGES: usize = 20_000;

/// Who sent a message being stored, which decides who hears of it how.
enum Origin {
    /// A JSON client, which gets an ack.
    Json(ConnectionId),
    /// A plain client, whose frame was already echoed to the plain clients.
    Plain,
    /// A change asked for through the HTTP API, which waits for the outcome.
    Api(oneshot::Sender<Result<Appended, StoreUnavailable>>),
}

/// What a shard is built from.
pub(super) struct ShardParts {
    pub(super) epoch: Epoch,
    pub(super) quota: RoomQuota,
    pub(super) writer: StoreWriter,
    pub(super) bus: Box<dyn RoomBus>,
    pub(super) outbox: Outbox,
    pub(super) directory: mpsc::UnboundedSender<CountChanges>,
    /// The room list everyone is shown, for `joined`.
    pub(super) shown: watch::Receiver<Shown>,
    /// Who is in which room, to check member lists against.
    pub(super) presence: Arc<dyn Presence>,
    /// How often every room's member list is checked, if at all.
    pub(super) check_members_every: Option<Duration>,
    /// The gauges of what the node holds waiting.
    pub(super) held: HeldGauges,
}

/// A member list read from presence for a check, and its room.
type RosterRead = (RoomName, Result<Arc<[Nickname]>, PresenceError>);

/// How often the shard looks for rooms due for a member list check.
const ROSTER_TICK: Duration = Duration::from_secs(1);

pub(super) struct Shard {
    epoch: Epoch,
    /// Places for rooms with members, shared by the shards.
    quota: RoomQuota,
    writer: StoreWriter,
    /// Messages waiting for the writer, and who sent them.
    waiting: Vec<(Origin, NewMessage)>,
    /// Who sent the messages of the batch being committed, in order.
    in_flight: Option<Vec<Origin>>,
    rooms: Rooms,
    /// Workers running plain sessions (the lobby's shard only).
    plain: PlainWorkers,
    /// Rooms whose member count changed this turn, for the directory.
    recounted: HashSet<RoomName>,
    directory: mpsc::UnboundedSender<CountChanges>,
    /// The room list everyone is shown, for `joined`.
    shown: watch::Receiver<Shown>,
    outbox: Outbox,
    /// Where room events are published, and heard back from.
    bus: Box<dyn RoomBus>,
    node: NodeId,
    /// Subscribed rooms the bus reported ready.
    ready: HashSet<RoomName>,
    /// Joins into rooms not ready yet, answered once they are: a member reads
    /// its history only after, so nothing stored meanwhile is missed.
    unanswered: HashMap<RoomName, Vec<(ConnectionId, oneshot::Sender<bool>)>>,
    presence: Arc<dyn Presence>,
    /// The member lists shown, and their checks.
    rosters: Rosters,
    /// Who wrote the messages committed here, until they are delivered.
    awaited: Awaited,
    /// Where the checks' reads report back, and are heard.
    roster_reads: (mpsc::UnboundedSender<RosterRead>, mpsc::UnboundedReceiver<RosterRead>),
    /// This shard's shares of the gauges of messages waiting for the store,
    /// and of committed messages waiting to be delivered back.
    store_waiting: GaugeShare,
    awaited_acks: GaugeShare,
}

/// The ack of a message a client sent (which always carries its client id).
fn ack_for(message: &ChatMessage) -> Outbound {
    match &message.client_id {
        Some(client_id) => {
            frame(&ServerMessage::Ack { room: message.room.clone(), client_id: client_id.clone(), id: message.id })
        }
        None => frame(&ServerMessage::error(ErrorCode::InvalidMessage, "a message without a client id")),
    }
}

/// A message's live frame, encoded once for every member.
fn live(message: ChatMessage) -> Outbound {
    let id = message.id;
    Outbound::Live { id, text: bytestring::ByteString::from(ServerMessage::Message(message).encode()) }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

impl Shard {
    pub(super) fn new(parts: ShardParts) -> Self {
        let ShardParts { epoch, quota, writer, bus, outbox, directory, shown, presence, check_members_every, held } =
            parts;
        Self {
            node: bus.node(),
            bus,
            epoch,
            quota,
            writer,
            waiting: Vec::new(),
            in_flight: None,
            rooms: Rooms::default(),
            plain: PlainWorkers::default(),
            recounted: HashSet::new(),
            directory,
            shown,
            outbox,
            ready: HashSet::new(),
            unanswered: HashMap::new(),
            presence,
            rosters: Rosters::new(check_members_every),
            awaited: Awaited::default(),
            roster_reads: mpsc::unbounded_channel(),
            store_waiting: GaugeShare::of(&held.store_waiting),
            awaited_acks: GaugeShare::of(&held.awaited_acks),
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut roster_ticks = tokio::time::interval(ROSTER_TICK);
        roster_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match commands.try_recv() {
                                Ok(command) => batch.push(command),
                                Err(_) => break,
                            }
                        }
                        for command in batch {
                            self.apply(command);
                        }
                        self.hand_to_writer();
                    }
                    None => break,
                },
                committed = self.writer.committed(), if self.in_flight.is_some() => match committed {
                    Some(committed) => {
                        self.relay_committed(committed);
                        self.hand_to_writer();
                    }
                    None => break,
                },
                event = self.bus.next() => self.heard(event),
                Some((room, read)) = self.roster_reads.1.recv() => self.roster_read(&room, read),
                _ = roster_ticks.tick() => {
                    for room in self.rosters.due(Instant::now()) {
                        self.read_roster(room, Duration::ZERO);
                    }
                }
            }
            self.end_turn();
        }
        // Every handle is gone (shutdown) or the writer stopped: commit what was
        // accepted, so the store closes only after the last batch.
        while self.in_flight.is_some() {
            match self.writer.committed().await {
                Some(committed) => {
                    self.relay_committed(committed);
                    self.hand_to_writer();
                    self.end_turn();
                }
                None => break,
            }
        }
        tracing::debug!("hub shard stopped");
    }

    /// Delivers the room events heard so far (this turn's own included),
    /// sends each worker what this turn produced, as one batch, and tells the
    /// directory which counts changed.
    fn end_turn(&mut self) {
        while let Some(event) = self.bus.try_next() {
            self.heard(event);
        }
        self.outbox.flush();
        if !self.recounted.is_empty() {
            let rooms = &self.rooms;
            let counts = self.recounted.drain().map(|room| {
                let online = rooms.get(&room).map_or(0, |r| r.people());
                (room, online)
            });
            // The directory stops only after every shard.
            let _ = self.directory.send(counts.collect());
        }
        let in_flight = self.in_flight.as_ref().map_or(0, Vec::len);
        self.store_waiting.report(self.waiting.len() + in_flight);
        self.awaited_acks.report(self.awaited.len());
    }

    fn heard(&mut self, event: BusEvent) {
        match event {
            BusEvent::Room(published) => self.deliver(published),
            BusEvent::Ready(room) => {
                for (id, answer) in self.unanswered.remove(&room).unwrap_or_default() {
                    self.admit(id, answer);
                }
                self.ready.insert(room);
            }
        }
    }

    /// Answers a join, through the member's relay once `joined` is queued, so
    /// the history the session reads next reaches the client after it.
    fn admit(&mut self, id: ConnectionId, answer: oneshot::Sender<bool>) {
        self.outbox.push(self.outbox.worker_of(id), Delivery::Admitted { id, answer });
    }

    /// Delivers a room event to this node's members of the room, encoded once.
    fn deliver(&mut self, Published { room, event }: Published) {
        let node = self.node;
        let local = move |peer: Peer| (peer.node == node).then_some(peer.connection);
        match event {
            RoomEvent::Message { mut message, author } => {
                // This node's plain clients had a plain author's frame verbatim.
                if author != Author::Plain(node) && plain_bridge::reaches_plain_clients(&message) && self.plain.any() {
                    self.send_plain(&plain_bridge::plain_line(&message));
                }
                // Its author (if this node's) gets its copy and ack now, in sequence,
                // even when the bus read it back from the store before hearing it.
                let committed_here = self.awaited.delivered(&room, message.id);
                let author = match author {
                    Author::Client(peer) => local(peer).or(committed_here),
                    Author::Stored => committed_here,
                    Author::Plain(_) => None,
                };
                let own = author.map(|author| (author, live(message.clone()), ack_for(&message)));
                message.client_id = None;
                self.fan_out_room(&room, &live(message), own.as_ref().map(|(id, _, _)| *id));
                if let Some((author, copy, ack)) = own {
                    self.send_to(author, copy);
                    self.send_to(author, ack);
                }
            }
            RoomEvent::MemberJoined { nick, member } => {
                let joined = frame(&ServerMessage::MemberJoined { room: room.clone(), nick: nick.clone() });
                self.fan_out_room(&room, &joined, local(member));
                self.rosters.heard(&room, Change::Joined(nick));
            }
            // The member's relay moves it out of the room only with its next
            // `Enter`, so it is left out here.
            RoomEvent::MemberLeft { nick, member } => {
                let left = frame(&ServerMessage::MemberLeft { room: room.clone(), nick: nick.clone() });
                self.fan_out_room(&room, &left, local(member));
                self.rosters.heard(&room, Change::Left(nick));
            }
            RoomEvent::Typing { nick, member } => {
                let typing = frame(&ServerMessage::Typing { room: room.clone(), nick });
                self.fan_out_room(&room, &typing, local(member));
            }
            RoomEvent::Replaced { member } => {
                if let Some(stale) = local(member)
                    && self.rooms.get(&room).is_some_and(|members| members.get(stale).is_some())
                {
                    self.replace(&room, stale);
                    self.recount(&room);
                    self.forget_if_empty(&room);
                }
            }
        }
    }

    /// This node's connection `id`, as the bus names it.
    fn peer(&self, id: ConnectionId) -> Peer {
        Peer { node: self.node, connection: id }
    }

    /// Applies one command. Messages wait for the store writer; everything
    /// else takes effect at once.
    fn apply(&mut self, command: Command) {
        match command {
            Command::Say { id, room, client_id, text } => match self.member_nick(id, &room) {
                Some(_) if self.waiting.len() >= MAX_WAITING_MESSAGES => {
                    self.send_error(id, ErrorCode::StoreUnavailable, "the history store is not keeping up; retry soon");
                }
                Some(nick) => {
                    let message =
                        NewMessage { room, ts: now_millis(), nick, text, client_id: Some(client_id), deletes: None };
                    self.waiting.push((Origin::Json(id), message));
                }
                None => self.send_error(id, ErrorCode::NotJoined, format!("join #{room} before sending to it")),
            },
            Command::Change { change, answer } => {
                if self.waiting.len() >= MAX_WAITING_MESSAGES {
                    let _ = answer.send(Err(StoreUnavailable));
                } else {
                    self.waiting.push((Origin::Api(answer), change));
                }
            }
            Command::PlainFrame { id, frame: relayed } => {
                // The echo goes out at once; only the bridge to the lobby waits for the store.
                self.send_plain(&relayed);
                if self.waiting.len() < MAX_WAITING_MESSAGES
                    && let Some(message) = plain_bridge::lobby_message(id, &relayed, now_millis())
                {
                    self.waiting.push((Origin::Plain, message));
                }
            }
            Command::Control(control) => self.control(control),
        }
    }

    fn control(&mut self, control: Control) {
        match control {
            Control::PlainConnected { id } => {
                self.plain.add(id, self.outbox.worker_of(id));
                // Plain clients hear the lobby (other nodes' lobby messages too).
                self.bus.subscribe(&RoomName::lobby());
            }
            Control::PlainDisconnected { id } => {
                self.plain.remove(id, self.outbox.worker_of(id));
                if !self.plain.any() && self.rooms.get(&RoomName::lobby()).is_none() {
                    self.bus.unsubscribe(&RoomName::lobby());
                    self.ready.remove(&RoomName::lobby());
                }
            }
            Control::Join { id, request, admitted } => self.join(id, request, admitted),
            Control::Leave { id, room, departure } => self.leave_room(id, &room, departure),
            Control::Typing { id, room } => self.typing(id, &room),
            Control::NameLost { id, room } => {
                if self.rooms.get(&room).is_some_and(|members| members.get(id).is_some()) {
                    self.close_member(&room, id, CloseCause::NameLost);
                    self.recount(&room);
                    self.forget_if_empty(&room);
                }
            }
        }
    }

    /// Gives every waiting message to the writer, unless a batch is in flight
    /// (then they go together once it is committed).
    fn hand_to_writer(&mut self) {
        if self.in_flight.is_some() || self.waiting.is_empty() {
            return;
        }
        let (origins, messages): (Vec<Origin>, Vec<NewMessage>) = self.waiting.drain(..).unzip();
        if self.writer.write(messages) {
            self.in_flight = Some(origins);
        } else {
            tracing::error!("the store writer has stopped");
            self.refuse(origins);
        }
    }

    /// Relays each message of a committed batch and acknowledges it.
    fn relay_committed(&mut self, committed: Committed) {
        let origins = self.in_flight.take().unwrap_or_default();
        match committed {
            Ok(results) => {
                for (origin, appended) in origins.into_iter().zip(results) {
                    match (origin, appended) {
                        // Its author hears it back from the bus with the others, then the ack.
                        (Origin::Json(sender), Appended::New(message)) => {
                            if self.rooms.get(&message.room).is_none() {
                                // Its author left, the room emptied, and this node no
                                // longer hears it: confirm to the author directly.
                                self.send_to(sender, live(message.clone()));
                                self.send_to(sender, ack_for(&message));
                            } else {
                                self.awaited.committed(&message.room, message.id, sender);
                            }
                            self.publish(message, Author::Client(self.peer(sender)));
                        }
                        // Already stored: confirm again, and relay it once more, unrecorded:
                        // the first commit's reply may have been lost before any node
                        // relayed it (nodes that have it drop the repeat).
                        (Origin::Json(sender), Appended::Duplicate(message)) => {
                            self.send_to(sender, ack_for(&message));
                            self.publish(message, Author::Stored);
                        }
                        // Plain clients already have the verbatim echo; JSON clients get the message.
                        (Origin::Plain, Appended::New(message) | Appended::Duplicate(message)) => {
                            self.publish(message, Author::Plain(self.node));
                        }
                        // A change: the room hears it like a message (every node, and resume,
                        // from the store); a repeat is relayed again like a resend.
                        (Origin::Api(answer), appended) => {
                            if let Appended::New(change) | Appended::Duplicate(change) = &appended {
                                self.publish(change.clone(), Author::Stored);
                            }
                            let _ = answer.send(Ok(appended));
                        }
                        // Only changes have a target to miss.
                        (Origin::Json(_) | Origin::Plain, Appended::NoTarget) => {}
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "storing messages failed");
                self.refuse(origins);
            }
        }
    }

    /// Tells the JSON senders of messages (and the askers of changes) that
    /// were not stored.
    fn refuse(&mut self, origins: Vec<Origin>) {
        for origin in origins {
            match origin {
                Origin::Json(sender) => {
                    let message = "the message was not stored; it will be retried";
                    self.send_error(sender, ErrorCode::StoreUnavailable, message);
                }
                Origin::Api(answer) => {
                    let _ = answer.send(Err(StoreUnavailable));
                }
                Origin::Plain => {}
            }
        }
    }

    /// Queues `frame` for one connection (its relay drops it if it is too slow).
    fn send_to(&mut self, id: ConnectionId, frame: Outbound) {
        self.outbox.send_to(id, frame);
    }

    /// Queues `frame` for every plain connection.
    fn send_plain(&mut self, frame: &Outbound) {
        for worker in self.plain.workers() {
            self.outbox.push(worker, Delivery::Plain { frame: frame.clone() });
        }
    }

    fn send_error(&mut self, id: ConnectionId, code: ErrorCode, message: impl Into<String>) {
        self.send_to(id, frame(&ServerMessage::error(code, message)));
    }

    /// Queues `frame` for every member of `room` except `except`: one
    /// delivery per worker that runs members of it.
    fn fan_out_room(&mut self, room: &RoomName, frame: &Outbound, except: Option<ConnectionId>) {
        let Some(members) = self.rooms.get(room) else { return };
        for worker in members.workers() {
            self.outbox.push(worker, Delivery::Room { room: room.clone(), frame: frame.clone(), except });
        }
    }

    /// Takes `id` out of `room` (if it is in it) and tells the others, if
    /// its name leaves with it.
    fn leave_room(&mut self, id: ConnectionId, room: &RoomName, departure: Departure) {
        let crowded = self.crowded(room);
        if let Some(member) = self.rooms.remove(room, id) {
            // Its worker stops relaying the room to it (unless it entered another since).
            let worker = self.outbox.worker_of(id);
            self.outbox.push(worker, Delivery::Leave { id, room: room.clone() });
            self.rosters.left(room, id);
            self.recount(room);
            self.forget_if_empty(room);
            if crowded || departure == Departure::Shared {
                return;
            }
            let member = RoomEvent::MemberLeft { nick: member.nick, member: self.peer(id) };
            self.bus.publish(Published { room: room.clone(), event: member });
        }
    }

    /// Stops hearing `room` and gives its place back, once this node has
    /// nobody in it (plain clients, who live in the lobby, keep hearing it).
    fn forget_if_empty(&mut self, room: &RoomName) {
        if self.rooms.get(room).is_none() {
            self.rosters.forget(room);
            self.awaited.forget(room);
            if !(*room == RoomName::lobby() && self.plain.any()) {
                self.bus.unsubscribe(room);
                self.ready.remove(room);
            }
            self.unanswered.remove(room);
            self.quota.release();
        }
    }

    /// Notes that `room`'s member count changed this turn.
    fn recount(&mut self, room: &RoomName) {
        if !self.recounted.contains(room) {
            self.recounted.insert(room.clone());
        }
    }

    /// Lets a connection into a room of this shard. Its session leaves the
    /// room it was in (if another) once admitted: that room may be another shard's.
    fn join(&mut self, id: ConnectionId, request: JoinRequest, admitted: oneshot::Sender<bool>) {
        let JoinRequest { room, nick, resumed, claim, members, room_size } = request;
        let worker = self.outbox.worker_of(id);
        let opens = self.rooms.get(&room).is_none();
        if opens && !self.quota.take() {
            let message = format!("the server has {} rooms in use; join one of them or try later", self.quota.max());
            self.send_error(id, ErrorCode::RoomLimit, message);
            let _ = admitted.send(false);
            return;
        }
        if opens {
            self.bus.subscribe(&room);
        }
        // Presence already gave this connection the name; a takeover (a repeated
        // join, or the same tab replacing its stale connection) is not news to the room.
        let takeover = claim != JoinClaim::New;
        let renamed = self.rooms.entry(room.clone()).insert(id, Member { nick: nick.clone(), worker });
        // Presence's count is exact at the claim; other nodes' counts here may be a second old.
        let crowded = self.crowded(&room) || room_size > PRESENCE_EVENTS_MAX;
        if let Some(previous) = renamed.filter(|_| !takeover && !crowded) {
            // A new name in the same room: the room hears the old one leave.
            let left = RoomEvent::MemberLeft { nick: previous.nick, member: self.peer(id) };
            self.bus.publish(Published { room: room.clone(), event: left });
        }
        match claim {
            JoinClaim::Replaces(stale) if stale.node == self.node => self.replace(&room, stale.connection),
            // Its own node closes it.
            JoinClaim::Replaces(stale) => {
                let replaced = RoomEvent::Replaced { member: stale };
                self.bus.publish(Published { room: room.clone(), event: replaced });
            }
            JoinClaim::New | JoinClaim::Repeated | JoinClaim::Shared => {}
        }
        self.outbox.push(worker, Delivery::Enter { id, room: room.clone() });
        // Sorted by name, as the protocol promises (the client inserts later arrivals by name).
        let mut members = members.to_vec();
        if let Err(at) = members.binary_search(&nick) {
            members.insert(at, nick.clone());
        }
        let joined = ServerMessage::Joined {
            room: room.clone(),
            nick: nick.clone(),
            members,
            epoch: self.epoch.clone(),
            resumed,
            // The room's count: this node's exact plus the others' as last reported, or presence's
            // count at the claim if more; the other rooms as last shown.
            rooms: directory::with_own_room(
                &self.shown.borrow(),
                &room,
                self.rooms.get(&room).map_or(0, |r| r.people()),
                room_size,
            ),
        };
        self.send_to(id, frame(&joined));
        self.check_roster(&room, id, crowded, joined);
        if self.ready.contains(&room) {
            self.admit(id, admitted);
        } else {
            self.unanswered.entry(room.clone()).or_default().push((id, admitted));
        }
        self.recount(&room);
        if !takeover && !crowded {
            let joined = RoomEvent::MemberJoined { nick, member: self.peer(id) };
            self.bus.publish(Published { room, event: joined });
        }
    }

    /// Checks the member list `id` was shown in `joined` (unless the room
    /// is crowded: then nothing is checked).
    fn check_roster(&mut self, room: &RoomName, id: ConnectionId, crowded: bool, joined: ServerMessage) {
        if crowded {
            self.rosters.forget(room);
            return;
        }
        let ServerMessage::Joined { nick, members, .. } = joined else { return };
        if self.rosters.joined(room, id, &nick, members, Instant::now()) {
            self.read_roster(room.clone(), Duration::ZERO);
        }
    }

    /// Reads `room`'s member list from presence, after `delay`, for a check.
    fn read_roster(&self, room: RoomName, delay: Duration) {
        let (presence, report) = (self.presence.clone(), self.roster_reads.0.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let read = presence.members_now(&room, roster::READ_LIMIT).await;
            // The shard is gone only at shutdown.
            let _ = report.send((room, read));
        });
    }

    /// A check's read came back: sends the list to those shown a wrong one.
    fn roster_read(&mut self, room: &RoomName, read: Result<Arc<[Nickname]>, PresenceError>) {
        let verdict = match &read {
            Ok(list) => self.rosters.read(room, Ok(&list[..])),
            Err(error) => {
                tracing::warn!(%error, %room, "reading a member list to check it failed; retrying");
                self.rosters.read(room, Err(()))
            }
        };
        if let Some(members) = verdict.everyone {
            let list = frame(&ServerMessage::Members { room: room.clone(), members });
            self.fan_out_room(room, &list, None);
        }
        for (id, members) in verdict.some {
            self.send_to(id, frame(&ServerMessage::Members { room: room.clone(), members }));
        }
        if let Some(delay) = verdict.read_again {
            self.read_roster(room.clone(), delay);
        }
    }

    /// Closes the stale connection whose name a reconnected tab took back;
    /// nobody hears it leave. (The room still has its successor.)
    fn replace(&mut self, room: &RoomName, stale: ConnectionId) {
        self.close_member(room, stale, CloseCause::Replaced);
    }

    /// Takes `id` out of `room` without a word to the room, and closes it.
    fn close_member(&mut self, room: &RoomName, id: ConnectionId, cause: CloseCause) {
        self.rooms.remove(room, id);
        self.rosters.left(room, id);
        self.send_to(id, Outbound::Close(cause));
        self.outbox.push(self.outbox.worker_of(id), Delivery::Unregister { id });
    }

    /// Whether `room` has more members than get presence and typing events,
    /// counting every node's (the others' as last reported).
    fn crowded(&self, room: &RoomName) -> bool {
        let here = self.rooms.get(room).map_or(0, |members| members.people());
        let elsewhere = self.shown.borrow().others.get(room).copied().unwrap_or(0);
        here + elsewhere > PRESENCE_EVENTS_MAX
    }

    fn member_nick(&self, id: ConnectionId, room: &RoomName) -> Option<Nickname> {
        self.rooms.get(room)?.get(id).map(|m| m.nick.clone())
    }

    /// Publishes a stored message to its room (see [`Hub::deliver`] for who
    /// hears it how).
    fn publish(&mut self, message: ChatMessage, author: Author) {
        let room = message.room.clone();
        self.bus.publish(Published { room, event: RoomEvent::Message { message, author } });
    }

    /// Tells the room someone is typing; crowded rooms get no typing events
    /// (like presence events), which would cost O(members) per keystroke burst.
    fn typing(&mut self, id: ConnectionId, room: &RoomName) {
        match self.member_nick(id, room) {
            Some(_) if self.crowded(room) => {}
            Some(nick) => {
                let typing = RoomEvent::Typing { nick, member: self.peer(id) };
                self.bus.publish(Published { room: room.clone(), event: typing });
            }
            None => self.send_error(id, ErrorCode::NotJoined, format!("join #{room} first")),
        }
    }
}
