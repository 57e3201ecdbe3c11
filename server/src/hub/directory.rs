//! The room directory: how many members each room has, whichever shard owns
//! it, and the room lists JSON clients see (the lobby, the busiest rooms and
//! their own). The shards report counts as they change; the lists go out at
//! most once per interval and only to the clients whose view changed, each
//! distinct list encoded once. Not on any message's path.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chat_shared::{RoomInfo, RoomName, ServerMessage};
use tokio::sync::{mpsc, watch};

use super::worker_relay::{Delivery, Workers};
use super::{Outbound, frame};

/// Rooms besides the lobby in the list every client receives (the busiest);
/// a client in another room also gets its own room's line.
const ROOM_LIST_MAX: usize = 20;

/// How often changed room lists are sent out at most; coalesces join storms.
const ROOM_LIST_INTERVAL: Duration = Duration::from_secs(1);

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

/// The rooms shown before anyone has joined anything: the empty lobby.
fn lobby_only() -> Vec<RoomInfo> {
    vec![RoomInfo { name: RoomName::lobby(), online: 0 }]
}

/// The list shown before anyone has joined anything.
pub(super) fn empty_list() -> Outbound {
    frame(&ServerMessage::Rooms { rooms: lobby_only() })
}

/// Every room's count, and what was last sent.
pub(super) struct Directory {
    counts: HashMap<RoomName, usize>,
    /// Rooms whose count changed since the lists went out.
    changed: HashSet<RoomName>,
    /// The busiest rooms as last sent to everyone.
    listed: Vec<RoomInfo>,
    /// The list every client sees, for sessions that register.
    current: watch::Sender<Outbound>,
    workers: Workers,
}

impl Directory {
    pub(super) fn new(current: watch::Sender<Outbound>, workers: Workers) -> Self {
        Self { counts: HashMap::new(), changed: HashSet::new(), listed: lobby_only(), current, workers }
    }

    /// Applies the shards' reports until every shard is gone.
    pub(super) async fn run(mut self, mut changes: mpsc::UnboundedReceiver<CountChanges>) {
        // A change after a quiet spell goes out at once; the ones that follow
        // wait for the pause the last lists earned.
        let mut due = tokio::time::Instant::now();
        loop {
            tokio::select! {
                reported = changes.recv() => match reported {
                    Some(reported) => self.apply(reported),
                    None => break,
                },
                () = tokio::time::sleep_until(due), if !self.changed.is_empty() => {
                    let sent = self.publish();
                    due = tokio::time::Instant::now() + pause_after(sent);
                }
            }
        }
    }

    fn apply(&mut self, changes: CountChanges) {
        for (room, online) in changes {
            if online == 0 {
                self.counts.remove(&room);
            } else {
                self.counts.insert(room.clone(), online);
            }
            self.changed.insert(room);
        }
    }

    /// A room with its online count (0 if nobody is in it).
    fn info(&self, name: &RoomName) -> RoomInfo {
        let online = self.counts.get(name).map_or(0, |count| u32::try_from(*count).unwrap_or(u32::MAX));
        RoomInfo { name: name.clone(), online }
    }

    /// The lobby and the `limit` busiest other rooms (most members first,
    /// then by name), listed by name: what every client is shown.
    fn busiest(&self, limit: usize) -> Vec<RoomInfo> {
        let lobby = RoomName::lobby();
        let mut others: Vec<(usize, &RoomName)> =
            self.counts.iter().filter(|(name, _)| **name != lobby).map(|(name, count)| (*count, name)).collect();
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
        if let Some(list) = &everyone {
            // Before the lists go out: see `Delivery::Register`.
            self.current.send_replace(list.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let (current, room_list) = watch::channel(empty_list());
        Directory::new(current, Workers::new(1, room_list))
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

        directory.apply(vec![(room("a"), 1), (room("b"), 2), (room("c"), 3)]);
        // Busiest two: c (3) and a tie at 2 broken by name (b before dev).
        assert_eq!(names(directory.busiest(2)), [("b".to_owned(), 2), ("c".to_owned(), 3), ("lobby".to_owned(), 0)]);

        directory.apply(vec![(room("dev"), 0)]);
        assert!(!directory.counts.contains_key(&room("dev")), "an emptied room is forgotten");
        assert_eq!(directory.info(&room("dev")).online, 0);
    }

    #[test]
    fn big_servers_send_room_lists_less_often() {
        assert_eq!(pause_after(0), ROOM_LIST_INTERVAL);
        assert_eq!(pause_after(3_000), ROOM_LIST_INTERVAL, "a small server: every second");
        // 19,000 people: a list for everyone every 3.8 s at most, 5,000 frames a second.
        assert_eq!(pause_after(19_000), Duration::from_millis(3_800));
    }

    #[test]
    fn clients_see_a_new_list_only_when_their_view_changed() {
        let mut directory = directory();
        let mut seen = directory.current.subscribe();
        directory.apply(vec![(room("dev"), 1), (RoomName::lobby(), 2)]);
        assert_eq!(directory.publish(), 3, "the busiest rooms changed: a new list for everyone");
        assert!(seen.has_changed().unwrap_or(false));
        seen.mark_unchanged();
        directory.apply(vec![(room("dev"), 1)]);
        assert_eq!(directory.publish(), 0, "same counts: nothing to send");
        assert!(!seen.has_changed().unwrap_or(true));
    }
}
