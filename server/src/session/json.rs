//! A session on `/ws`, speaking the typed JSON protocol of `chat-shared`.
//!
//! Membership, messages and typing go to the hub. The nickname is claimed
//! from presence here, before the hub is asked to let the connection in, and
//! given back when the connection leaves the room or ends. History (the page
//! after a join, older pages, pages forward) is read here, from the store's readers,
//! one request at a time beside the connection loop: a slow read delays only
//! this client, and its pages queue behind (and are counted with) the live
//! events of its outbound queue. Pages forward from where the client is
//! are tried again for a while if the store fails: the room's live
//! messages wait behind them (see `live_order`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use chat_shared::limits::{HISTORY_PAGE, HISTORY_PAGE_MAX, PRESENCE_EVENTS_MAX, RESUME_MAX};
use chat_shared::{ClientMessage, Epoch, ErrorCode, Nickname, RoomName, ServerMessage};

use crate::accounts::Accounts;
use crate::accounts::name_key::name_key;
use crate::bus::Peer;
use crate::hub::{ConnectionId, HubHandle, HubStopped, JoinClaim, JoinRequest, Outbound};
use crate::policy::RoomPolicy;
use crate::policy::changes::RoomWatch;
use crate::policy::kicks::{AddressBan, Kick};
use crate::policy::known::KnownBan;
use crate::policy::rules::Party;
use crate::policy::rules::{Caller, Denial};
use crate::policy::store::{NewBan, ban_target};
use crate::presence::{Claim, Claimant, Departure, Presence};
use crate::session::held_name::{self, depart, release};
use crate::session::history_pages::HistoryPages;
use crate::session::identity::{HeldToken, Identity};
use crate::session::{Background, FrameHandler, Handled, SessionContext, serve};
use crate::store::{HistoryStore, StoreError};
use crate::tokens::{TokenError, TokenVerifier, VerifiedToken};
use chat_shared::Endpoint;

/// History requests one connection may have waiting besides the one being
/// read; more are refused with `rate_limited`.
const MAX_QUEUED_READS: usize = 4;

/// Registers one JSON connection now, and runs it (the future) until either side closes it.
pub fn run(
    socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    context: SessionContext,
) -> impl Future<Output = ()> {
    serve(socket, stream, context, Endpoint::Json, |id, context| JsonSession {
        id,
        hub: context.hub.clone(),
        store: context.store.clone(),
        pages: HistoryPages::new(context.store.clone(), context.settings.outbound_queue_bytes),
        joined: None,
        waiting: VecDeque::new(),
        reading: None,
        presence: context.presence.clone(),
        peer: context.hub.peer(id),
        claimed: None,
        accounts: context.accounts.clone(),
        identity: std::mem::take(&mut context.identity),
        tokens: context.tokens.clone(),
        guests: context.guests,
        policy: context.policy.clone(),
        room_watch: None,
        address: context.peer,
        joined_at: tokio::time::Instant::now(),
    })
}

/// A history read this connection asked for.
enum Read {
    /// The page after entering a room: the latest, or the first after `after`.
    Entered { room: RoomName, resume_after: Option<u64> },
    /// Older messages.
    Before { room: RoomName, before: u64, limit: u32 },
    /// Newer messages.
    After { room: RoomName, after: u64, limit: u32 },
}

/// A read under way; resolves to the frames to queue.
type Reading = Pin<Box<dyn Future<Output = Outbound>>>;

/// What one JSON connection needs to serve its peer.
struct JsonSession {
    id: ConnectionId,
    hub: HubHandle,
    store: Arc<dyn HistoryStore>,
    pages: HistoryPages,
    /// The room the hub admitted this connection to.
    joined: Option<RoomName>,
    /// Reads waiting for the one under way.
    waiting: VecDeque<Read>,
    reading: Option<Reading>,
    presence: Arc<dyn Presence>,
    /// This connection, as presence names it.
    peer: Peer,
    /// The nickname this connection holds, and where.
    claimed: Option<(RoomName, Nickname)>,
    /// Whose names a guest may not take.
    accounts: Arc<Accounts>,
    /// Who the connection speaks for: its name and rooms.
    identity: Identity,
    /// Checks the tokens of `authenticate` and `refresh`.
    tokens: Option<Arc<TokenVerifier>>,
    /// Whether guests may join (`--guests`).
    guests: bool,
    /// Who may enter which room.
    policy: Arc<RoomPolicy>,
    /// Changes of the room this connection is in.
    room_watch: Option<RoomWatch>,
    /// The client's address (bans name guests by it).
    address: Option<std::net::IpAddr>,
    /// When it joined its room (a kick reaches the sessions in the room before it).
    joined_at: tokio::time::Instant,
}

impl JsonSession {
    /// Handles one client message; returns what to answer directly, if anything.
    async fn on_message(&mut self, message: ClientMessage) -> Result<Option<ServerMessage>, HubStopped> {
        match message {
            ClientMessage::Join { room, nick, tab, after, epoch } => {
                if let Some(refusal) = self.may_not_enter(&room) {
                    return Ok(Some(refusal));
                }
                // Watched before the decision: a change right after it is not missed.
                let watch = self.policy.watch(&room);
                if let Some(refusal) = self.not_a_member(&room).await {
                    return Ok(Some(refusal));
                }
                let nick = match self.name_to_use(nick).await {
                    Ok(nick) => nick,
                    Err(refusal) => return Ok(Some(refusal)),
                };
                // Debug, not info: a crowd rejoining after a restart wrote a line per join.
                tracing::debug!(%nick, %room, ?after, "joining");
                let claimant = Claimant { tab, owner: self.identity.owner() };
                let claimed = match held_name::claim(self.presence.as_ref(), &room, &nick, &claimant, self.peer).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::error!(%error, %room, "claiming a nickname failed");
                        let message = "joining rooms is unavailable right now; retry soon";
                        return Ok(Some(ServerMessage::error(ErrorCode::Unavailable, message)));
                    }
                };
                let claim = match claimed.claim {
                    Claim::Free => JoinClaim::New,
                    Claim::Held => JoinClaim::Repeated,
                    Claim::Replaces(stale) => JoinClaim::Replaces(stale),
                    Claim::Shared => JoinClaim::Shared,
                    Claim::Recovering => {
                        let message =
                            "the server is restoring who is in which room after an outage; retry in a few seconds";
                        return Ok(Some(ServerMessage::error(ErrorCode::Unavailable, message)));
                    }
                    Claim::Leaving => {
                        let message = format!("you are still leaving #{room} elsewhere; retry in a few seconds");
                        return Ok(Some(ServerMessage::error(ErrorCode::Unavailable, message)));
                    }
                    Claim::TooMany => {
                        let message = format!(
                            "you are in #{room} from {} places already; leave it in one of them first",
                            crate::presence::SHARED_HOLDERS_MAX
                        );
                        return Ok(Some(ServerMessage::error(ErrorCode::Forbidden, message)));
                    }
                    Claim::Taken => {
                        let message = format!("“{nick}” is already in use in #{room}; pick another nickname");
                        return Ok(Some(ServerMessage::error(ErrorCode::NicknameTaken, message)));
                    }
                };
                let members = self.presence.members(&room, PRESENCE_EVENTS_MAX).await.unwrap_or_else(|error| {
                    tracing::warn!(%error, %room, "listing members failed");
                    Arc::from([])
                });
                let resume_after = self.resume_point(&room, after, epoch.as_ref()).await;
                let request = JoinRequest {
                    room: room.clone(),
                    nick: nick.clone(),
                    resumed: resume_after.is_some(),
                    claim,
                    members,
                    room_size: claimed.room_size,
                };
                let admitted = self.hub.join(self.id, request).await;
                let held = (room.clone(), nick);
                if !matches!(admitted, Ok(true)) {
                    // Refused (or this session is being dropped, or the hub stopped):
                    // make sure the room does not keep it, give back a name this join took.
                    let took = claim != JoinClaim::Repeated;
                    let departure = if took {
                        depart(self.presence.as_ref(), &room, &held.1, self.peer).await
                    } else {
                        Departure::Last
                    };
                    if self.joined.as_ref() != Some(&room) {
                        self.hub.leave(self.id, room, departure).await?;
                    }
                    if took {
                        release(self.presence.as_ref(), &held.0, &held.1, self.peer).await;
                    }
                    return admitted.map(|_| None);
                }
                // In the new room: leave the old one (perhaps another shard's), then
                // give its name back, so whoever claims it next joins after we left.
                if let Some(previous) = self.joined.replace(room.clone())
                    && previous != room
                {
                    let departure = self.depart(&previous).await;
                    self.hub.leave(self.id, previous, departure).await?;
                }
                if let Some(old) = self.claimed.replace(held.clone())
                    && old != held
                {
                    release(self.presence.as_ref(), &old.0, &old.1, self.peer).await;
                }
                self.room_watch = Some(watch);
                self.joined_at = tokio::time::Instant::now();
                Ok(self.schedule(Read::Entered { room, resume_after }))
            }
            ClientMessage::Send { .. } if self.presence.lease_expired() => {
                // Its name may be someone else's by now: it is being closed.
                let message = "this server lost contact with the others; reconnecting";
                Ok(Some(ServerMessage::error(ErrorCode::Unavailable, message)))
            }
            ClientMessage::Send { room, .. } if !self.identity.may_write(&room) => Ok(Some(read_only(&room))),
            ClientMessage::Send { room, client_id, text } => {
                if let Some(wait) = self.slowed(&room).await {
                    let message = format!("#{room} is in slow mode: one message every {wait} s; wait a moment");
                    return Ok(Some(ServerMessage::error(ErrorCode::SlowMode, message)));
                }
                self.hub.say(self.id, room, client_id, text).await?;
                Ok(None)
            }
            // Nobody needs to hear that a reader who may not post is typing.
            ClientMessage::Typing { room } if !self.identity.may_write(&room) => Ok(None),
            ClientMessage::Typing { room } => {
                self.hub.typing(self.id, room).await?;
                Ok(None)
            }
            ClientMessage::Authenticate { token } => Ok(Some(self.authenticate(&token))),
            ClientMessage::Refresh { token } => self.refresh(&token).await.map(Some),
            ClientMessage::History { room, before, limit } => {
                Ok(self.read_joined(Read::Before { room, before, limit }))
            }
            ClientMessage::HistoryAfter { room, after, limit } => {
                Ok(self.read_joined(Read::After { room, after, limit }))
            }
        }
    }

    /// Why this connection may not enter `room`, if it may not: a guest
    /// where guests are not admitted, a token that does not grant the room.
    fn may_not_enter(&self, room: &RoomName) -> Option<ServerMessage> {
        if self.identity.is_guest() && !self.guests {
            let message = "this server admits signed-in users only; sign in to join";
            return Some(ServerMessage::error(ErrorCode::SignInRequired, message));
        }
        if !self.identity.may_read(room) {
            return Some(ServerMessage::error(ErrorCode::Forbidden, format!("you may not enter #{room}")));
        }
        None
    }

    /// `authenticate`: a guest connection that has not joined yet takes on
    /// the token's user.
    fn authenticate(&mut self, token: &str) -> ServerMessage {
        if !matches!(self.identity, Identity::Guest) || self.joined.is_some() {
            let message = "authenticate comes first, on a connection that has no token or account yet";
            return ServerMessage::error(ErrorCode::InvalidMessage, message);
        }
        match self.verify(token) {
            Ok(token) => {
                let mut held = HeldToken::new(token);
                let answer = held.authenticated();
                self.identity = Identity::Token(held);
                answer
            }
            Err(error) => ServerMessage::error(ErrorCode::TokenInvalid, error.to_string()),
        }
    }

    /// `refresh`: a newer token of the same user. If it no longer grants
    /// the room the connection is in, the connection leaves it.
    async fn refresh(&mut self, token: &str) -> Result<ServerMessage, HubStopped> {
        let token = match self.verify(token) {
            Ok(token) => token,
            Err(error) => return Ok(ServerMessage::error(ErrorCode::TokenInvalid, error.to_string())),
        };
        let answer = match self.identity.refresh(token) {
            Ok(answer) => answer,
            Err(error) => return Ok(ServerMessage::error(ErrorCode::TokenInvalid, error.to_string())),
        };
        if let Some(room) = self.joined.clone()
            && !self.identity.may_read(&room)
        {
            self.leave_room().await?;
            return Ok(ServerMessage::error(ErrorCode::Forbidden, format!("your new token does not grant #{room}")));
        }
        Ok(answer)
    }

    /// Leaves the room this connection is in, giving its name back.
    async fn leave_room(&mut self) -> Result<(), HubStopped> {
        if let Some(room) = self.joined.take() {
            let departure = self.depart(&room).await;
            self.hub.leave(self.id, room, departure).await?;
        }
        if let Some((room, nick)) = self.claimed.take() {
            release(self.presence.as_ref(), &room, &nick, self.peer).await;
        }
        // Reads of the room it left are of no use now.
        self.waiting.clear();
        self.reading = None;
        self.room_watch = None;
        Ok(())
    }

    /// This connection is about to leave `room`: departs the name it holds
    /// there (if it does), for what the hub is to tell the room.
    async fn depart(&self, room: &RoomName) -> Departure {
        match &self.claimed {
            Some((held, nick)) if held == room => depart(self.presence.as_ref(), room, nick, self.peer).await,
            _ => Departure::Last,
        }
    }

    /// Who this connection is to the rooms' rules: its account, or (a guest,
    /// a token's user) its address.
    fn party(&self) -> Option<Party> {
        match self.identity.caller() {
            Caller::Account(user) => Some(Party::User(user)),
            Caller::Guest | Caller::Token => self.address.map(Party::Address),
        }
    }

    /// Stores the ban of this connection's address from `room` that a
    /// moderator made by its name, and tells every node (its other sockets
    /// leave too); the refusal to send. Without an address, only a kick.
    async fn ban_own_address(&self, room: &RoomName, ban: AddressBan) -> ServerMessage {
        let Some(address) = self.address else {
            let message = format!("a moderator removed you from #{room}; you may join again");
            return ServerMessage::error(ErrorCode::Forbidden, message);
        };
        let target = ban_target(Party::Address(address)).unwrap_or_default();
        let label = address.to_string();
        let record = NewBan {
            room: room.as_str(),
            target: &target,
            label: &label,
            until_ms: ban.until_ms,
            by: ban.by,
            now_ms: crate::policy::now_ms(),
        };
        match self.policy.store().ban(record).await {
            Ok(()) => self.policy.ban(room, KnownBan { target, until_ms: ban.until_ms }).await,
            // It leaves the room all the same; the moderator sees no ban listed and may ban again.
            Err(error) => tracing::error!(%error, %room, "storing a guest's address ban failed"),
        }
        ServerMessage::error(ErrorCode::Banned, format!("you are banned from #{room}"))
    }

    /// How long this connection must wait to post in `room` (slow mode), if
    /// it must. A post in a room it is not in is refused by the hub anyway.
    async fn slowed(&self, room: &RoomName) -> Option<u32> {
        let (_, nick) = self.claimed.as_ref().filter(|(held, _)| held == room)?;
        let caller = self.identity.caller();
        let poster = || match caller {
            Caller::Account(id) => format!("u:{id}"),
            Caller::Token | Caller::Guest => format!("n:{}", name_key(nick.as_str())),
        };
        self.policy.slow_mode_wait(caller, self.address, room, poster).await
    }

    /// Why the connection may not enter `room`: a private room it is not a
    /// member of, or one it is banned from. If the database cannot say, a
    /// room this node knows to be private is refused for now, a known ban
    /// holds, and anything else is let in (guests chat on through a database
    /// outage, as they always have).
    async fn not_a_member(&self, room: &RoomName) -> Option<ServerMessage> {
        match self.policy.may_read(self.identity.caller(), self.address, room).await {
            Ok(Ok(())) => None,
            Ok(Err(Denial::Banned)) => {
                let message = format!("you are banned from #{room}");
                Some(ServerMessage::error(ErrorCode::Banned, message))
            }
            Ok(Err(Denial::Hidden | Denial::Forbidden)) => {
                let message = format!("#{room} is private: only its members may enter");
                Some(ServerMessage::error(ErrorCode::Forbidden, message))
            }
            Err(error) if self.policy.is_private(room) => {
                tracing::warn!(%error, %room, "cannot check a private room's members");
                let message = format!("cannot check who may enter #{room} right now; retry soon");
                Some(ServerMessage::error(ErrorCode::Unavailable, message))
            }
            Err(_) if self.policy.is_known_banned(self.identity.caller(), self.address, room) => {
                Some(ServerMessage::error(ErrorCode::Banned, format!("you are banned from #{room}")))
            }
            Err(error) => {
                // Debug: during an outage every join says it.
                tracing::debug!(%error, %room, "cannot check a room's standing; it is not known to be private");
                None
            }
        }
    }

    fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.tokens.as_ref().ok_or(TokenError::NotAccepted)?.verify(token)
    }

    /// The name a join speaks under: the account's or the token's,
    /// whatever it asked for; a guest's own, unless an account has it (or
    /// one that looks the same).
    async fn name_to_use(&self, asked: Nickname) -> Result<Nickname, ServerMessage> {
        if let Some(name) = self.identity.speaks_as() {
            return Ok(name.clone());
        }
        if self.accounts.is_reserved(&asked).await {
            let message = format!("“{asked}” belongs to a registered account; sign in to use it, or pick another");
            return Err(ServerMessage::error(ErrorCode::NameReserved, message));
        }
        Ok(asked)
    }

    /// Where a join may resume: after `after`, if the client's ids are of this
    /// history's epoch, exist (a database restored from an older backup has
    /// fewer), and are at most [`RESUME_MAX`] behind. Otherwise the client
    /// starts a fresh log with the latest page. While the store fails it is
    /// asked again for up to [`RESUME_CHECK_PATIENCE`], so a client that
    /// reconnects during a database restart still resumes.
    async fn resume_point(&self, room: &RoomName, after: Option<u64>, epoch: Option<&Epoch>) -> Option<u64> {
        let after = after?;
        if epoch.is_some_and(|epoch| epoch != self.store.epoch()) {
            return None;
        }
        let latest = async {
            let mut wait = FORWARD_READ_RETRY;
            loop {
                match self.store.latest_id(room).await {
                    Ok(latest) => return latest.unwrap_or(0),
                    Err(error) => {
                        tracing::warn!(%error, %room, "reading the latest id failed; trying again");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(FORWARD_READ_RETRY_MAX);
                    }
                }
            }
        };
        match tokio::time::timeout(RESUME_CHECK_PATIENCE, latest).await {
            Ok(latest) => (after <= latest && latest - after <= RESUME_MAX).then_some(after),
            Err(_) => {
                tracing::error!(%room, "the store did not answer where to resume; starting the client afresh");
                None
            }
        }
    }

    /// Queues a history read of the room this connection is in.
    fn read_joined(&mut self, read: Read) -> Option<ServerMessage> {
        let room = match &read {
            Read::Entered { room, .. } | Read::Before { room, .. } | Read::After { room, .. } => room,
        };
        if self.joined.as_ref() != Some(room) {
            return Some(ServerMessage::error(ErrorCode::NotJoined, format!("join #{room} to read its history")));
        }
        self.schedule(read)
    }

    /// Starts `read`, or queues it behind the one under way.
    fn schedule(&mut self, read: Read) -> Option<ServerMessage> {
        if self.reading.is_none() {
            self.reading = Some(self.start(read));
        } else if self.waiting.len() < MAX_QUEUED_READS {
            self.waiting.push_back(read);
        } else {
            return Some(ServerMessage::error(ErrorCode::RateLimited, "too many history requests at once"));
        }
        None
    }

    fn start(&self, read: Read) -> Reading {
        let pages = self.pages.clone();
        Box::pin(async move {
            let (room, read) = match read {
                Read::Before { room, before, limit } => {
                    let page = pages.before(&room, before, limit).await;
                    return Outbound::Text(frame(&page.unwrap_or_else(|error| unavailable(&room, &error))));
                }
                Read::Entered { room, resume_after: Some(after) } => (room, Forward::After(after, HISTORY_PAGE_MAX)),
                Read::Entered { room, resume_after: None } => (room, Forward::Latest),
                Read::After { room, after, limit } => (room, Forward::After(after, limit)),
            };
            forward_page(&pages, room, read).await
        })
    }
}

/// A page forward from where the client is, which its room's live
/// messages wait behind (see [`Outbound::Page`]).
#[derive(Clone, Copy)]
enum Forward {
    /// The newest page (the client holds nothing of the room).
    Latest,
    /// Up to `limit` messages after an id.
    After(u64, u32),
}

/// How long a forward page is tried again while the store fails, before
/// the client is told it is unavailable (and live messages go on without it).
const FORWARD_READ_PATIENCE: Duration = Duration::from_secs(30);

/// How long a join waits for the store to say whether the client may resume
/// (the join, and this connection's other frames, wait with it; well under
/// the idle timeout).
const RESUME_CHECK_PATIENCE: Duration = Duration::from_secs(5);

/// The first wait before trying a failed forward page again, doubled up to
/// [`FORWARD_READ_RETRY_MAX`].
const FORWARD_READ_RETRY: Duration = Duration::from_millis(250);
const FORWARD_READ_RETRY_MAX: Duration = Duration::from_secs(2);

/// Reads a forward page of `room`, trying again for a while if the store
/// fails (the room's live messages wait for it, so an outage of a moment
/// costs the client nothing but the wait).
async fn forward_page(pages: &HistoryPages, room: RoomName, read: Forward) -> Outbound {
    let give_up = tokio::time::Instant::now() + FORWARD_READ_PATIENCE;
    let mut wait = FORWARD_READ_RETRY;
    loop {
        let (page, from) = match read {
            Forward::Latest => (pages.latest(&room, HISTORY_PAGE).await, 0),
            Forward::After(after, limit) => (pages.after(&room, after, limit).await, after),
        };
        match page {
            Ok(page) => {
                let (through, complete) = match &page {
                    ServerMessage::History { messages, has_newer, .. } => {
                        (messages.last().map_or(from, |message| message.id), !has_newer)
                    }
                    _ => (from, true),
                };
                return Outbound::Page { room, through: Some(through), complete, text: frame(&page) };
            }
            Err(error) if tokio::time::Instant::now() + wait < give_up => {
                tracing::warn!(%error, %room, "reading history failed; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(FORWARD_READ_RETRY_MAX);
            }
            Err(error) => {
                let text = frame(&unavailable(&room, &error));
                return Outbound::Page { room, through: None, complete: true, text };
            }
        }
    }
}

/// The answer to a post where the connection may only read.
fn read_only(room: &RoomName) -> ServerMessage {
    ServerMessage::error(ErrorCode::Forbidden, format!("you may read #{room} but not post in it"))
}

/// The answer to a history read the store failed.
fn unavailable(room: &RoomName, error: &StoreError) -> ServerMessage {
    tracing::error!(%error, %room, "reading history failed");
    ServerMessage::error(ErrorCode::StoreUnavailable, "history is unavailable right now")
}

fn frame(message: &ServerMessage) -> ByteString {
    ByteString::from(message.encode())
}

impl FrameHandler for JsonSession {
    async fn on_text(&mut self, text: ByteString) -> Result<Handled, HubStopped> {
        match ClientMessage::decode(&text) {
            Ok(message) => Ok(self.on_message(message).await?.map_or(Handled::Nothing, |m| Handled::Reply(frame(&m)))),
            Err(error) => Ok(Handled::Invalid(frame(&error.to_server_message()))),
        }
    }

    async fn on_binary(&mut self, _: Bytes) -> Result<Handled, HubStopped> {
        let reply = ServerMessage::error(ErrorCode::UnsupportedFrame, "this endpoint speaks JSON in text frames");
        Ok(Handled::Invalid(frame(&reply)))
    }

    fn rate_limited(&mut self) -> Option<ByteString> {
        Some(frame(&ServerMessage::error(ErrorCode::RateLimited, "too many messages; slow down")))
    }

    async fn departing(&mut self) -> Option<(RoomName, Departure)> {
        let room = self.joined.clone()?;
        let departure = self.depart(&room).await;
        Some((room, departure))
    }

    /// Leaves the room if the connection may no longer be in it (removed
    /// from a private room, banned or kicked, here or on another node).
    async fn check_room(&mut self, concerning: Option<Party>) -> Option<Outbound> {
        let room = self.joined.clone()?;
        let kick = self
            .claimed
            .as_ref()
            .filter(|(held, _)| *held == room)
            .and_then(|(_, nick)| self.policy.kicked_since(&room, nick.as_str(), self.joined_at));
        let refusal = match kick {
            // A guest (or token user) banned by name: known here by its address.
            Some(Kick { address_ban: Some(ban) }) if !matches!(self.identity.caller(), Caller::Account(_)) => {
                self.ban_own_address(&room, ban).await
            }
            Some(_) => {
                let message = format!("a moderator removed you from #{room}; you may join again");
                ServerMessage::error(ErrorCode::Forbidden, message)
            }
            // Someone else's standing changed: this one's stands, no read needed.
            None if concerning.is_some_and(|party| Some(party) != self.party()) => return None,
            None => self.not_a_member(&room).await?,
        };
        tracing::info!(%room, connection = self.id, "no longer allowed in the room; leaving it");
        // A stopped hub ends the connection anyway.
        let _ = self.leave_room().await;
        Some(Outbound::Text(frame(&refusal)))
    }

    /// Gives the nickname back: the connection is over.
    async fn finish(&mut self) {
        if let Some((room, nick)) = self.claimed.take() {
            release(self.presence.as_ref(), &room, &nick, self.peer).await;
        }
    }

    async fn background(&mut self) -> Background {
        let read = {
            let reading = self.reading.as_mut();
            let read = async move {
                match reading {
                    Some(reading) => reading.await,
                    None => std::future::pending().await,
                }
            };
            let changed = async {
                match self.room_watch.as_mut() {
                    Some(watch) => watch.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = read => done,
                lapse = self.identity.lapse() => return Background::Lapse(lapse),
                concerning = changed => return Background::RoomChanged(concerning),
            }
        };
        self.reading = self.waiting.pop_front().map(|read| self.start(read));
        Background::Frame(read)
    }
}
