//! The rules of who may do what in a room, as one pure function
//! ([`decide`]) that the socket sessions and the HTTP API both call, so no
//! path can apply a rule of its own.

use chat_shared::api::Role;

use crate::accounts::store::UserId;

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Nobody signed in (a guest of the seed's kind).
    Guest,
    /// A signed-in account.
    Account(UserId),
    /// The user of an embedding site's connection token: it is not an
    /// account here, so no private room counts it as a member.
    Token,
}

impl Caller {
    /// The account, if the caller is one.
    pub fn account(self) -> Option<UserId> {
        match self {
            Self::Account(id) => Some(id),
            Self::Guest | Self::Token => None,
        }
    }
}

/// Who a standing is about: the room itself (for anyone), an account, or
/// the address of a guest or a token's user (whom bans name by address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Party {
    /// Anyone: what the room is (private, slow mode, any bans at all).
    Anyone,
    /// An account.
    User(UserId),
    /// A client address.
    Address(std::net::IpAddr),
}

/// What is known of a room, and of the caller in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// Whether someone created the room (nobody created an open room one
    /// merely joins).
    pub created: bool,
    /// Whether only its members may enter.
    pub private: bool,
    /// What the caller is in it, if anything.
    pub role: Option<Role>,
    /// Whether the caller (its account, or its address) is banned from it now.
    pub banned: bool,
    /// Until when (ms since the epoch; `i64::MAX`: for ever), so a cached
    /// standing lets the caller in again once its ban is over.
    pub banned_until_ms: Option<i64>,
    /// Whether anyone is banned from it now (so callers must be looked up one by one).
    pub has_bans: bool,
    /// Seconds one poster waits between two messages (0: no slow mode).
    pub slow_mode_secs: u32,
    /// Whether the caller is a server administrator.
    pub admin: bool,
}

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Enter the room: join, read history, resume, see its members and typing.
    Read,
    /// Hand out invite links, list members, remove members (created rooms).
    ManageMembers,
    /// Kick, ban, set slow mode, read the audit log (any room).
    Moderate,
    /// Make a member a moderator (created rooms: their owner, or an admin).
    AppointModerators,
}

/// Why the caller may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The room is private and the caller not a member: to the HTTP API it
    /// is as if the room did not exist.
    Hidden,
    /// The caller may see the room but not do this.
    Forbidden,
    /// The caller is banned from the room.
    Banned,
}

/// Whether `caller`, whose standing in the room is `standing`, may do `action`.
/// Server administrators moderate every room, private ones included, but
/// read only those they are members of.
pub fn decide(caller: Caller, standing: Standing, action: Action) -> Result<(), Denial> {
    let account = caller.account().is_some();
    let member = account && standing.role.is_some();
    let admin = account && standing.admin;
    let moderator = admin || (account && matches!(standing.role, Some(Role::Owner | Role::Moderator)));
    if standing.private && !member && !admin {
        return Err(Denial::Hidden);
    }
    match action {
        Action::Read if standing.private && !member => Err(Denial::Hidden),
        Action::Read if standing.banned && !moderator => Err(Denial::Banned),
        Action::Read => Ok(()),
        Action::ManageMembers | Action::AppointModerators if !standing.created => Err(Denial::Hidden),
        Action::ManageMembers | Action::Moderate if moderator => Ok(()),
        Action::AppointModerators if admin || (account && standing.role == Some(Role::Owner)) => Ok(()),
        Action::ManageMembers | Action::Moderate | Action::AppointModerators => Err(Denial::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Standing = Standing {
        created: false,
        private: false,
        role: None,
        banned: false,
        banned_until_ms: None,
        has_bans: false,
        slow_mode_secs: 0,
        admin: false,
    };
    const PRIVATE: Standing = Standing { created: true, private: true, ..OPEN };

    fn with(standing: Standing, role: Role) -> Standing {
        Standing { role: Some(role), ..standing }
    }

    #[test]
    fn everyone_reads_open_rooms_and_only_members_read_private_ones() {
        for caller in [Caller::Guest, Caller::Token, Caller::Account(1)] {
            assert_eq!(decide(caller, OPEN, Action::Read), Ok(()));
            assert_eq!(decide(caller, PRIVATE, Action::Read), Err(Denial::Hidden));
        }
        for role in [Role::Member, Role::Moderator, Role::Owner] {
            assert_eq!(decide(Caller::Account(1), with(PRIVATE, role), Action::Read), Ok(()));
        }
    }

    #[test]
    fn only_owners_and_moderators_manage_members() {
        assert_eq!(decide(Caller::Account(1), with(PRIVATE, Role::Owner), Action::ManageMembers), Ok(()));
        assert_eq!(decide(Caller::Account(1), with(PRIVATE, Role::Moderator), Action::ManageMembers), Ok(()));
        assert_eq!(
            decide(Caller::Account(1), with(PRIVATE, Role::Member), Action::ManageMembers),
            Err(Denial::Forbidden)
        );
        assert_eq!(decide(Caller::Account(1), PRIVATE, Action::ManageMembers), Err(Denial::Hidden));
        assert_eq!(decide(Caller::Guest, OPEN, Action::ManageMembers), Err(Denial::Hidden), "nobody owns it");
        let created_open = Standing { created: true, ..OPEN };
        assert_eq!(decide(Caller::Guest, created_open, Action::ManageMembers), Err(Denial::Forbidden));
    }

    #[test]
    fn moderators_and_admins_moderate_and_only_owners_and_admins_appoint() {
        let created_open = Standing { created: true, ..OPEN };
        let admin = Standing { admin: true, ..OPEN };
        assert_eq!(decide(Caller::Account(1), admin, Action::Moderate), Ok(()), "any room, created or not");
        assert_eq!(decide(Caller::Account(1), Standing { admin: true, ..PRIVATE }, Action::Moderate), Ok(()));
        assert_eq!(
            decide(Caller::Account(1), Standing { admin: true, ..PRIVATE }, Action::Read),
            Err(Denial::Hidden),
            "admins moderate private rooms without reading them"
        );
        assert_eq!(decide(Caller::Account(1), with(created_open, Role::Moderator), Action::Moderate), Ok(()));
        assert_eq!(
            decide(Caller::Account(1), with(created_open, Role::Member), Action::Moderate),
            Err(Denial::Forbidden)
        );
        assert_eq!(decide(Caller::Guest, OPEN, Action::Moderate), Err(Denial::Forbidden));
        assert_eq!(
            decide(Caller::Account(1), with(created_open, Role::Moderator), Action::AppointModerators),
            Err(Denial::Forbidden)
        );
        assert_eq!(decide(Caller::Account(1), with(created_open, Role::Owner), Action::AppointModerators), Ok(()));
        assert_eq!(decide(Caller::Account(1), admin, Action::AppointModerators), Err(Denial::Hidden), "nobody's room");
    }

    #[test]
    fn the_banned_are_kept_out_but_not_their_moderators() {
        let banned = Standing { banned: true, has_bans: true, ..OPEN };
        for caller in [Caller::Guest, Caller::Token, Caller::Account(1)] {
            assert_eq!(decide(caller, banned, Action::Read), Err(Denial::Banned));
        }
        let created = Standing { created: true, ..banned };
        assert_eq!(decide(Caller::Account(1), with(created, Role::Member), Action::Read), Err(Denial::Banned));
        assert_eq!(decide(Caller::Account(1), with(created, Role::Owner), Action::Read), Ok(()));
    }
}
