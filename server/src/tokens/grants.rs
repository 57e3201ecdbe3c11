//! What a connection token lets its user into: the `rooms` claim, a list
//! of grants like `lobby`, `team-*` (every room starting with `team-`) or
//! `news:read` (read only). A token without the claim grants every room.

use chat_shared::RoomName;

/// Why a `rooms` claim cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid room grant “{grant}”: {why}")]
pub struct GrantError {
    grant: String,
    why: &'static str,
}

/// Which rooms a grant names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// One room.
    Exact(RoomName),
    /// Every room whose name starts with this (empty: every room).
    Prefix(String),
}

/// One entry of the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    pattern: Pattern,
    /// Whether it lets the user post (it always lets them read).
    write: bool,
}

impl Grant {
    fn parse(text: &str) -> Result<Self, GrantError> {
        let fail = |why| GrantError { grant: text.to_owned(), why };
        let (pattern, write) = match text.split_once(':') {
            None => (text, true),
            Some((pattern, "read")) => (pattern, false),
            Some((pattern, "write")) => (pattern, true),
            Some(_) => return Err(fail("the access after ':' is read or write")),
        };
        let pattern = match pattern.strip_suffix('*') {
            Some(prefix) => {
                // A prefix of some room name: the room rule, on the prefix plus a letter.
                if RoomName::parse(format!("{prefix}a")).is_err() {
                    return Err(fail("a prefix is the start of a room name"));
                }
                Pattern::Prefix(prefix.to_owned())
            }
            None => Pattern::Exact(RoomName::parse(pattern).map_err(|_| fail("not a room name"))?),
        };
        Ok(Self { pattern, write })
    }

    fn covers(&self, room: &RoomName) -> bool {
        match &self.pattern {
            Pattern::Exact(name) => name == room,
            Pattern::Prefix(prefix) => room.as_str().starts_with(prefix.as_str()),
        }
    }
}

/// The rooms one token lets its user read, and those it lets them post in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomGrants {
    /// `None`: every room (the token had no `rooms` claim).
    grants: Option<Vec<Grant>>,
}

impl RoomGrants {
    /// Every room, to read and to post in.
    pub fn everything() -> Self {
        Self { grants: None }
    }

    /// The grants of a `rooms` claim; `None` (no claim) grants every room.
    pub fn parse(claim: Option<&[String]>) -> Result<Self, GrantError> {
        let Some(claim) = claim else { return Ok(Self::everything()) };
        let grants = claim.iter().map(|grant| Grant::parse(grant)).collect::<Result<_, _>>()?;
        Ok(Self { grants: Some(grants) })
    }

    /// Whether the user may enter `room` and read it.
    pub fn may_read(&self, room: &RoomName) -> bool {
        self.grants.as_ref().is_none_or(|grants| grants.iter().any(|grant| grant.covers(room)))
    }

    /// Whether the user may post (and show typing) in `room`.
    pub fn may_write(&self, room: &RoomName) -> bool {
        self.grants.as_ref().is_none_or(|grants| grants.iter().any(|grant| grant.write && grant.covers(room)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("room")
    }

    fn grants(claim: &[&str]) -> RoomGrants {
        let claim: Vec<String> = claim.iter().map(|s| (*s).to_owned()).collect();
        RoomGrants::parse(Some(&claim)).expect("grants parse")
    }

    #[test]
    fn no_claim_grants_every_room() {
        let all = RoomGrants::parse(None).expect("parses");
        assert!(all.may_read(&room("anything")) && all.may_write(&room("anything")));
    }

    #[test]
    fn exact_names_prefixes_and_read_only() {
        let g = grants(&["lobby", "team-*", "news:read", "ops:write"]);
        assert!(g.may_read(&room("lobby")) && g.may_write(&room("lobby")));
        assert!(g.may_write(&room("team-a")) && g.may_write(&room("team-")));
        assert!(g.may_read(&room("news")) && !g.may_write(&room("news")));
        assert!(g.may_write(&room("ops")));
        for stranger in ["lobby2", "team", "newsroom", "teams"] {
            assert!(!g.may_read(&room(stranger)), "{stranger}");
        }
    }

    #[test]
    fn an_empty_claim_grants_nothing_and_a_star_everything() {
        assert!(!grants(&[]).may_read(&room("lobby")));
        let star = grants(&["*:read"]);
        assert!(star.may_read(&room("any")) && !star.may_write(&room("any")));
    }

    #[test]
    fn malformed_grants_are_refused() {
        for bad in ["Team-*", "a b", "lobby:admin", "", "x*y*", "-*x"] {
            let claim = vec![bad.to_owned()];
            assert!(RoomGrants::parse(Some(&claim)).is_err(), "{bad:?}");
        }
    }
}
