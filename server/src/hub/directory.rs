//! The room directory: how many members each room has, whichever shard owns
//! it, and the room lists JSON clients see (the lobby, the busiest rooms and
//! their own). The shards report counts as they change; the lists go out
//! only to the clients whose view changed, each distinct list encoded once:
//! at once after a quiet spell, and while rooms keep changing (a crowd
//! rejoining after a restart) once counts have been still for a moment or
//! have waited long enough, never more than a frame budget allows. A client's
//! first list comes with its `joined`, which the shards build from the list
//! shown to everyone (see [`Directory::shown`]). Not on any message's path.
//!
//! With several nodes, each room's count is this node's members plus those
//! of the other nodes, which an exchange ([`OtherNodes`]) reports; lists go
//! to this node's clients only.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chat_shared::{RoomInfo, RoomName, ServerMessage};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::worker_relay::{Delivery, Workers};
use super::{Outbound, Unlisted, frame};

/// Rooms besides the lobby in the list every client receives (the busiest);
/// a client in another room also gets its own room's line.
const ROOM_LIST_MAX: usize = 20;

/// How often changed room lists are sent out at most.
const ROOM_LIST_INTERVAL: Duration = Duration::from_secs(1);

/// While counts keep changing, lists wait until they have been still this long...
const STILL_FOR: Duration = Duration::from_secs(1);

/// ... or this long with other nodes, whose counts reach this one up to two
/// exchange periods (1 s each: theirs written, then read here) after they
/// change: a crowd that is in would otherwise see one list for this node's
/// last change and another, a moment later, for theirs.
const STILL_FOR_ACROSS_NODES: Duration = Duration::from_millis(2_500);

/// ... or until the oldest change not yet shown is this old. A crowd joining
/// for longer than this sees one list midway and one once it is in, instead
/// of one per interval each (which cost more than the joins themselves).
const STALE_AT_MOST: Duration = Duration::from_secs(10);

/// Room-list frames sent per second at most, server-wide. On a big server a
/// list to everyone every second would be most of its work while a crowd
/// (re)joins after a restart: past this, lists go out less often.
const ROOM_LIST_FRAMES_PER_SECOND: usize = 5_000;

/// How long to wait after sending `frames` room lists before the next ones.
fn pause_after(frames: usize) -> Duration {
    let budget = Duration::from_secs_f64(frames as f64 / ROOM_LIST_FRAMES_PER_SECOND as f64);
    budget.max(ROOM_LIST_INTERVAL)
}

/// Member counts of rooms a shard changed in one turn (0: the room emptied).
pub(super) type CountChanges = Vec<(RoomName, usize)>;

/// What a shard puts in `joined`: the list every client is shown (the lobby
/// and the busiest rooms) as last sent, and the other nodes' counts as last
/// reported (a joiner's own room line counts their members too).
#[derive(Debug, Clone)]
pub(super) struct Shown {
    /// The list.
    pub(super) list: Arc<[RoomInfo]>,
    /// Other nodes' members per room.
    pub(super) others: Arc<RoomCounts>,
}

/// The rooms shown before anyone has joined anything: the empty lobby.
fn lobby_only() -> Vec<RoomInfo> {
    vec![RoomInfo { name: RoomName::lobby(), online: 0 }]
}

/// What is shown before anyone has joined anything.
pub(super) fn empty_list() -> Shown {
    Shown { list: lobby_only().into(), others: Arc::default() }
}

/// `shown` with `room`'s line at `here` (this node's exact count) plus the
/// other nodes' (added if it is not listed), or at `claimed` (presence's count
/// of every node's names at the join) if that is more, as when the other
/// nodes' counts are a moment old: what a member of `room` is shown as it joins.
pub(super) fn with_own_room(shown: &Shown, room: &RoomName, here: usize, claimed: usize) -> Vec<RoomInfo> {
    let online = (here + shown.others.get(room).copied().unwrap_or(0)).max(claimed);
    let online = u32::try_from(online).unwrap_or(u32::MAX);
    let mut rooms: Vec<RoomInfo> = shown.list.iter().filter(|info| info.name != *room).cloned().collect();
    rooms.push(RoomInfo { name: room.clone(), online });
    rooms.sort_by(|a, b| a.name.cmp(&b.name));
    rooms
}

/// When the next lists may go out (see the module doc).
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// The frame budget's next free moment.
    budget_until: Instant,
    /// The oldest change not yet sent.
    first_unsent: Option<Instant>,
    /// The newest change.
    last_change: Instant,
    /// How long counts must be still before lists go out (while they change).
    still_for: Duration,
}

impl Schedule {
    fn new(now: Instant, still_for: Duration) -> Self {
        Self { budget_until: now, first_unsent: None, last_change: now, still_for }
    }

    fn changed(&mut self, now: Instant) {
        self.first_unsent.get_or_insert(now);
        self.last_change = now;
    }

    /// When to send, if anything waits.
    fn due(&self) -> Option<Instant> {
        let first = self.first_unsent?;
        if first >= self.budget_until {
            // After a quiet spell: at once.
            return Some(first);
        }
        let settled = (self.last_change + self.still_for).min(first + STALE_AT_MOST);
        Some(settled.max(self.budget_until))
    }

    fn sent(&mut self, now: Instant, frames: usize) {
        self.budget_until = now + pause_after(frames);
        self.first_unsent = None;
    }
}

/// Member counts per room.
pub type RoomCounts = HashMap<RoomName, usize>;

/// How the directory of one node learns the member counts of the others
/// (through an exchange such as Redis), and tells them its own.
pub struct OtherNodes {
    /// This node's counts, as they change.
    pub ours: watch::Sender<Arc<RoomCounts>>,
    /// The other nodes' counts, summed, whenever they change.
    pub theirs: mpsc::UnboundedReceiver<RoomCounts>,
}

/// Every room's count, and what was last sent.
pub(super) struct Directory {
    /// This node's members per room.
    counts: HashMap<RoomName, usize>,
    /// Other nodes' members per room.
    others: RoomCounts,
    /// Where this node's counts go (several nodes only).
    ours: Option<watch::Sender<Arc<RoomCounts>>>,
    /// Rooms whose count changed since the lists went out.
    changed: HashSet<RoomName>,
    /// The busiest rooms as last sent to everyone.
    listed: Vec<RoomInfo>,
    /// The same, for the shards to put in `joined`. Updated before the
    /// lists go out, so a `joined` is never older than a list before it.
    shown: watch::Sender<Shown>,
    workers: Workers,
    /// Rooms never in the list everyone sees.
    unlisted: Unlisted,
}

impl Directory {
    pub(super) fn new(shown: watch::Sender<Shown>, workers: Workers, unlisted: Unlisted) -> Self {
        Self {
            counts: HashMap::new(),
            others: RoomCounts::new(),
            ours: None,
            changed: HashSet::new(),
            listed: lobby_only(),
            shown,
            workers,
            unlisted,
        }
    }

    /// Applies the shards' reports (and the other nodes', if any) until every shard is gone.
    pub(super) async fn run(mut self, mut changes: mpsc::UnboundedReceiver<CountChanges>, others: Option<OtherNodes>) {
        let mut theirs = match others {
            Some(OtherNodes { ours, theirs }) => {
                self.ours = Some(ours);
                Some(theirs)
            }
            None => None,
        };
        let still_for = if theirs.is_some() { STILL_FOR_ACROSS_NODES } else { STILL_FOR };
        let mut schedule = Schedule::new(Instant::now(), still_for);
        loop {
            let due = schedule.due();
            tokio::select! {
                reported = changes.recv() => match reported {
                    Some(reported) => {
                        self.apply(reported);
                        if !self.changed.is_empty() {
                            schedule.changed(Instant::now());
                        }
                    }
                    None => break,
                },
                reported = next_report(&mut theirs) => match reported {
                    Some(counts) => {
                        self.apply_others(counts);
                        if !self.changed.is_empty() {
                            schedule.changed(Instant::now());
                        }
                    }
                    None => theirs = None,
                },
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    let sent = self.publish();
                    schedule.sent(Instant::now(), sent);
                }
            }
        }
    }

    fn apply(&mut self, changes: CountChanges) {
        // The exchange sees our counts as they change, not only when lists go
        // out: the other nodes' lists wait for them. (Copied only if the
        // exchange still holds the last ones, once a second at most.)
        if let Some(ours) = &self.ours {
            ours.send_modify(|ours| {
                let ours = Arc::make_mut(ours);
                for (room, online) in &changes {
                    if *online == 0 {
                        ours.remove(room);
                    } else {
                        ours.insert(room.clone(), *online);
                    }
                }
            });
        }
        for (room, online) in changes {
            if online == 0 {
                self.counts.remove(&room);
            } else {
                self.counts.insert(room.clone(), online);
            }
            self.changed.insert(room);
        }
    }

    /// Takes the other nodes' counts (all of them, replacing the last).
    fn apply_others(&mut self, counts: RoomCounts) {
        for (room, count) in &counts {
            if self.others.get(room) != Some(count) {
                self.changed.insert(room.clone());
            }
        }
        for room in self.others.keys() {
            if !counts.contains_key(room) {
                self.changed.insert(room.clone());
            }
        }
        let others = Arc::new(counts.clone());
        self.shown.send_modify(|shown| shown.others = others);
        self.others = counts;
    }

    /// `name`'s members on every node.
    fn total(&self, name: &RoomName) -> usize {
        self.counts.get(name).copied().unwrap_or(0) + self.others.get(name).copied().unwrap_or(0)
    }

    /// A room with its online count (0 if nobody is in it).
    fn info(&self, name: &RoomName) -> RoomInfo {
        RoomInfo { name: name.clone(), online: u32::try_from(self.total(name)).unwrap_or(u32::MAX) }
    }

    /// The lobby and the `limit` busiest other rooms (most members first,
    /// then by name), listed by name: what every client is shown.
    fn busiest(&self, limit: usize) -> Vec<RoomInfo> {
        let lobby = RoomName::lobby();
        let rooms = self.counts.keys().chain(self.others.keys().filter(|room| !self.counts.contains_key(*room)));
        let mut others: Vec<(usize, &RoomName)> = rooms
            .filter(|name| **name != lobby && !(self.unlisted)(name))
            .map(|name| (self.total(name), name))
            .collect();
        let by_busiest = |a: &(usize, &RoomName), b: &(usize, &RoomName)| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1));
        if others.len() > limit {
            others.select_nth_unstable_by(limit, by_busiest);
            others.truncate(limit);
        }
        let mut list: Vec<RoomInfo> = others.into_iter().map(|(_, name)| self.info(name)).collect();
        list.push(self.info(&lobby));
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Sends room lists to the clients whose view changed: everyone when the
    /// busiest rooms (or their counts) changed, else only the members of the
    /// other rooms whose count changed. Returns about how many lists that is
    /// (the members of rooms; clients in no room are few).
    fn publish(&mut self) -> usize {
        let changed = std::mem::take(&mut self.changed);
        let busiest = self.busiest(ROOM_LIST_MAX);
        let everyone = busiest != self.listed;
        self.listed = busiest;
        let unlisted =
            |room: &&RoomName| self.counts.contains_key(*room) && !self.listed.iter().any(|i| i.name == **room);
        let own_rooms: Vec<&RoomName> = if everyone {
            self.counts.keys().filter(unlisted).collect()
        } else {
            changed.iter().filter(unlisted).collect()
        };
        // Each distinct list (the busiest, or the busiest plus one room) is encoded once.
        let own: HashMap<RoomName, Outbound> = own_rooms
            .into_iter()
            .map(|room| {
                let mut shown = self.listed.clone();
                shown.push(self.info(room));
                shown.sort_by(|a, b| a.name.cmp(&b.name));
                (room.clone(), frame(&ServerMessage::Rooms { rooms: shown }))
            })
            .collect();
        let recipients = if everyone {
            self.counts.values().sum()
        } else {
            own.keys().filter_map(|room| self.counts.get(room)).sum()
        };
        let everyone = everyone.then(|| frame(&ServerMessage::Rooms { rooms: self.listed.clone() }));
        if everyone.is_some() {
            let list: Arc<[RoomInfo]> = self.listed.clone().into();
            self.shown.send_modify(|shown| shown.list = list);
        }
        if everyone.is_none() && own.is_empty() {
            return 0;
        }
        let own = Arc::new(own);
        for worker in self.workers.all() {
            worker.send(vec![Delivery::RoomLists { everyone: everyone.clone(), own: own.clone() }]);
        }
        recipients
    }
}

/// The other nodes' next report, or never when there are none.
async fn next_report(theirs: &mut Option<mpsc::UnboundedReceiver<RoomCounts>>) -> Option<RoomCounts> {
    match theirs {
        Some(theirs) => theirs.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let (shown, _) = watch::channel(empty_list());
        Directory::new(shown, Workers::new(1), Arc::new(|room: &RoomName| room.as_str().starts_with("secret")))
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("room")
    }

    #[test]
    fn the_list_shows_the_lobby_and_the_busiest_rooms_only() {
        let mut directory = directory();
        directory.apply(vec![(room("dev"), 2)]);
        let names = |list: Vec<RoomInfo>| list.into_iter().map(|r| (r.name.to_string(), r.online)).collect::<Vec<_>>();
        assert_eq!(names(directory.busiest(5)), [("dev".to_owned(), 2), ("lobby".to_owned(), 0)]);

        directory.apply(vec![(room("a"), 1), (room("b"), 2), (room("c"), 3), (room("secret"), 9)]);
        // Busiest two: c (3) and a tie at 2 broken by name (b before dev); the private room never.
        assert_eq!(names(directory.busiest(2)), [("b".to_owned(), 2), ("c".to_owned(), 3), ("lobby".to_owned(), 0)]);

        directory.apply(vec![(room("dev"), 0)]);
        assert!(!directory.counts.contains_key(&room("dev")), "an emptied room is forgotten");
        assert_eq!(directory.info(&room("dev")).online, 0);
    }

    #[test]
    fn counts_are_this_nodes_plus_the_other_nodes() {
        let mut directory = directory();
        directory.apply(vec![(room("dev"), 2)]);
        directory.changed.clear();
        directory.apply_others(RoomCounts::from([(room("dev"), 3), (room("ops"), 5)]));
        assert_eq!(directory.changed.len(), 2);
        let names = |list: Vec<RoomInfo>| list.into_iter().map(|r| (r.name.to_string(), r.online)).collect::<Vec<_>>();
        let expected = [("dev".to_owned(), 5), ("lobby".to_owned(), 0), ("ops".to_owned(), 5)];
        assert_eq!(names(directory.busiest(5)), expected);
        directory.changed.clear();
        // The other nodes' ops emptied.
        directory.apply_others(RoomCounts::from([(room("dev"), 3)]));
        assert_eq!(directory.changed.iter().collect::<Vec<_>>(), [&room("ops")]);
        assert_eq!(names(directory.busiest(5)), [("dev".to_owned(), 5), ("lobby".to_owned(), 0)]);
    }

    #[test]
    fn big_servers_send_room_lists_less_often() {
        assert_eq!(pause_after(0), ROOM_LIST_INTERVAL);
        assert_eq!(pause_after(3_000), ROOM_LIST_INTERVAL, "a small server: every second");
        // 19,000 people: a list for everyone every 3.8 s at most, 5,000 frames a second.
        assert_eq!(pause_after(19_000), Duration::from_millis(3_800));
    }

    #[test]
    fn a_private_rooms_members_see_its_line_and_nobody_else_does() {
        let mut directory = directory();
        directory.apply(vec![(room("secret"), 2), (RoomName::lobby(), 1)]);
        let everyone = directory.busiest(ROOM_LIST_MAX);
        assert!(everyone.iter().all(|info| info.name != room("secret")));
        directory.publish();
        assert!(directory.listed.iter().all(|info| info.name != room("secret")));
    }

    #[test]
    fn clients_see_a_new_list_only_when_their_view_changed() {
        let mut directory = directory();
        let mut seen = directory.shown.subscribe();
        directory.apply(vec![(room("dev"), 1), (RoomName::lobby(), 2)]);
        assert_eq!(directory.publish(), 3, "the busiest rooms changed: a new list for everyone");
        assert!(seen.has_changed().unwrap_or(false));
        seen.mark_unchanged();
        directory.apply(vec![(room("dev"), 1)]);
        assert_eq!(directory.publish(), 0, "same counts: nothing to send");
        assert!(!seen.has_changed().unwrap_or(true));
    }

    #[test]
    fn a_change_after_a_quiet_spell_goes_out_at_once() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, STILL_FOR);
        assert_eq!(schedule.due(), None, "nothing to send");
        schedule.changed(start);
        assert_eq!(schedule.due(), Some(start));
        schedule.sent(start, 10);
        let later = start + Duration::from_secs(5);
        schedule.changed(later);
        assert_eq!(schedule.due(), Some(later), "the pause had passed");
    }

    #[test]
    fn a_crowd_joining_sees_a_list_once_it_is_still_or_when_one_is_overdue() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, STILL_FOR);
        schedule.changed(start);
        schedule.sent(start, 1);
        // Joins every 10 ms for 25 s: no list until the oldest unsent change is 10 s old.
        let mut now = start;
        let mut sent_at = Vec::new();
        for _ in 0..2_500 {
            now += Duration::from_millis(10);
            schedule.changed(now);
            if schedule.due().is_some_and(|due| due <= now) {
                sent_at.push(now - start);
                schedule.sent(now, 19_000);
            }
        }
        assert_eq!(sent_at, [Duration::from_millis(10_010), Duration::from_millis(20_020)]);
        // The crowd is in: the last list goes out once counts have been still a moment
        // (and the budget of the last one, 3.8 s for 19,000, has passed).
        assert_eq!(schedule.due(), Some(now + STILL_FOR));
        let quiet_start = Instant::now();
        let mut schedule = Schedule::new(quiet_start, STILL_FOR);
        schedule.changed(quiet_start);
        schedule.sent(quiet_start, 19_000);
        schedule.changed(quiet_start + Duration::from_millis(100));
        assert_eq!(schedule.due(), Some(quiet_start + pause_after(19_000)), "never before the budget allows");
    }
}
