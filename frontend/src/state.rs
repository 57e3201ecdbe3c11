//! The client's state and the reducer that applies socket and user events to it.
//!
//! Pure: time comes in with the actions, so every transition is testable.

use std::rc::Rc;

use chat_shared::limits::{PRESENCE_EVENTS_MAX, TYPING_EXPIRY_MS};
use chat_shared::{ChatMessage, ClientId, Epoch, ErrorCode, MessageText, Nickname, RoomInfo, RoomName, ServerMessage};
use yew::Reducible;

pub use crate::log::{Log, LogEntry, MAX_LOG_ENTRIES};

/// Most live messages held back while a gap before them is being fetched;
/// past this they are dropped and fetched with the gap.
pub const MAX_AHEAD: usize = 500;

/// How long to wait before asking again for newer messages after the server
/// could not serve them.
pub const NEWER_RETRY_MS: u64 = 2_000;

/// How long after a refusal for now (a join while presence is restored, a
/// send while the store is away or over the rate) the client asks again (ms).
pub const RETRY_REFUSED_MS: u64 = 2_000;

/// The state of the link to the server, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionStatus {
    /// First attempt under way.
    #[default]
    Connecting,
    /// The socket is open.
    Connected,
    /// The socket dropped; retrying.
    Reconnecting,
}

impl ConnectionStatus {
    /// What the status bar says.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting…",
            Self::Connected => "Connected",
            Self::Reconnecting => "Reconnecting…",
        }
    }

    /// A stable name for styling and tests.
    pub fn key(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
        }
    }
}

/// A message the user sent that the server has not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Our id for it; a resend with the same id is stored once.
    pub client_id: ClientId,
    /// Where it goes.
    pub room: RoomName,
    /// What it says.
    pub text: MessageText,
}

/// Everything the UI renders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatState {
    /// The link to the server.
    pub connection: ConnectionStatus,
    /// The nickname to join with (remembered across reloads).
    pub nick: Option<Nickname>,
    /// The room on screen.
    pub room: RoomName,
    /// Whether the server has accepted us into `room` on this connection.
    pub joined: bool,
    /// Rooms with people in them, and the lobby.
    pub rooms: Rc<Vec<RoomInfo>>,
    /// Who is in `room`, by name (in a crowded room, some of them as of
    /// joining: see [`ChatState::crowded`]).
    pub members: Rc<Vec<Nickname>>,
    /// The room was crowded since `members` was last listed in full, so
    /// joins and leaves went unannounced and the names are stale.
    names_stale: bool,
    /// Bumped when the names went stale and the room is no longer crowded:
    /// the client joins again (a repeated join changes nothing on the server
    /// and brings a fresh list).
    pub member_refreshes: u32,
    /// The log of `room`: messages by increasing id, with notices between.
    pub log: Log,
    /// Whether older messages exist before the first one in the log.
    pub has_more: bool,
    /// An older page was requested and has not arrived.
    pub loading_older: bool,
    /// The server has newer messages than the log holds (a resume in pages,
    /// or a gap before a live message): fetch them.
    pub has_newer: bool,
    /// A newer page was requested and has not arrived.
    pub fetching_newer: bool,
    /// Live messages that arrived after a gap, by id, waiting for it to fill.
    pub ahead: Rc<Vec<ChatMessage>>,
    /// The history epoch the log's ids belong to.
    pub epoch: Option<Epoch>,
    /// A newer page failed; when to ask again (ms).
    pub newer_retry_at: Option<u64>,
    /// A join was refused for now (presence unavailable or being restored):
    /// when to join again (ms).
    join_retry_at: Option<u64>,
    /// Bumped when a refused join is due again: the client joins again.
    pub join_retries: u32,
    /// A send was refused (store unavailable, rate limited): when to resend
    /// what is pending (ms).
    resend_at: Option<u64>,
    /// Bumped when refused sends are due again: the client resends what is pending.
    pub resends: u32,
    /// Whether the log continues from before the last join (so pages forward
    /// do not decide whether older messages exist).
    continuing: bool,
    /// Sent but not yet confirmed, oldest first, for any room.
    pub pending: Rc<Vec<Pending>>,
    /// Who is typing in `room`, with when the indicator expires (ms).
    pub typing: Rc<Vec<(Nickname, u64)>>,
    /// The last error the server reported, for the user to read.
    pub error: Option<String>,
}

/// What can happen to the state.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatAction {
    /// The socket opened.
    Connected,
    /// The socket closed; a reconnect is scheduled.
    Disconnected,
    /// The user picked a nickname.
    ChooseNick(Nickname),
    /// The user signed out: back to the join form.
    ForgetNick,
    /// The user opened a room (link, URL or form).
    EnterRoom(RoomName),
    /// The user sent a message; it is pending until confirmed.
    Queue(Pending),
    /// An older page was requested.
    LoadingOlder,
    /// A newer page was requested.
    FetchingNewer,
    /// The server sent this, at this time (ms since the epoch).
    Received(ServerMessage, u64),
    /// Time passed: expire typing indicators.
    Tick(u64),
}

impl ChatState {
    /// A fresh state for `room`, joining as `nick` if one is remembered.
    pub fn new(room: RoomName, nick: Option<Nickname>) -> Self {
        Self { room, nick, ..Self::default() }
    }

    /// The id of the newest message in the log, to resume after.
    pub fn last_id(&self) -> Option<u64> {
        self.log.last_id()
    }

    /// The id of the oldest message in the log, to page before.
    pub fn first_id(&self) -> Option<u64> {
        self.log.first_id()
    }

    /// Whether the log should fetch newer messages now (and none is on the way).
    pub fn wants_newer(&self) -> bool {
        self.joined
            && !self.fetching_newer
            && !self.loading_older
            && self.newer_retry_at.is_none()
            && (self.has_newer || !self.ahead.is_empty())
    }

    /// How many people are in the room on screen, as the last room list said.
    pub fn online_here(&self) -> Option<u32> {
        self.rooms.iter().find(|info| info.name == self.room).map(|info| info.online)
    }

    /// Whether the room on screen has more members than the server announces
    /// one by one ([`PRESENCE_EVENTS_MAX`]): its count comes from the room
    /// list, and the names held are not kept up to date.
    pub fn crowded(&self) -> bool {
        match self.online_here() {
            Some(online) => online as usize > PRESENCE_EVENTS_MAX,
            None => self.members.len() > PRESENCE_EVENTS_MAX,
        }
    }

    /// How many are in the room on screen when it is [crowded](Self::crowded).
    pub fn crowd(&self) -> Option<u32> {
        let listed = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        self.crowded().then(|| self.online_here().unwrap_or(listed))
    }

    /// After a room list: a crowded room's names go stale; once the room is
    /// small again they are asked for afresh.
    fn follow_crowding(&mut self) {
        if !self.joined {
            return;
        }
        if self.crowded() {
            self.names_stale = true;
        } else if self.names_stale {
            self.names_stale = false;
            self.member_refreshes = self.member_refreshes.wrapping_add(1);
        }
    }

    /// Pending messages of the room on screen.
    pub fn pending_here(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter().filter(|p| p.room == self.room)
    }

    /// Who is typing here now, by name.
    pub fn typing_names(&self) -> Vec<&Nickname> {
        self.typing.iter().map(|(nick, _)| nick).collect()
    }

    fn notice(&mut self, text: String) {
        self.has_more |= self.log.notice(text);
    }

    fn push_entries(&mut self, entries: impl IntoIterator<Item = LogEntry>) {
        self.has_more |= self.log.append(entries);
    }

    fn confirm(&mut self, client_id: &ClientId) {
        if self.pending.iter().any(|p| &p.client_id == client_id) {
            Rc::make_mut(&mut self.pending).retain(|p| &p.client_id != client_id);
        }
    }

    /// Adds stored messages around the log (see [`Log::merge`]).
    fn merge(&mut self, messages: Vec<ChatMessage>) {
        self.has_more |= self.log.merge(messages);
    }

    /// Takes a live message: it goes in once nothing is missing before it
    /// (the gap is fetched meanwhile); one the log holds is ignored.
    fn live(&mut self, message: ChatMessage) {
        if self.last_id().is_some_and(|last| message.id <= last) {
            return;
        }
        let ahead = Rc::make_mut(&mut self.ahead);
        if let Err(at) = ahead.binary_search_by_key(&message.id, |m| m.id) {
            ahead.insert(at, message);
        }
        self.release_ahead();
        if self.ahead.len() > MAX_AHEAD {
            // Dropped here, fetched with the gap.
            self.ahead = Rc::default();
            self.has_newer = true;
        }
    }

    /// Moves held-back messages that now follow the log into it, and drops
    /// the ones it already holds.
    fn release_ahead(&mut self) {
        let mut last = self.last_id();
        let mut settled = 0;
        let mut follows = Vec::new();
        for message in self.ahead.iter() {
            match last {
                Some(last) if message.id <= last => {}
                Some(last) if message.id > last + 1 => break,
                _ => {
                    last = Some(message.id);
                    follows.push(LogEntry::Message(message.clone()));
                }
            }
            settled += 1;
        }
        if settled > 0 {
            Rc::make_mut(&mut self.ahead).drain(..settled);
            self.push_entries(follows);
        }
    }

    fn receive(&mut self, message: ServerMessage, now: u64) {
        match message {
            ServerMessage::Joined { room, nick, members, epoch, resumed, rooms } if room == self.room => {
                if !resumed && !self.log.is_empty() {
                    // Another history (a different or restored database), or
                    // too far behind to page through: start over from the latest.
                    self.log = self.log.cleared();
                    self.ahead = Rc::default();
                    self.has_more = false;
                    self.notice("Showing the latest messages; scroll up for earlier ones".to_owned());
                }
                self.epoch = Some(epoch);
                self.continuing = resumed;
                self.newer_retry_at = None;
                self.joined = true;
                self.has_newer = false;
                self.fetching_newer = false;
                self.nick = Some(nick);
                self.members = Rc::new(members);
                if !rooms.is_empty() {
                    self.rooms = Rc::new(rooms);
                }
                self.names_stale = self.crowded();
                self.join_retry_at = None;
                self.error = None;
            }
            ServerMessage::History { room, messages, has_more, has_newer } if room == self.room => {
                let older = self.loading_older;
                self.merge(messages);
                self.release_ahead();
                // Pages forward say nothing new about older messages, but the
                // first page of a fresh log does.
                if older || !self.continuing {
                    self.has_more = has_more;
                }
                self.continuing = true;
                if !older {
                    self.has_newer = has_newer;
                    self.fetching_newer = false;
                }
                self.loading_older = false;
            }
            ServerMessage::Message(message) if message.room == self.room => {
                if let Some(client_id) = &message.client_id {
                    self.confirm(client_id);
                }
                Rc::make_mut(&mut self.typing).retain(|(nick, _)| *nick != message.nick);
                self.live(message);
            }
            ServerMessage::Ack { client_id, .. } => self.confirm(&client_id),
            // Notices follow the list: an event that changes nothing (a node
            // announcing again members it had already announced) says nothing.
            ServerMessage::MemberJoined { room, nick } if room == self.room => {
                if let Err(at) = self.members.binary_search(&nick) {
                    Rc::make_mut(&mut self.members).insert(at, nick.clone());
                    self.notice(format!("{nick} joined"));
                }
            }
            // A correction (presence events lost to a fault): taken silently,
            // since nobody arrived or left just now.
            ServerMessage::Members { room, members } if room == self.room => {
                self.members = Rc::new(members);
            }
            ServerMessage::MemberLeft { room, nick } if room == self.room => {
                Rc::make_mut(&mut self.typing).retain(|(typist, _)| *typist != nick);
                if self.members.contains(&nick) {
                    Rc::make_mut(&mut self.members).retain(|member| *member != nick);
                    self.notice(format!("{nick} left"));
                }
            }
            ServerMessage::Typing { room, nick } if room == self.room && Some(&nick) != self.nick.as_ref() => {
                let typing = Rc::make_mut(&mut self.typing);
                typing.retain(|(typist, _)| *typist != nick);
                typing.push((nick, now + TYPING_EXPIRY_MS));
            }
            ServerMessage::Rooms { rooms } => {
                self.rooms = Rc::new(rooms);
                self.follow_crowding();
            }
            // A connection token's user: every join is under its name.
            ServerMessage::Authenticated { name, .. } => {
                if self.nick.as_ref() != Some(&name) {
                    self.nick = Some(name);
                    self.joined = false;
                }
                self.error = None;
            }
            ServerMessage::Error { code, message } => {
                if matches!(code, ErrorCode::NicknameTaken | ErrorCode::NameReserved) {
                    self.nick = None;
                    self.joined = false;
                }
                // Refused the room (private, banned), or taken out of it (removed, kicked, banned).
                if matches!(code, ErrorCode::Forbidden | ErrorCode::Banned) {
                    self.joined = false;
                }
                // Refusals for now, not for good: ask again in a while.
                if code == ErrorCode::Unavailable && !self.joined && self.nick.is_some() {
                    self.join_retry_at = Some(now + RETRY_REFUSED_MS);
                }
                if matches!(code, ErrorCode::StoreUnavailable | ErrorCode::RateLimited | ErrorCode::SlowMode)
                    && self.joined
                    && self.pending_here().next().is_some()
                {
                    self.resend_at = Some(now + RETRY_REFUSED_MS);
                }
                self.loading_older = false;
                if self.fetching_newer {
                    // The server could not serve the page (store unavailable, too
                    // many requests): try again in a while, not in a tight loop.
                    self.fetching_newer = false;
                    self.newer_retry_at = Some(now + NEWER_RETRY_MS);
                }
                self.error = Some(message);
            }
            // Events of a room we already left.
            _ => {}
        }
    }
}

impl Reducible for ChatState {
    type Action = ChatAction;

    fn reduce(self: Rc<Self>, action: ChatAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            ChatAction::Connected => next.connection = ConnectionStatus::Connected,
            ChatAction::Disconnected => {
                next.connection = ConnectionStatus::Reconnecting;
                next.joined = false;
                // The next connection joins and resends anyway.
                next.join_retry_at = None;
                next.resend_at = None;
                next.loading_older = false;
                next.fetching_newer = false;
                next.typing = Rc::default();
            }
            ChatAction::ChooseNick(nick) => {
                next.nick = Some(nick);
                next.error = None;
            }
            ChatAction::ForgetNick => {
                next.nick = None;
                next.joined = false;
                next.error = None;
            }
            ChatAction::EnterRoom(room) if room != next.room => {
                next = Self {
                    connection: next.connection,
                    nick: next.nick,
                    room,
                    rooms: next.rooms,
                    pending: next.pending,
                    epoch: next.epoch,
                    log: next.log.cleared(),
                    ..Self::default()
                };
            }
            ChatAction::EnterRoom(_) => return self,
            ChatAction::Queue(pending) => Rc::make_mut(&mut next.pending).push(pending),
            ChatAction::LoadingOlder => next.loading_older = true,
            ChatAction::FetchingNewer => next.fetching_newer = true,
            ChatAction::Received(message, now) => next.receive(message, now),
            ChatAction::Tick(now) => {
                let due = |at: Option<u64>| at.is_some_and(|at| at <= now);
                let (newer, join, resend) = (due(next.newer_retry_at), due(next.join_retry_at), due(next.resend_at));
                let expired = next.typing.iter().any(|(_, expires)| *expires <= now);
                if !(newer || join || resend || expired) {
                    return self;
                }
                if newer {
                    next.newer_retry_at = None;
                }
                if join {
                    next.join_retry_at = None;
                    next.join_retries = next.join_retries.wrapping_add(1);
                }
                if resend {
                    next.resend_at = None;
                    next.resends = next.resends.wrapping_add(1);
                }
                Rc::make_mut(&mut next.typing).retain(|(_, expires)| *expires > now);
            }
        }
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn nick(s: &str) -> Nickname {
        Nickname::parse(s).expect("nick")
    }

    fn room(s: &str) -> RoomName {
        RoomName::parse(s).expect("room")
    }

    fn cid(s: &str) -> ClientId {
        ClientId::parse(s).expect("client id")
    }

    fn chat(id: u64, from: &str, client_id: Option<&str>) -> ChatMessage {
        ChatMessage {
            room: room("lobby"),
            id,
            ts: 1_700_000_000_000,
            nick: nick(from),
            text: MessageText::parse(format!("m{id}")).expect("text"),
            client_id: client_id.map(cid),
            deletes: None,
            deleted: false,
        }
    }

    fn got(message: ServerMessage) -> ChatAction {
        ChatAction::Received(message, 1_000)
    }

    fn apply(state: ChatState, actions: impl IntoIterator<Item = ChatAction>) -> Rc<ChatState> {
        actions.into_iter().fold(Rc::new(state), Reducible::reduce)
    }

    fn ids(state: &ChatState) -> Vec<u64> {
        state
            .log
            .iter()
            .filter_map(|e| match e {
                LogEntry::Message(m) => Some(m.id),
                LogEntry::Notice { .. } => None,
            })
            .collect()
    }

    fn history(messages: Vec<ChatMessage>, has_more: bool) -> ServerMessage {
        ServerMessage::History { room: room("lobby"), messages, has_more, has_newer: false }
    }

    fn newer_page(first: u64, last: u64, has_newer: bool) -> ServerMessage {
        let messages = (first..=last).map(|id| chat(id, "a", None)).collect();
        ServerMessage::History { room: room("lobby"), messages, has_more: true, has_newer }
    }

    fn joined(as_nick: &str, members: &[&str]) -> ServerMessage {
        joined_in("e1", as_nick, members, false)
    }

    fn joined_in(epoch: &str, as_nick: &str, members: &[&str], resumed: bool) -> ServerMessage {
        ServerMessage::Joined {
            room: room("lobby"),
            nick: nick(as_nick),
            members: members.iter().map(|m| nick(m)).collect(),
            epoch: Epoch::parse(epoch).expect("epoch"),
            resumed,
            rooms: vec![RoomInfo { name: room("lobby"), online: members.len() as u32 }],
        }
    }

    /// Bob has joined the lobby and holds message 1; then `more` happens.
    fn bob_holding_one(more: impl IntoIterator<Item = ChatAction>) -> Rc<ChatState> {
        let start = [got(joined("bob", &["bob"])), got(history(vec![chat(1, "a", None)], false))];
        apply(ChatState::new(room("lobby"), Some(nick("bob"))), start.into_iter().chain(more))
    }

    fn live(id: u64) -> ChatAction {
        got(ServerMessage::Message(chat(id, "a", None)))
    }

    #[test]
    fn a_resume_pages_forward_holding_live_messages_until_the_gap_fills() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [got(joined("bob", &["bob"])), got(history(vec![chat(1, "a", None), chat(2, "a", None)], false))],
        );
        // Reconnected: resumed after 2; a live message overtakes the first page.
        let state =
            apply((*state).clone(), [ChatAction::Disconnected, got(joined_in("e1", "bob", &["bob"], true)), live(900)]);
        assert_eq!(ids(&state), [1, 2], "900 waits for 3..=899");
        assert!(state.wants_newer());
        let state = apply((*state).clone(), [ChatAction::FetchingNewer, got(newer_page(3, 400, true))]);
        assert!(state.wants_newer(), "more pages to come");
        let state = apply((*state).clone(), [ChatAction::FetchingNewer, live(901), got(newer_page(401, 899, false))]);
        assert_eq!(state.last_id(), Some(901));
        let all = ids(&state);
        assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "contiguous, in order, once");
        assert!(!state.wants_newer(), "caught up");
    }

    #[test]
    fn the_room_list_comes_with_joined_and_later_lists_replace_it() {
        let state = apply(ChatState::new(room("lobby"), Some(nick("bob"))), [got(joined("bob", &["alice", "bob"]))]);
        assert_eq!(*state.rooms, [RoomInfo { name: room("lobby"), online: 2 }]);
        let later = vec![RoomInfo { name: room("dev"), online: 1 }, RoomInfo { name: room("lobby"), online: 3 }];
        let state = apply((*state).clone(), [got(ServerMessage::Rooms { rooms: later.clone() })]);
        assert_eq!(*state.rooms, later);
    }

    #[test]
    fn a_failed_page_is_asked_for_again_later_not_at_once() {
        let state = bob_holding_one([
            live(3),
            ChatAction::FetchingNewer,
            got(ServerMessage::error(ErrorCode::StoreUnavailable, "history is unavailable right now")),
        ]);
        assert!(!state.wants_newer(), "not in a tight loop");
        let state = state.reduce(ChatAction::Tick(1_000 + NEWER_RETRY_MS));
        assert!(state.wants_newer(), "asked again after a while");
    }

    #[test]
    fn a_gap_in_live_messages_is_fetched() {
        let state = bob_holding_one([live(3)]);
        assert_eq!(ids(&state), [1]);
        assert!(state.wants_newer(), "2 is missing");
        let state = apply((*state).clone(), [ChatAction::FetchingNewer, got(newer_page(2, 3, false))]);
        assert_eq!(ids(&state), [1, 2, 3]);
        assert!(!state.wants_newer());
    }

    #[test]
    fn too_many_held_back_messages_are_dropped_and_fetched_instead() {
        let state = bob_holding_one((3..=(MAX_AHEAD as u64 + 3)).map(live));
        assert!(state.ahead.len() <= MAX_AHEAD);
        assert!(state.wants_newer());
    }

    #[test]
    fn a_join_that_does_not_resume_starts_a_fresh_log() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [got(joined("bob", &["bob"])), got(history(vec![chat(150, "a", None)], true))],
        );
        // The database was restored from an older backup: ids restart lower.
        let state = apply(
            (*state).clone(),
            [
                ChatAction::Disconnected,
                got(joined_in("e2", "bob", &["bob"], false)),
                got(history(vec![chat(99, "a", None), chat(100, "a", None)], true)),
                live(101),
            ],
        );
        assert_eq!(ids(&state), [99, 100, 101], "new messages show although their ids are lower");
        assert_eq!(state.epoch.as_ref().map(Epoch::as_str), Some("e2"));
        assert!(state.has_more);
    }

    #[test]
    fn joining_sets_members_and_the_latest_page() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [
                ChatAction::Connected,
                got(joined("bob", &["alice", "bob"])),
                got(history(vec![chat(4, "alice", None), chat(5, "alice", None)], true)),
            ],
        );
        assert!(state.joined);
        assert_eq!(*state.members, [nick("alice"), nick("bob")]);
        assert_eq!(ids(&state), [4, 5]);
        assert!(state.has_more);
        assert_eq!((state.first_id(), state.last_id()), (Some(4), Some(5)));
    }

    #[test]
    fn older_pages_go_first_and_resumes_go_last_without_duplicates() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [
                got(history(vec![chat(4, "a", None), chat(5, "a", None)], true)),
                ChatAction::LoadingOlder,
                got(history(vec![chat(2, "a", None), chat(3, "a", None)], false)),
                ChatAction::Disconnected,
                got(history(vec![chat(5, "a", None), chat(6, "a", None), chat(7, "a", None)], true)),
                got(ServerMessage::Message(chat(7, "a", None))),
                got(ServerMessage::Message(chat(8, "a", None))),
            ],
        );
        assert_eq!(ids(&state), [2, 3, 4, 5, 6, 7, 8]);
        assert!(!state.has_more, "a resume does not reopen paging");
        assert!(!state.loading_older);
    }

    #[test]
    fn pending_messages_clear_on_their_echo_or_ack() {
        let pending = |id: &str| {
            ChatAction::Queue(Pending {
                client_id: cid(id),
                room: room("lobby"),
                text: MessageText::parse("hi").expect("text"),
            })
        };
        let state =
            apply(ChatState::new(room("lobby"), Some(nick("bob"))), [pending("c1"), pending("c2"), pending("c3")]);
        assert_eq!(state.pending_here().count(), 3);
        let state = apply(
            (*state).clone(),
            [
                got(ServerMessage::Message(chat(1, "bob", Some("c1")))),
                got(ServerMessage::Ack { room: room("lobby"), client_id: cid("c2"), id: 2 }),
            ],
        );
        let left: Vec<&str> = state.pending_here().map(|p| p.client_id.as_str()).collect();
        assert_eq!(left, ["c3"]);
    }

    fn lobby_list(online: u32) -> ServerMessage {
        ServerMessage::Rooms { rooms: vec![RoomInfo { name: room("lobby"), online }] }
    }

    #[test]
    fn a_crowded_room_counts_from_the_room_list_and_lists_names_again_once_small() {
        // The server lists the first names, and the joiner among them.
        let mut listed: Vec<String> = (0..PRESENCE_EVENTS_MAX).map(|i| format!("p{i:03}")).collect();
        listed.push("zed".to_owned());
        let crowd = ServerMessage::Joined {
            room: room("lobby"),
            nick: nick("zed"),
            members: listed.iter().map(|m| nick(m)).collect(),
            epoch: Epoch::parse("e1").expect("epoch"),
            resumed: false,
            rooms: vec![RoomInfo { name: room("lobby"), online: 150 }],
        };
        let state = apply(ChatState::new(room("lobby"), Some(nick("zed"))), [got(crowd)]);
        assert_eq!(state.crowd(), Some(150));

        // Still crowded, then small again: one refresh; a later small list asks nothing more.
        let state = apply((*state).clone(), [got(lobby_list(120))]);
        assert_eq!(state.member_refreshes, 0);
        let state = apply((*state).clone(), [got(lobby_list(PRESENCE_EVENTS_MAX as u32))]);
        assert!(!state.crowded());
        assert_eq!(state.member_refreshes, 1);
        let state = apply((*state).clone(), [got(joined("zed", &["a", "zed"])), got(lobby_list(90))]);
        assert_eq!(state.member_refreshes, 1, "the fresh list is current");
        // Crowded again after the refresh: the next small list asks again.
        let state = apply((*state).clone(), [got(lobby_list(101)), got(lobby_list(99))]);
        assert_eq!(state.member_refreshes, 2);
    }

    #[test]
    fn a_room_that_never_crowds_keeps_its_names_without_refreshes() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [got(joined("bob", &["bob"])), got(lobby_list(2)), got(lobby_list(100)), got(lobby_list(3))],
        );
        assert!(!state.crowded());
        assert_eq!(state.member_refreshes, 0);
    }

    #[test]
    fn presence_updates_members_and_adds_notices() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [
                got(joined("bob", &["bob"])),
                got(ServerMessage::MemberJoined { room: room("lobby"), nick: nick("carol") }),
                got(ServerMessage::MemberJoined { room: room("lobby"), nick: nick("carol") }),
                got(ServerMessage::MemberLeft { room: room("lobby"), nick: nick("bob2") }),
                got(ServerMessage::MemberLeft { room: room("lobby"), nick: nick("carol") }),
                got(ServerMessage::MemberLeft { room: room("lobby"), nick: nick("carol") }),
                got(ServerMessage::MemberJoined { room: room("elsewhere"), nick: nick("dave") }),
            ],
        );
        assert_eq!(*state.members, [nick("bob")]);
        let notices: Vec<&str> = state
            .log
            .iter()
            .filter_map(|e| match e {
                LogEntry::Notice { text, .. } => Some(text.as_str()),
                LogEntry::Message(_) => None,
            })
            .collect();
        assert_eq!(notices, ["carol joined", "carol left"], "repeated or unknown names change nothing, say nothing");
    }

    #[test]
    fn a_join_refused_for_now_and_refused_sends_are_tried_again_after_a_while() {
        let refused = |code, at| ChatAction::Received(ServerMessage::error(code, "not now"), at);
        let state = apply(ChatState::new(room("lobby"), Some(nick("bob"))), [refused(ErrorCode::Unavailable, 1_000)]);
        assert!(!state.joined);
        let state = state.reduce(ChatAction::Tick(1_000 + RETRY_REFUSED_MS - 1));
        assert_eq!(state.join_retries, 0, "not in a tight loop");
        let state = state.reduce(ChatAction::Tick(1_000 + RETRY_REFUSED_MS));
        assert_eq!(state.join_retries, 1, "joins again");
        let state = apply((*state).clone(), [got(joined("bob", &["bob"]))]);
        let state = state.reduce(ChatAction::Queue(Pending {
            client_id: cid("c1"),
            room: room("lobby"),
            text: MessageText::parse("hi").expect("text"),
        }));
        let state = apply((*state).clone(), [refused(ErrorCode::StoreUnavailable, 5_000)]);
        let state = state.reduce(ChatAction::Tick(5_000 + RETRY_REFUSED_MS));
        assert_eq!((state.resends, state.join_retries), (1, 1), "resends what is pending, once");
        let state = state.reduce(ChatAction::Tick(9_000 + RETRY_REFUSED_MS));
        assert_eq!(state.resends, 1);
        // Nothing pending: a refusal schedules nothing.
        let state =
            apply((*state).clone(), [got(ServerMessage::Ack { room: room("lobby"), client_id: cid("c1"), id: 1 })]);
        let state = apply((*state).clone(), [refused(ErrorCode::RateLimited, 20_000)]);
        assert_eq!(state.reduce(ChatAction::Tick(30_000)).resends, 1);
    }

    #[test]
    fn a_corrected_member_list_replaces_the_one_shown_without_notices() {
        let members = |room_name: &str, names: &[&str]| ServerMessage::Members {
            room: room(room_name),
            members: names.iter().map(|n| nick(n)).collect(),
        };
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [
                got(joined("bob", &["ann", "bob"])),
                got(members("lobby", &["bob", "carol"])),
                got(members("elsewhere", &["dave"])),
            ],
        );
        assert_eq!(*state.members, [nick("bob"), nick("carol")]);
        assert!(!state.log.iter().any(|e| matches!(e, LogEntry::Notice { .. })), "nobody came or went just now");
        // Events go on from the corrected list.
        let state =
            apply((*state).clone(), [got(ServerMessage::MemberLeft { room: room("lobby"), nick: nick("carol") })]);
        assert_eq!(*state.members, [nick("bob")]);
    }

    #[test]
    fn typing_shows_then_expires_or_ends_with_a_message() {
        let typing = |who: &str| ServerMessage::Typing { room: room("lobby"), nick: nick(who) };
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [
                ChatAction::Received(typing("alice"), 0),
                ChatAction::Received(typing("carol"), 1_000),
                ChatAction::Received(typing("bob"), 1_000),
            ],
        );
        assert_eq!(state.typing_names(), [&nick("alice"), &nick("carol")], "never shows ourselves");
        let state = state.reduce(ChatAction::Tick(TYPING_EXPIRY_MS + 1));
        assert_eq!(state.typing_names(), [&nick("carol")], "alice expired 5 s after her last keystroke");
        let state = state.reduce(got(ServerMessage::Message(chat(1, "carol", None))));
        assert!(state.typing_names().is_empty(), "carol's message ends her indicator at once");
    }

    #[test]
    fn entering_another_room_starts_a_fresh_log_but_keeps_pending() {
        let state = bob_holding_one([
            ChatAction::Queue(Pending {
                client_id: cid("c1"),
                room: room("lobby"),
                text: MessageText::parse("x").expect("text"),
            }),
            ChatAction::EnterRoom(room("dev")),
        ]);
        assert_eq!(state.room, room("dev"));
        assert!(!state.joined);
        assert!(state.log.is_empty());
        assert_eq!(state.pending.len(), 1);
        assert_eq!(state.pending_here().count(), 0);
    }

    #[test]
    fn a_taken_nickname_asks_for_another() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [got(ServerMessage::error(ErrorCode::NicknameTaken, "“bob” is already in use"))],
        );
        assert_eq!(state.nick, None);
        assert_eq!(state.error.as_deref(), Some("“bob” is already in use"));
        let message = "“alice” belongs to a registered account; sign in to use it, or pick another";
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("alice"))),
            [got(ServerMessage::error(ErrorCode::NameReserved, message))],
        );
        assert_eq!((state.nick.clone(), state.error.as_deref()), (None, Some(message)), "as a taken one");
    }

    #[test]
    fn a_tokens_name_replaces_whatever_name_was_remembered() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("guest-name"))),
            [
                got(ServerMessage::error(ErrorCode::Unavailable, "retry")),
                got(ServerMessage::Authenticated { name: nick("u-alice"), expires_in: 60 }),
            ],
        );
        assert_eq!((state.nick.clone(), state.error.clone()), (Some(nick("u-alice")), None));
    }

    #[test]
    fn a_drop_shows_reconnecting_and_keeps_the_log() {
        let state = apply(
            ChatState::new(room("lobby"), Some(nick("bob"))),
            [
                ChatAction::Connected,
                got(joined("bob", &["bob"])),
                got(history(vec![chat(1, "a", None)], false)),
                ChatAction::Disconnected,
            ],
        );
        assert_eq!(state.connection, ConnectionStatus::Reconnecting);
        assert_eq!(state.connection.label(), "Reconnecting…");
        assert!(!state.joined);
        assert_eq!(state.last_id(), Some(1));
    }
}
