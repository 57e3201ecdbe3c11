//! The hub task itself: applies commands one at a time, in order, and relays
//! messages as the store writer reports them committed. Membership (who holds
//! which nickname where) is decided here; delivery is [`Connections`], the
//! room lists [`RoomLists`], the plain protocol's bridge [`plain_bridge`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_shared::{ChatMessage, Endpoint, Epoch, ErrorCode, Nickname, RoomName, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use super::connections::Connections;
use super::room_lists::RoomLists;
use super::rooms::{Claim, Member, Rooms};
use super::store_writer::{Committed, StoreWriter};
use super::{CloseCause, Command, ConnectionId, Control, JoinRequest, Outbound, frame, plain_bridge};
use crate::metrics::Metrics;
use crate::store::{Appended, NewMessage};

/// Rooms larger than this get no per-member join/leave events, no typing
/// events and a truncated member list: those events would cost O(members²)
/// while a room fills (or O(members) per keystroke burst), and nobody reads a
/// list of thousands. The room list still counts everyone.
pub(super) const PRESENCE_EVENTS_MAX: usize = 200;

/// Most commands taken from the queue at once.
const MAX_BATCH: usize = 512;

/// Most messages waiting for the store writer. Past this the store is not
/// keeping up (a locked or failing database): new messages are refused with
/// `store_unavailable` instead of piling up in memory.
const MAX_WAITING_MESSAGES: usize = 20_000;

/// How often changed room lists are sent out; coalesces join storms.
const ROOM_LIST_INTERVAL: Duration = Duration::from_secs(1);

/// Who sent a message being stored, which decides who hears of it how.
enum Origin {
    /// A JSON client, which gets an ack.
    Json(ConnectionId),
    /// A plain client, whose frame was already echoed to the plain clients.
    Plain,
}

pub(super) struct Hub {
    epoch: Epoch,
    /// Most rooms with members at once.
    max_rooms: usize,
    writer: StoreWriter,
    /// Messages waiting for the writer, and who sent them.
    waiting: Vec<(Origin, NewMessage)>,
    /// Who sent the messages of the batch being committed, in order.
    in_flight: Option<Vec<Origin>>,
    connections: Connections,
    rooms: Rooms,
    room_lists: RoomLists,
    metrics: Metrics,
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

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

impl Hub {
    pub(super) fn new(epoch: Epoch, writer: StoreWriter, metrics: Metrics, max_rooms: usize) -> Self {
        Self {
            epoch,
            max_rooms,
            writer,
            waiting: Vec::new(),
            in_flight: None,
            connections: Connections::default(),
            rooms: Rooms::default(),
            room_lists: RoomLists::default(),
            metrics,
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut room_list_tick = tokio::time::interval(ROOM_LIST_INTERVAL);
        room_list_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                _ = room_list_tick.tick(), if self.room_lists.due() => {
                    let too_slow = self.room_lists.publish(&self.rooms, &self.connections);
                    self.drop_slow(too_slow);
                }
            }
        }
        // Every handle is gone (shutdown) or the writer stopped: commit what was
        // accepted, so the store closes only after the last batch.
        while self.in_flight.is_some() {
            match self.writer.committed().await {
                Some(committed) => {
                    self.relay_committed(committed);
                    self.hand_to_writer();
                }
                None => break,
            }
        }
        tracing::debug!("hub stopped");
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
                    let message = NewMessage { room, ts: now_millis(), nick, text, client_id: Some(client_id) };
                    self.waiting.push((Origin::Json(id), message));
                }
                None => self.send_error(id, ErrorCode::NotJoined, format!("join #{room} before sending to it")),
            },
            Command::PlainFrame { id, frame: relayed } => {
                // The echo goes out at once; only the bridge to the lobby waits for the store.
                let too_slow = self.connections.send_plain(&relayed);
                self.drop_slow(too_slow);
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
            Control::Connect { id, endpoint, outbound } => {
                if endpoint == Endpoint::Json {
                    let _ = outbound.try_send(RoomLists::current(&self.rooms));
                }
                self.connections.insert(id, endpoint, outbound);
            }
            Control::Disconnect { id } => self.disconnect(id),
            Control::Join { id, request, admitted } => self.join(id, request, admitted),
            Control::Typing { id, room } => self.typing(id, &room),
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
                        (Origin::Json(sender), Appended::New(message)) => {
                            let ack = ack_for(&message);
                            self.publish(message, Some(sender));
                            self.send_to(sender, ack);
                        }
                        // Already stored and relayed once: confirm again, relay nothing.
                        (Origin::Json(sender), Appended::Duplicate(message)) => self.send_to(sender, ack_for(&message)),
                        // Plain clients already have the verbatim echo; JSON clients get the message.
                        (Origin::Plain, Appended::New(message) | Appended::Duplicate(message)) => {
                            let room = message.room.clone();
                            self.fan_out_room(&room, &frame(&ServerMessage::Message(message)), None);
                        }
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "storing messages failed");
                self.refuse(origins);
            }
        }
    }

    /// Tells the JSON senders of messages that were not stored.
    fn refuse(&mut self, origins: Vec<Origin>) {
        for origin in origins {
            if let Origin::Json(sender) = origin {
                self.send_error(sender, ErrorCode::StoreUnavailable, "the message was not stored; it will be retried");
            }
        }
    }

    /// Queues `frame` for one connection; a full queue drops the connection.
    fn send_to(&mut self, id: ConnectionId, frame: Outbound) {
        if !self.connections.send(id, frame) {
            self.drop_slow(vec![id]);
        }
    }

    fn send_error(&mut self, id: ConnectionId, code: ErrorCode, message: impl Into<String>) {
        self.send_to(id, frame(&ServerMessage::error(code, message)));
    }

    /// Queues `frame` for every member of `room` except `except`.
    fn fan_out_room(&mut self, room: &RoomName, frame: &Outbound, except: Option<ConnectionId>) {
        let Some(members) = self.rooms.get(room) else { return };
        let too_slow = self.connections.send_each(members.ids().filter(|id| Some(*id) != except), frame);
        self.drop_slow(too_slow);
    }

    fn drop_slow(&mut self, ids: Vec<ConnectionId>) {
        for id in ids {
            tracing::warn!(connection = id, "outbound queue full; dropping slow client");
            self.metrics.slow_consumer_closes.inc();
            // Dropping its queue's sender makes the session close its socket.
            self.disconnect(id);
        }
    }

    fn disconnect(&mut self, id: ConnectionId) {
        if let Some(room) = self.connections.remove(id) {
            self.leave_room(id, &room);
        }
    }

    /// Takes `id` out of `room` and tells the others.
    fn leave_room(&mut self, id: ConnectionId, room: &RoomName) {
        let crowded = self.rooms.get(room).is_some_and(|r| r.len() > PRESENCE_EVENTS_MAX);
        if let Some(member) = self.rooms.remove(room, id) {
            self.room_lists.changed(room);
            if crowded {
                return;
            }
            let left = frame(&ServerMessage::MemberLeft { room: room.clone(), nick: member.nick });
            self.fan_out_room(room, &left, None);
        }
    }

    fn join(&mut self, id: ConnectionId, request: JoinRequest, admitted: oneshot::Sender<bool>) {
        let JoinRequest { room, nick, tab, resumed } = request;
        let Some(current) = self.connections.room_of(id).map(|room| room.cloned()) else {
            let _ = admitted.send(false);
            return;
        };

        let claim = self.rooms.get(&room).map_or(Claim::Free, |r| r.claim(id, &nick, &tab));
        let takeover = match claim {
            Claim::Free => false,
            // A repeated join of the same room under the same name: just resend the state.
            Claim::Held => true,
            Claim::Replaces(stale) => {
                self.rooms.remove(&room, stale);
                self.send_to(stale, Outbound::Close(CloseCause::Replaced));
                self.connections.remove(stale);
                true
            }
            Claim::Taken => {
                let message = format!("“{nick}” is already in use in #{room}; pick another nickname");
                self.send_error(id, ErrorCode::NicknameTaken, message);
                let _ = admitted.send(false);
                return;
            }
        };
        if self.rooms.get(&room).is_none() && self.rooms.len() >= self.max_rooms {
            let message = format!("the server has {} rooms in use; join one of them or try later", self.max_rooms);
            self.send_error(id, ErrorCode::RoomLimit, message);
            let _ = admitted.send(false);
            return;
        }
        if let Some(previous) = current.filter(|previous| *previous != room || !takeover) {
            self.leave_room(id, &previous);
        }

        self.rooms.entry(room.clone()).insert(id, Member { nick: nick.clone(), tab });
        self.connections.set_room(id, room.clone());
        let (members, crowded) = match self.rooms.get(&room) {
            Some(r) => (r.nicknames(PRESENCE_EVENTS_MAX), r.len() > PRESENCE_EVENTS_MAX),
            None => (Vec::new(), false),
        };
        let mut members = members;
        if !members.contains(&nick) {
            members.push(nick.clone());
        }
        let joined = ServerMessage::Joined {
            room: room.clone(),
            nick: nick.clone(),
            members,
            epoch: self.epoch.clone(),
            resumed,
        };
        self.send_to(id, frame(&joined));
        let _ = admitted.send(self.connections.contains(id));
        if !takeover {
            self.room_lists.changed(&room);
        }
        if !takeover && !crowded {
            let joined = frame(&ServerMessage::MemberJoined { room: room.clone(), nick });
            self.fan_out_room(&room, &joined, Some(id));
        }
    }

    fn member_nick(&self, id: ConnectionId, room: &RoomName) -> Option<Nickname> {
        self.rooms.get(room)?.get(id).map(|m| m.nick.clone())
    }

    /// Relays a stored message to its room, and lobby messages to plain
    /// clients as `nick: text`. Only the author's copy carries its client id.
    fn publish(&mut self, mut message: ChatMessage, author: Option<ConnectionId>) {
        if plain_bridge::reaches_plain_clients(&message) && self.connections.has_plain() {
            let too_slow = self.connections.send_plain(&plain_bridge::plain_line(&message));
            self.drop_slow(too_slow);
        }
        let room = message.room.clone();
        let own = author.map(|author| (author, frame(&ServerMessage::Message(message.clone()))));
        message.client_id = None;
        self.fan_out_room(&room, &frame(&ServerMessage::Message(message)), author);
        if let Some((author, own)) = own {
            self.send_to(author, own);
        }
    }

    /// Tells the room someone is typing; crowded rooms get no typing events
    /// (like presence events), which would cost O(members) per keystroke burst.
    fn typing(&mut self, id: ConnectionId, room: &RoomName) {
        match self.member_nick(id, room) {
            Some(_) if self.rooms.get(room).is_some_and(|r| r.len() > PRESENCE_EVENTS_MAX) => {}
            Some(nick) => {
                let event = frame(&ServerMessage::Typing { room: room.clone(), nick });
                self.fan_out_room(room, &event, Some(id));
            }
            None => self.send_error(id, ErrorCode::NotJoined, format!("join #{room} first")),
        }
    }
}
