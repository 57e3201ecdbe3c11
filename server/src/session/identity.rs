//! Who a JSON connection speaks for, and until when: a guest, a signed-in
//! account (until it signs out everywhere), or the user of a connection
//! token (until the token expires, unless a `refresh` brings a newer one).
//! It decides the name the connection's joins use and the rooms it may
//! read and post in, and tells the connection loop when it lapses.

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use actix_ws::{CloseCode, CloseReason};
use chat_shared::limits::{CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_REFUSED};
use chat_shared::{ErrorCode, Nickname, RoomName, ServerMessage};

use tokio::time::{Instant, Sleep};

use super::close::signed_out;
use crate::accounts::revocations::Revoked;
use crate::accounts::store::UserId;
use crate::policy::rules::Caller;
use crate::presence::Owner;
use crate::tokens::{TokenError, VerifiedToken};

/// The longest warning before a token expires; a short-lived token is
/// warned a third of its life ahead instead.
const WARN_AHEAD_MAX: Duration = Duration::from_secs(60);

/// The furthest ahead a token's timers are set (a token good for longer is
/// treated as good for this long, past which the connection is closed as
/// expired): a clock's `Instant` cannot hold any `exp` an issuer writes.
const LONGEST_HELD: Duration = Duration::from_secs(366 * 24 * 3600);

/// Who a connection speaks for.
#[derive(Default)]
pub enum Identity {
    /// Nobody in particular: a guest picks a name per join.
    #[default]
    Guest,
    /// A signed-in account.
    Account {
        /// The account.
        user: UserId,
        /// Its name (none if it is no longer a valid nickname: then a guest's).
        name: Option<Nickname>,
        /// Fires when it signs out everywhere.
        revoked: Revoked,
    },
    /// The user of a connection token.
    Token(HeldToken),
    /// A token came with the upgrade and was refused: the connection is
    /// told why and closed.
    Refused(TokenError),
}

/// A token a connection holds, and its timer.
pub struct HeldToken {
    token: VerifiedToken,
    expires: Instant,
    /// Set for the warning, then for the expiry: one timer for the
    /// connection's life, not one per turn of its loop (which polls
    /// [`Identity::lapse`] for every frame it writes).
    timer: Pin<Box<Sleep>>,
    warned: bool,
    /// Whether the peer was told it is in use (`authenticated`).
    announced: bool,
}

impl HeldToken {
    /// Holds `token` from now on; the connection will tell the peer so
    /// (`authenticated`) first thing.
    pub fn new(token: VerifiedToken) -> Self {
        let left = token.expires_at.duration_since(SystemTime::now()).unwrap_or_default().min(LONGEST_HELD);
        let now = Instant::now();
        let warn_ahead = WARN_AHEAD_MAX.min(left / 3);
        let timer = Box::pin(tokio::time::sleep_until(now + left - warn_ahead));
        Self { token, expires: now + left, timer, warned: false, announced: false }
    }

    /// The answer that tells the peer the token is in use (which it then need
    /// not be told again).
    pub fn authenticated(&mut self) -> ServerMessage {
        self.announced = true;
        ServerMessage::Authenticated { name: self.token.name.clone(), expires_in: self.seconds_left() }
    }

    fn seconds_left(&self) -> u64 {
        self.expires.saturating_duration_since(Instant::now()).as_secs()
    }
}

/// What the connection loop does when an identity lapses or is about to
/// (or, for a token that came with the upgrade, is first in use).
pub enum Lapse {
    /// Tell the peer, and go on.
    Notice(ServerMessage),
    /// Tell the peer (if anything), then close the connection.
    End(Option<ServerMessage>, CloseReason),
}

/// Why a `refresh` was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The connection holds no token to refresh.
    #[error("this connection has no token to refresh")]
    NoToken,
    /// The new token is for someone else.
    #[error("a refresh must be for the same user")]
    OtherUser,
}

impl Identity {
    /// The name every join of this connection uses; `None` for a guest,
    /// who picks one.
    pub fn speaks_as(&self) -> Option<&Nickname> {
        match self {
            Self::Account { name, .. } => name.as_ref(),
            Self::Token(held) => Some(&held.token.name),
            Self::Guest | Self::Refused(_) => None,
        }
    }

    /// Who this is to the room rules.
    pub fn caller(&self) -> Caller {
        match self {
            Self::Account { user, .. } => Caller::Account(*user),
            Self::Token(_) => Caller::Token,
            Self::Guest | Self::Refused(_) => Caller::Guest,
        }
    }

    /// The user whose connections share its name in a room; `None` for a guest.
    pub fn owner(&self) -> Option<Owner> {
        match self {
            Self::Account { user, .. } => Some(Owner::account(*user)),
            Self::Token(held) => Some(Owner::token(&held.token.user)),
            Self::Guest | Self::Refused(_) => None,
        }
    }

    /// Whether this is a guest (neither signed in nor holding a token).
    pub fn is_guest(&self) -> bool {
        matches!(self, Self::Guest | Self::Refused(_))
    }

    /// Whether it may enter `room` and read it.
    pub fn may_read(&self, room: &RoomName) -> bool {
        match self {
            Self::Token(held) => held.token.grants.may_read(room),
            _ => true,
        }
    }

    /// Whether it may post and show typing in `room`.
    pub fn may_write(&self, room: &RoomName) -> bool {
        match self {
            Self::Token(held) => held.token.grants.may_write(room),
            _ => true,
        }
    }

    /// Replaces the token with a newer one of the same user.
    pub fn refresh(&mut self, token: VerifiedToken) -> Result<ServerMessage, RefreshError> {
        let Self::Token(held) = self else { return Err(RefreshError::NoToken) };
        if held.token.user != token.user {
            return Err(RefreshError::OtherUser);
        }
        *held = HeldToken::new(token);
        Ok(held.authenticated())
    }

    /// Resolves when the identity lapses or is about to (never for a
    /// guest). Cancel-safe: the connection loop polls it beside the rest.
    pub async fn lapse(&mut self) -> Lapse {
        match self {
            Self::Guest => std::future::pending().await,
            Self::Account { revoked, .. } => {
                revoked.fired().await;
                Lapse::End(None, signed_out())
            }
            Self::Refused(error) => {
                let notice = ServerMessage::error(ErrorCode::TokenInvalid, error.to_string());
                Lapse::End(Some(notice), close(CLOSE_TOKEN_REFUSED, "token refused"))
            }
            Self::Token(held) if !held.announced => Lapse::Notice(held.authenticated()),
            Self::Token(held) if !held.warned => {
                held.timer.as_mut().await;
                held.warned = true;
                let expires = held.expires;
                held.timer.as_mut().reset(expires);
                Lapse::Notice(ServerMessage::TokenExpiring { expires_in: held.seconds_left() })
            }
            Self::Token(held) => {
                held.timer.as_mut().await;
                let notice = ServerMessage::error(ErrorCode::TokenInvalid, TokenError::Expired.to_string());
                Lapse::End(Some(notice), close(CLOSE_TOKEN_EXPIRED, "token expired"))
            }
        }
    }
}

fn close(code: u16, why: &str) -> CloseReason {
    CloseReason { code: CloseCode::Other(code), description: Some(why.to_owned()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::RoomGrants;

    fn token(expires_at: SystemTime) -> VerifiedToken {
        VerifiedToken {
            user: "u".into(),
            name: Nickname::parse("u").expect("nick"),
            grants: RoomGrants::everything(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_token_for_ever_and_one_already_expired_hold_no_impossible_timers() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 100);
        let mut held = HeldToken::new(token(far));
        assert!(held.seconds_left() <= LONGEST_HELD.as_secs());
        assert!(matches!(held.authenticated(), ServerMessage::Authenticated { .. }));
        let mut gone = Identity::Token(HeldToken::new(token(SystemTime::UNIX_EPOCH)));
        // Announced, then warned and closed at once.
        assert!(matches!(gone.lapse().await, Lapse::Notice(ServerMessage::Authenticated { expires_in: 0, .. })));
        assert!(matches!(gone.lapse().await, Lapse::Notice(ServerMessage::TokenExpiring { expires_in: 0 })));
        assert!(matches!(gone.lapse().await, Lapse::End(Some(_), _)));
    }
}
