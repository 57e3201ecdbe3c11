//! Member lists that heal by themselves: a shard checks the lists its
//! members were shown against presence, and sends a `members` frame to
//! whoever was shown a wrong one.
//!
//! A list goes wrong in two ways. A joiner's `joined` list is read before
//! its join reaches the shard: someone who joined on another node in
//! between is announced to the room before the joiner is in it, and is in
//! neither. And presence events are lost: a bus link that reconnects, Redis
//! restarting empty, a node buried or coming back. So the shard checks the
//! list of each joiner after its join, and every room's list now and then.
//!
//! A check reads presence while events keep coming: the events heard from
//! the moment the read was asked for are applied on top of what it read
//! (an event repeated on a list that already has it changes nothing), so
//! the result is the list as of now, never an older one. Presence may also
//! be ahead of the shard: a joiner's name is claimed before its join reaches
//! the shard. So a list is corrected only when two reads at least
//! [`CONFIRM_AFTER`] apart both find the same name wrong in it: a join in
//! flight has landed by the second. Rooms past [`PRESENCE_EVENTS_MAX`] get
//! no events and are not checked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_shared::Nickname;
use chat_shared::RoomName;
use chat_shared::limits::PRESENCE_EVENTS_MAX;

use super::ConnectionId;

/// How long to wait before reading again after a read failed.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long after a read that found a list wrong the read that confirms it
/// comes (joins whose names were claimed at the first land meanwhile).
pub(super) const CONFIRM_AFTER: Duration = Duration::from_secs(1);

/// Most names a check reads: one more than a room with presence events has.
pub(super) const READ_LIMIT: usize = PRESENCE_EVENTS_MAX + 1;

/// A presence event, as it changes a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    Joined(Nickname),
    Left(Nickname),
}

impl Change {
    fn apply(&self, list: &mut Vec<Nickname>) {
        match self {
            Self::Joined(nick) => {
                if let Err(at) = list.binary_search(nick) {
                    list.insert(at, nick.clone());
                }
            }
            Self::Left(nick) => {
                if let Ok(at) = list.binary_search(nick) {
                    list.remove(at);
                }
            }
        }
    }
}

/// The names two lists disagree on, sorted.
fn disagreement(a: &[Nickname], b: &[Nickname]) -> Vec<Nickname> {
    let mut names: Vec<Nickname> = a.iter().filter(|n| b.binary_search(n).is_err()).cloned().collect();
    names.extend(b.iter().filter(|n| a.binary_search(n).is_err()).cloned());
    names.sort();
    names
}

/// A list, and the names the last read found wrong in it, if any.
#[derive(Default)]
struct Checked {
    list: Vec<Nickname>,
    doubt: Option<Vec<Nickname>>,
}

/// What a read says of one list.
#[derive(Debug, PartialEq, Eq)]
enum Finding {
    Right,
    /// Wrong, as the read before found it too: to be corrected.
    Wrong,
    /// Wrong, for the first time: to be read again.
    Doubtful,
}

impl Checked {
    fn new(list: Vec<Nickname>) -> Self {
        Self { list, doubt: None }
    }

    /// Compares the list with `now`, as read.
    fn check(&mut self, now: &[Nickname]) -> Finding {
        let wrong = disagreement(&self.list, now);
        if wrong.is_empty() {
            self.doubt = None;
            return Finding::Right;
        }
        let confirmed = self.doubt.as_ref().is_some_and(|before| wrong.iter().any(|n| before.binary_search(n).is_ok()));
        if confirmed {
            self.doubt = None;
            self.list = now.to_vec();
            Finding::Wrong
        } else {
            self.doubt = Some(wrong);
            Finding::Doubtful
        }
    }
}

/// A member shown a list not checked yet, and what it is now.
struct Newcomer {
    view: Checked,
    /// Whether the read under way was asked for after its join (it checks it).
    in_read: bool,
}

/// One room's lists.
struct Roster {
    /// What every member already checked was shown: the last checked list
    /// with the events since. `None` before the room's first check.
    shown: Option<Checked>,
    newcomers: HashMap<ConnectionId, Newcomer>,
    /// The events heard since the read under way was asked for, if one is.
    reading: Option<Vec<Change>>,
    /// Another read is wanted once the one under way is over.
    again: bool,
    /// When the room is next checked anyway.
    due: Instant,
}

/// What to send after a check, and whether to read again.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The list every member of the room is to get.
    pub(super) everyone: Option<Vec<Nickname>>,
    /// Members to get the list one by one (a wrong `joined` list).
    pub(super) some: Vec<(ConnectionId, Vec<Nickname>)>,
    /// Read again, after this long.
    pub(super) read_again: Option<Duration>,
}

/// The member lists of a shard's rooms.
pub(super) struct Rosters {
    rooms: HashMap<RoomName, Roster>,
    /// How often every room is checked, if at all (lists are only lost with
    /// a shared presence).
    every: Option<Duration>,
}

impl Rosters {
    /// Lists checked after each join, and every `every` if given.
    pub(super) fn new(every: Option<Duration>) -> Self {
        Self { rooms: HashMap::new(), every }
    }

    /// `id` joined `room` as `nick` and was shown `view`. True if a read is
    /// to start now.
    pub(super) fn joined(
        &mut self,
        room: &RoomName,
        id: ConnectionId,
        nick: &Nickname,
        view: Vec<Nickname>,
        now: Instant,
    ) -> bool {
        let every = self.every;
        let roster = self.rooms.entry(room.clone()).or_insert_with(|| Roster {
            shown: None,
            newcomers: HashMap::new(),
            reading: None,
            again: false,
            due: now + every.unwrap_or_default(),
        });
        // The room hears of it (or knew the name already): whether that event or
        // the read comes back first, the others' list is not to be corrected for it.
        let arrived = Change::Joined(nick.clone());
        if let Some(shown) = &mut roster.shown {
            arrived.apply(&mut shown.list);
        }
        if let Some(since) = &mut roster.reading {
            since.push(arrived);
        }
        roster.newcomers.insert(id, Newcomer { view: Checked::new(view), in_read: false });
        Self::want_read(roster)
    }

    /// Asks for a read of `roster`: true if one is to start now.
    fn want_read(roster: &mut Roster) -> bool {
        if roster.reading.is_some() {
            roster.again = true;
            return false;
        }
        roster.reading = Some(Vec::new());
        roster.again = false;
        for newcomer in roster.newcomers.values_mut() {
            newcomer.in_read = true;
        }
        true
    }

    /// A presence event was delivered to `room`'s members.
    pub(super) fn heard(&mut self, room: &RoomName, change: Change) {
        let Some(roster) = self.rooms.get_mut(room) else { return };
        if let Some(shown) = &mut roster.shown {
            change.apply(&mut shown.list);
        }
        for newcomer in roster.newcomers.values_mut() {
            change.apply(&mut newcomer.view.list);
        }
        if let Some(since) = &mut roster.reading {
            since.push(change);
        }
    }

    /// `id` is no longer in `room`.
    pub(super) fn left(&mut self, room: &RoomName, id: ConnectionId) {
        if let Some(roster) = self.rooms.get_mut(room) {
            roster.newcomers.remove(&id);
        }
    }

    /// This node has nobody left in `room`, or the room is crowded: its
    /// lists are not checked.
    pub(super) fn forget(&mut self, room: &RoomName) {
        self.rooms.remove(room);
    }

    /// Rooms due for their regular check; their reads are to start now.
    pub(super) fn due(&mut self, now: Instant) -> Vec<RoomName> {
        let Some(every) = self.every else { return Vec::new() };
        let mut due = Vec::new();
        for (room, roster) in &mut self.rooms {
            if roster.due <= now {
                roster.due = now + every;
                if Self::want_read(roster) {
                    due.push(room.clone());
                }
            }
        }
        due
    }

    /// A read of `room` asked for earlier answered `read`.
    pub(super) fn read(&mut self, room: &RoomName, read: Result<&[Nickname], ()>) -> Verdict {
        let Some(roster) = self.rooms.get_mut(room) else { return Verdict::default() };
        let Some(since) = roster.reading.take() else { return Verdict::default() };
        let Ok(read) = read else {
            // Read again, for the same members (and any who joined since).
            roster.reading = Some(since);
            return Verdict { read_again: Some(RETRY_AFTER), ..Verdict::default() };
        };
        if read.len() > PRESENCE_EVENTS_MAX {
            // Crowded: its members know they see only part of the list.
            self.rooms.remove(room);
            return Verdict::default();
        }
        let mut now = read.to_vec();
        now.sort();
        now.dedup();
        for change in &since {
            change.apply(&mut now);
        }
        let mut verdict = Verdict::default();
        let mut doubtful = false;
        match &mut roster.shown {
            // Before the first check every member is a newcomer.
            None => roster.shown = Some(Checked::new(now.clone())),
            Some(shown) => match shown.check(&now) {
                Finding::Right => {}
                Finding::Doubtful => doubtful = true,
                Finding::Wrong => {
                    verdict.everyone = Some(now.clone());
                    // Whoever is still to be checked gets it too.
                    for newcomer in roster.newcomers.values_mut() {
                        newcomer.view = Checked::new(now.clone());
                    }
                }
            },
        }
        roster.newcomers.retain(|id, newcomer| {
            if !newcomer.in_read {
                return true;
            }
            match newcomer.view.check(&now) {
                Finding::Right => false,
                Finding::Wrong => {
                    verdict.some.push((*id, now.clone()));
                    false
                }
                Finding::Doubtful => {
                    doubtful = true;
                    true
                }
            }
        });
        verdict.some.sort_by_key(|(id, _)| *id);
        if doubtful {
            roster.again = false;
            verdict.read_again = Self::want_read(roster).then_some(CONFIRM_AFTER);
        } else if roster.again {
            verdict.read_again = Self::want_read(roster).then_some(Duration::ZERO);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomName {
        RoomName::parse("dev").expect("room")
    }

    fn names(list: &[&str]) -> Vec<Nickname> {
        list.iter().map(|name| Nickname::parse(*name).expect("nick")).collect()
    }

    fn nick(name: &str) -> Nickname {
        Nickname::parse(name).expect("nick")
    }

    fn confirm() -> Verdict {
        Verdict { read_again: Some(CONFIRM_AFTER), ..Verdict::default() }
    }

    #[test]
    fn a_joiner_shown_a_list_without_a_crossing_join_gets_the_list_with_it() {
        let mut rosters = Rosters::new(None);
        let now = Instant::now();
        // Bob's list was read before ann joined on another node; her event
        // reached the room before bob was in it.
        assert!(rosters.joined(&room(), 1, &nick("bob"), names(&["bob"]), now));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob"]))), confirm(), "read again to be sure");
        let verdict = rosters.read(&room(), Ok(&names(&["ann", "bob"])));
        assert_eq!(verdict, Verdict { some: vec![(1, names(&["ann", "bob"]))], ..Verdict::default() });
        // A joiner shown the right list gets nothing.
        assert!(rosters.joined(&room(), 2, &nick("cat"), names(&["ann", "bob", "cat"]), now));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob", "cat"]))), Verdict::default());
    }

    #[test]
    fn a_join_in_flight_when_presence_was_read_is_not_corrected() {
        let mut rosters = Rosters::new(None);
        let now = Instant::now();
        assert!(rosters.joined(&room(), 1, &nick("ann"), names(&["ann"]), now));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann"]))), Verdict::default());
        assert!(rosters.joined(&room(), 2, &nick("bob"), names(&["ann", "bob"]), now));
        // Cat's name is claimed; her join has not reached the shard yet.
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob", "cat"]))), confirm());
        rosters.heard(&room(), Change::Joined(nick("bob")));
        rosters.heard(&room(), Change::Joined(nick("cat")));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob", "cat"]))), Verdict::default());
    }

    #[test]
    fn events_heard_during_a_read_are_applied_on_top_of_it() {
        let mut rosters = Rosters::new(None);
        let now = Instant::now();
        assert!(rosters.joined(&room(), 1, &nick("bob"), names(&["ann", "bob"]), now));
        // The read saw ann (she had not left yet); her leaving came after.
        rosters.heard(&room(), Change::Left(nick("ann")));
        rosters.heard(&room(), Change::Joined(nick("cat")));
        let verdict = rosters.read(&room(), Ok(&names(&["ann", "bob"])));
        assert_eq!(verdict, Verdict::default(), "bob's list is right: {verdict:?}");
    }

    #[test]
    fn a_list_that_lost_events_is_sent_to_everyone_and_only_then() {
        let mut rosters = Rosters::new(Some(Duration::from_secs(10)));
        let start = Instant::now();
        assert!(rosters.joined(&room(), 1, &nick("bob"), names(&["ann", "bob"]), start));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob"]))), Verdict::default());
        assert!(rosters.due(start + Duration::from_secs(9)).is_empty());
        assert_eq!(rosters.due(start + Duration::from_secs(10)), vec![room()]);
        // Ann's node was buried while this node's link was away: nobody heard her leave.
        assert_eq!(rosters.read(&room(), Ok(&names(&["bob"]))), confirm());
        let verdict = rosters.read(&room(), Ok(&names(&["bob"])));
        assert_eq!(verdict, Verdict { everyone: Some(names(&["bob"])), ..Verdict::default() });
        assert_eq!(rosters.due(start + Duration::from_secs(20)), vec![room()]);
        assert_eq!(rosters.read(&room(), Ok(&names(&["bob"]))), Verdict::default(), "nothing new");
    }

    #[test]
    fn a_different_name_wrong_each_time_is_not_yet_a_wrong_list() {
        let mut rosters = Rosters::new(None);
        let now = Instant::now();
        assert!(rosters.joined(&room(), 1, &nick("ann"), names(&["ann"]), now));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann"]))), Verdict::default());
        assert!(rosters.joined(&room(), 2, &nick("bob"), names(&["ann", "bob"]), now));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob", "cat"]))), confirm());
        rosters.heard(&room(), Change::Joined(nick("cat")));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob", "cat", "dan"]))), confirm());
    }

    #[test]
    fn joins_during_a_read_are_checked_by_the_next_one() {
        let mut rosters = Rosters::new(None);
        let now = Instant::now();
        assert!(rosters.joined(&room(), 1, &nick("ann"), names(&["ann"]), now));
        // Bob was shown a list read before ann's claim.
        assert!(!rosters.joined(&room(), 2, &nick("bob"), names(&["bob"]), now), "one read at a time");
        rosters.heard(&room(), Change::Joined(nick("bob")));
        let verdict = rosters.read(&room(), Ok(&names(&["ann"])));
        assert_eq!(verdict, Verdict { read_again: Some(Duration::ZERO), ..Verdict::default() }, "ann heard bob");
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob"]))), confirm());
        let verdict = rosters.read(&room(), Ok(&names(&["ann", "bob"])));
        assert_eq!(verdict, Verdict { some: vec![(2, names(&["ann", "bob"]))], ..Verdict::default() });
    }

    #[test]
    fn a_failed_read_is_tried_again_and_crowded_rooms_are_let_go() {
        let mut rosters = Rosters::new(None);
        let now = Instant::now();
        assert!(rosters.joined(&room(), 1, &nick("ann"), names(&["ann"]), now));
        let verdict = rosters.read(&room(), Err(()));
        assert_eq!(verdict, Verdict { read_again: Some(RETRY_AFTER), ..Verdict::default() });
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann"]))), Verdict::default());
        assert!(rosters.joined(&room(), 2, &nick("bob"), names(&["ann", "bob"]), now));
        let crowd: Vec<Nickname> = (0..READ_LIMIT).map(|n| nick(&format!("n{n}"))).collect();
        assert_eq!(rosters.read(&room(), Ok(&crowd)), Verdict::default());
        assert!(!rosters.rooms.contains_key(&room()));
        rosters.heard(&room(), Change::Joined(nick("x")));
        assert_eq!(rosters.read(&room(), Ok(&names(&["x"]))), Verdict::default(), "no read asked for");
    }

    #[test]
    fn one_who_left_is_not_sent_a_list() {
        let mut rosters = Rosters::new(None);
        let now = Instant::now();
        assert!(rosters.joined(&room(), 1, &nick("ann"), names(&["ann"]), now));
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob"]))), confirm());
        rosters.left(&room(), 1);
        assert_eq!(rosters.read(&room(), Ok(&names(&["ann", "bob"]))), Verdict::default());
    }
}
