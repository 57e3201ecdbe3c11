//! The hub task itself: applies commands one at a time, in order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_ws::{CloseCode, CloseReason};
use bytestring::ByteString;
use chat_shared::limits::{HISTORY_PAGE, RESUME_MAX};
use chat_shared::{ChatMessage, ErrorCode, MessageText, Nickname, RoomName, ServerMessage};
use tokio::sync::mpsc;

use super::rooms::{Member, Rooms};
use super::{
    Command, ConnectionId, Control, JoinRequest, Outbound, OutboundSender, Protocol, QueueError, guest_nickname,
};
use crate::metrics::Metrics;
use crate::store::{Appended, HistoryStore, NewMessage, Page, StoreError};

/// Rooms larger than this get no per-member join/leave events and a truncated
/// member list: those events would cost O(members²) while a room fills, and
/// nobody reads a list of thousands. The room list still counts everyone.
pub(super) const PRESENCE_EVENTS_MAX: usize = 200;

/// Most commands taken from the queue at once. Messages among them are stored
/// in one transaction, which is what keeps the store off the critical path.
const MAX_BATCH: usize = 512;

/// How often a changed room list is sent out; coalesces join storms.
const ROOM_LIST_INTERVAL: Duration = Duration::from_millis(250);

/// Who sent a message being stored, which decides who hears of it how.
enum Origin {
    /// A JSON client, which gets an ack.
    Json(ConnectionId),
    /// A plain client, whose frame was already echoed to the plain clients.
    Plain,
}

struct Connection {
    protocol: Protocol,
    outbound: OutboundSender,
    /// The room a JSON connection is in.
    room: Option<RoomName>,
}

pub(super) struct Hub {
    store: Arc<dyn HistoryStore>,
    connections: HashMap<ConnectionId, Connection>,
    rooms: Rooms,
    room_list_changed: bool,
    metrics: Metrics,
    /// The plain connections, kept apart so their echo never walks the JSON ones.
    plain: HashSet<ConnectionId>,
}

/// Encodes an event once, for any number of recipients.
fn frame(message: &ServerMessage) -> Outbound {
    Outbound::Text(ByteString::from(message.encode()))
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
    pub(super) fn new(store: Arc<dyn HistoryStore>, metrics: Metrics) -> Self {
        Self {
            store,
            connections: HashMap::new(),
            rooms: Rooms::default(),
            room_list_changed: false,
            metrics,
            plain: HashSet::new(),
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
                        self.apply_batch(batch).await;
                    }
                    None => break,
                },
                _ = room_list_tick.tick(), if self.room_list_changed => self.publish_room_list(),
            }
        }
        tracing::debug!("hub stopped");
    }

    /// Applies commands in order. Consecutive messages are stored together
    /// (one transaction), then relayed and acknowledged in order; any other
    /// command first flushes the messages before it, so a join always sees
    /// every message sent before it.
    async fn apply_batch(&mut self, batch: Vec<Command>) {
        let mut pending: Vec<(Origin, NewMessage)> = Vec::new();
        for command in batch {
            match command {
                Command::Say { id, room, client_id, text } => match self.member_nick(id, &room) {
                    Some(nick) => {
                        let message = NewMessage { room, ts: now_millis(), nick, text, client_id: Some(client_id) };
                        pending.push((Origin::Json(id), message));
                    }
                    None => self.send_error(id, ErrorCode::NotJoined, format!("join #{room} before sending to it")),
                },
                Command::PlainFrame { id, frame: relayed } => {
                    // The echo goes out at once; only the bridge to the lobby waits for the store.
                    self.fan_out_plain(&relayed);
                    if let Outbound::Text(text) = relayed
                        && let Ok(text) = MessageText::parse(String::from(text))
                    {
                        let message = NewMessage {
                            room: RoomName::lobby(),
                            ts: now_millis(),
                            nick: guest_nickname(id),
                            text,
                            client_id: None,
                        };
                        pending.push((Origin::Plain, message));
                    }
                }
                Command::Control(control) => {
                    self.store_and_relay(&mut pending).await;
                    self.apply(control).await;
                }
            }
        }
        self.store_and_relay(&mut pending).await;
    }

    async fn apply(&mut self, control: Control) {
        match control {
            Control::Connect { id, protocol, outbound } => {
                if protocol == Protocol::Json {
                    let rooms = frame(&ServerMessage::Rooms { rooms: self.rooms.directory() });
                    let _ = outbound.try_send(rooms);
                }
                if protocol == Protocol::Plain {
                    self.plain.insert(id);
                }
                self.connections.insert(id, Connection { protocol, outbound, room: None });
            }
            Control::Disconnect { id } => self.disconnect(id),
            Control::Join { id, request } => self.join(id, request).await,
            Control::Typing { id, room } => self.typing(id, &room),
        }
    }

    /// Stores the pending messages in one go, then relays each and acknowledges it.
    async fn store_and_relay(&mut self, pending: &mut Vec<(Origin, NewMessage)>) {
        if pending.is_empty() {
            return;
        }
        let (origins, messages): (Vec<Origin>, Vec<NewMessage>) = pending.drain(..).unzip();
        match self.store.append_batch(messages).await {
            Ok(results) => {
                for (origin, appended) in origins.into_iter().zip(results) {
                    match (origin, appended) {
                        (Origin::Json(sender), Appended::New(message)) => {
                            let ack = ack_for(&message);
                            self.publish(message);
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
                for origin in origins {
                    if let Origin::Json(sender) = origin {
                        self.send_error(
                            sender,
                            ErrorCode::StoreUnavailable,
                            "the message was not stored; it will be retried",
                        );
                    }
                }
            }
        }
    }

    /// Queues `frame` for one connection; a full queue drops the connection.
    fn send_to(&mut self, id: ConnectionId, frame: Outbound) {
        let full = match self.connections.get(&id) {
            Some(connection) => connection.outbound.try_send(frame) == Err(QueueError::Full),
            None => false,
        };
        if full {
            self.drop_slow(vec![id]);
        }
    }

    fn send_error(&mut self, id: ConnectionId, code: ErrorCode, message: impl Into<String>) {
        self.send_to(id, frame(&ServerMessage::error(code, message)));
    }

    /// Queues `frame` for every member of `room` except `except`.
    fn fan_out_room(&mut self, room: &RoomName, frame: &Outbound, except: Option<ConnectionId>) {
        let Some(members) = self.rooms.get(room) else { return };
        let mut too_slow = Vec::new();
        for id in members.ids().filter(|id| Some(*id) != except) {
            if let Some(connection) = self.connections.get(&id)
                && connection.outbound.try_send(frame.clone()) == Err(QueueError::Full)
            {
                too_slow.push(id);
            }
        }
        self.drop_slow(too_slow);
    }

    /// Queues `frame` for every plain connection.
    fn fan_out_plain(&mut self, frame: &Outbound) {
        let connections = &self.connections;
        let too_slow: Vec<ConnectionId> = self
            .plain
            .iter()
            .copied()
            .filter(|id| {
                connections.get(id).is_some_and(|c| c.outbound.try_send(frame.clone()) == Err(QueueError::Full))
            })
            .collect();
        self.drop_slow(too_slow);
    }

    /// Queues `frame` for every JSON connection, joined to a room or not.
    fn fan_out_json(&mut self, frame: &Outbound) {
        let too_slow: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, c)| c.protocol == Protocol::Json)
            .filter(|(_, c)| c.outbound.try_send(frame.clone()) == Err(QueueError::Full))
            .map(|(id, _)| *id)
            .collect();
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
        self.plain.remove(&id);
        if let Some(connection) = self.connections.remove(&id)
            && let Some(room) = connection.room
        {
            self.leave_room(id, &room);
        }
    }

    /// Takes `id` out of `room` and tells the others.
    fn leave_room(&mut self, id: ConnectionId, room: &RoomName) {
        let crowded = self.rooms.get(room).is_some_and(|r| r.len() > PRESENCE_EVENTS_MAX);
        if let Some(member) = self.rooms.remove(room, id) {
            self.room_list_changed = true;
            if crowded {
                return;
            }
            let left = frame(&ServerMessage::MemberLeft { room: room.clone(), nick: member.nick });
            self.fan_out_room(room, &left, None);
        }
    }

    async fn join(&mut self, id: ConnectionId, request: JoinRequest) {
        let JoinRequest { room, nick, tab, after } = request;
        let Some(current) = self.connections.get(&id).map(|c| c.room.clone()) else { return };

        let mut takeover = false;
        if let Some((holder, member)) = self.rooms.get(&room).and_then(|r| r.holder_of(&nick)) {
            if holder == id {
                // A repeated join of the same room under the same name: just resend the state.
                takeover = true;
            } else if member.tab == tab {
                // The same browser tab reconnected before we noticed its old link died.
                self.rooms.remove(&room, holder);
                let reason =
                    CloseReason { code: CloseCode::Policy, description: Some("replaced by a newer connection".into()) };
                self.send_to(holder, Outbound::Close(reason));
                self.connections.remove(&holder);
                takeover = true;
            } else {
                let message = format!("“{nick}” is already in use in #{room}; pick another nickname");
                self.send_error(id, ErrorCode::NicknameTaken, message);
                return;
            }
        }
        if let Some(previous) = current.filter(|previous| *previous != room || !takeover) {
            self.leave_room(id, &previous);
        }

        self.rooms.entry(room.clone()).insert(id, Member { nick: nick.clone(), tab });
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.room = Some(room.clone());
        }
        let (members, crowded) = match self.rooms.get(&room) {
            Some(r) => (r.nicknames(PRESENCE_EVENTS_MAX), r.len() > PRESENCE_EVENTS_MAX),
            None => (Vec::new(), false),
        };
        let mut members = members;
        if !members.contains(&nick) {
            members.push(nick.clone());
        }
        self.send_to(id, frame(&ServerMessage::Joined { room: room.clone(), nick: nick.clone(), members }));
        match self.history_for_join(&room, after).await {
            Ok(history) => self.send_to(id, frame(&history)),
            Err(error) => {
                tracing::error!(%error, %room, "reading history failed");
                self.send_error(id, ErrorCode::StoreUnavailable, "history is unavailable right now");
            }
        }
        if !takeover {
            self.room_list_changed = true;
        }
        if !takeover && !crowded {
            let joined = frame(&ServerMessage::MemberJoined { room: room.clone(), nick });
            self.fan_out_room(&room, &joined, Some(id));
        }
    }

    /// Everything after `after` (resume), or the latest page.
    async fn history_for_join(&self, room: &RoomName, after: Option<u64>) -> Result<ServerMessage, StoreError> {
        let page = match after {
            Some(id) => Page::After { id, limit: RESUME_MAX },
            None => Page::Latest { limit: HISTORY_PAGE },
        };
        let messages = self.store.page(room, page).await?;
        let oldest = messages.first().map(|m| m.id).or(after.map(|id| id + 1)).unwrap_or(0);
        let has_more = oldest > 1 && self.store.has_before(room, oldest).await?;
        Ok(ServerMessage::History { room: room.clone(), messages, has_more })
    }

    fn member_nick(&self, id: ConnectionId, room: &RoomName) -> Option<Nickname> {
        self.rooms.get(room)?.get(id).map(|m| m.nick.clone())
    }

    /// Relays a stored message to its room, and lobby messages to plain clients as `nick: text`.
    fn publish(&mut self, message: ChatMessage) {
        if message.room.as_str() == chat_shared::DEFAULT_ROOM && !self.plain.is_empty() {
            let plain = Outbound::Text(ByteString::from(format!("{}: {}", message.nick, message.text)));
            self.fan_out_plain(&plain);
        }
        let room = message.room.clone();
        self.fan_out_room(&room, &frame(&ServerMessage::Message(message)), None);
    }

    fn typing(&mut self, id: ConnectionId, room: &RoomName) {
        match self.member_nick(id, room) {
            Some(nick) => {
                let event = frame(&ServerMessage::Typing { room: room.clone(), nick });
                self.fan_out_room(room, &event, Some(id));
            }
            None => self.send_error(id, ErrorCode::NotJoined, format!("join #{room} first")),
        }
    }

    fn publish_room_list(&mut self) {
        self.room_list_changed = false;
        let list = frame(&ServerMessage::Rooms { rooms: self.rooms.directory() });
        self.fan_out_json(&list);
    }
}
