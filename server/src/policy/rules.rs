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
}

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Enter the room: join, read history, resume, see its members and typing.
    Read,
    /// Hand out invite links, list members, remove members.
    ManageMembers,
}

/// Why the caller may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The room is private and the caller not a member: to the HTTP API it
    /// is as if the room did not exist.
    Hidden,
    /// The caller may see the room but not do this.
    Forbidden,
}

/// Whether `caller`, whose standing in the room is `standing`, may do `action`.
pub fn decide(caller: Caller, standing: Standing, action: Action) -> Result<(), Denial> {
    let member = caller.account().is_some() && standing.role.is_some();
    if standing.private && !member {
        return Err(Denial::Hidden);
    }
    match action {
        Action::Read => Ok(()),
        Action::ManageMembers => match standing.role {
            Some(Role::Owner | Role::Moderator) if caller.account().is_some() => Ok(()),
            _ if !standing.created => Err(Denial::Hidden),
            _ => Err(Denial::Forbidden),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Standing = Standing { created: false, private: false, role: None };
    const PRIVATE: Standing = Standing { created: true, private: true, role: None };

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
}
