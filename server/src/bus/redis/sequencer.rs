//! Puts each room's messages back in id order, once, with no gap.
//!
//! Nodes publish what they commit, but publishes of two nodes may cross (id
//! n+2 before n+1), and pub/sub loses whatever is sent while a connection is
//! down. The store assigned the ids without gaps, so a missing id is always
//! there to be read: the sequencer holds what is ahead, asks for a gap to be
//! filled from the store when it has waited [`GAP_WAIT`], and drops what it
//! delivered already. Pure logic (no I/O, time passed in), so every case is
//! unit-tested; the bus task does the reading.
//!
//! A room's sequence starts at a baseline: the newest id in the store, read
//! once the room is subscribed. Nothing stored after that read can be missed
//! (it is either heard or, if lost, later than something heard), and a member
//! reads its history only after the baseline (the room is not ready before):
//! its history and the live messages meet.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chat_shared::{ChatMessage, RoomName};

use crate::bus::{Author, Published, RoomEvent};

/// How long a message may wait for an earlier one before the gap is read
/// from the store. Crossing publishes of two nodes arrive within
/// microseconds of each other; a lost one never does.
pub(super) const GAP_WAIT: Duration = Duration::from_millis(200);

/// Most messages held ahead of a gap, per room; past this the gap is read at
/// once instead of after [`GAP_WAIT`], and newer ones are let go (they are
/// stored: once the gap is filled, the next one heard shows them missing,
/// and they are read as a gap in turn).
const MAX_AHEAD: usize = 10_000;

/// One room's sequence.
#[derive(Debug)]
struct RoomSequence {
    /// Which subscription of the room this is (the hub ignores older ones).
    generation: u64,
    /// Every message up to this id was delivered, or predates the
    /// subscription; `None` until the baseline is read.
    last: Option<u64>,
    /// Messages heard ahead of `last + 1`, by id.
    ahead: BTreeMap<u64, Published>,
    /// Since when the next message has been missing while later ones wait.
    waiting_since: Option<Instant>,
    /// The baseline could not be read: the lowest id heard within
    /// [`GAP_WAIT`] of the first starts the sequence (publishes of two nodes
    /// may cross).
    start_at_first: bool,
}

/// A range of ids to read from the store: those after `after`, up to `through`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gap {
    /// The room.
    pub(super) room: RoomName,
    /// The last id delivered.
    pub(super) after: u64,
    /// The last id missing (the one before the first held).
    pub(super) through: u64,
}

/// The sequences of every subscribed room.
#[derive(Debug, Default)]
pub(super) struct Sequencer {
    rooms: HashMap<RoomName, RoomSequence>,
    /// The rooms whose next message is missing: the bus task asks when the
    /// next gap is due after every event, which must not walk every room.
    waiting: HashSet<RoomName>,
    /// Messages held ahead, in all rooms (a gauge reports it).
    held: usize,
}

impl Sequencer {
    /// Messages held ahead of a missing id, in all rooms.
    pub(super) fn held(&self) -> usize {
        self.held
    }

    /// Notes that a room's held messages went from `before` to `after`.
    fn held_changed(&mut self, before: usize, after: usize) {
        self.held = (self.held + after).saturating_sub(before);
    }

    /// Starts (or restarts) `room`'s sequence; its baseline is unknown.
    pub(super) fn subscribe(&mut self, room: RoomName, generation: u64) {
        let sequence =
            RoomSequence { generation, last: None, ahead: BTreeMap::new(), waiting_since: None, start_at_first: false };
        self.waiting.remove(&room);
        if let Some(old) = self.rooms.insert(room, sequence) {
            self.held_changed(old.ahead.len(), 0);
        }
    }

    /// Forgets `room`.
    pub(super) fn unsubscribe(&mut self, room: &RoomName) {
        if let Some(old) = self.rooms.remove(room) {
            self.held_changed(old.ahead.len(), 0);
        }
        self.waiting.remove(room);
    }

    /// Keeps `waiting` in step with `room`'s sequence after a change.
    fn note_waiting(&mut self, room: &RoomName) {
        match self.rooms.get(room) {
            Some(sequence) if sequence.waiting_since.is_some() => {
                if !self.waiting.contains(room) {
                    self.waiting.insert(room.clone());
                }
            }
            _ => {
                self.waiting.remove(room);
            }
        }
    }

    /// The generation of `room`'s subscription, if subscribed.
    pub(super) fn generation(&self, room: &RoomName) -> Option<u64> {
        self.rooms.get(room).map(|sequence| sequence.generation)
    }

    /// Every subscribed room and its last delivered id (`None`: no baseline
    /// yet), for reading what a lost connection missed.
    pub(super) fn positions(&self) -> Vec<(RoomName, Option<u64>)> {
        self.rooms.iter().map(|(room, sequence)| (room.clone(), sequence.last)).collect()
    }

    /// Sets `room`'s baseline (the newest id stored when it was read) if it
    /// had none, and returns what can now be delivered.
    pub(super) fn baseline(&mut self, room: &RoomName, newest: u64, now: Instant) -> Vec<Published> {
        let Some(sequence) = self.rooms.get_mut(room) else { return Vec::new() };
        if sequence.last.is_none() {
            sequence.last = Some(newest);
        }
        let before = sequence.ahead.len();
        let released = sequence.release(now);
        let after = sequence.ahead.len();
        self.held_changed(before, after);
        self.note_waiting(room);
        released
    }

    /// Lets the messages heard first start `room`'s sequence, when its
    /// baseline cannot be read (the store is away; members' history reads
    /// wait for it): the lowest id heard within [`GAP_WAIT`] of the first
    /// (see [`Sequencer::started`]).
    pub(super) fn start_at_first(&mut self, room: &RoomName) {
        if let Some(sequence) = self.rooms.get_mut(room) {
            sequence.start_at_first = true;
        }
    }

    /// Takes a room event heard from the bus (or published here) and returns
    /// what can be delivered now, in order. Events other than messages are
    /// not sequenced; events of rooms not subscribed are dropped.
    pub(super) fn heard(&mut self, published: Published, now: Instant) -> Vec<Published> {
        let Some(sequence) = self.rooms.get_mut(&published.room) else { return Vec::new() };
        let Some(id) = published.event.message_id() else { return vec![published] };
        if sequence.last.is_some_and(|last| id <= last) {
            return Vec::new();
        }
        let room = published.room.clone();
        let before = sequence.ahead.len();
        // A later copy (read from the store) does not replace one with its author.
        sequence.ahead.entry(id).or_insert(published);
        if sequence.last.is_none() && sequence.start_at_first && sequence.waiting_since.is_none() {
            sequence.waiting_since = Some(now);
        }
        let released = sequence.release(now);
        sequence.bound();
        let after = sequence.ahead.len();
        self.held_changed(before, after);
        self.note_waiting(&room);
        released
    }

    /// Starts the rooms without a baseline whose first message heard has
    /// waited [`GAP_WAIT`] (see [`Sequencer::start_at_first`]) at the lowest
    /// id heard since, and returns what can now be delivered.
    pub(super) fn started(&mut self, now: Instant) -> Vec<Published> {
        let due: Vec<RoomName> = self
            .waiting
            .iter()
            .filter(|room| {
                self.rooms.get(*room).is_some_and(|sequence| {
                    sequence.last.is_none()
                        && sequence.start_at_first
                        && sequence.waiting_since.is_some_and(|since| now.duration_since(since) >= GAP_WAIT)
                })
            })
            .cloned()
            .collect();
        let mut released = Vec::new();
        for room in due {
            if let Some(sequence) = self.rooms.get_mut(&room) {
                let before = sequence.ahead.len();
                sequence.last = sequence.ahead.keys().next().map(|first| first - 1);
                released.extend(sequence.release(now));
                let after = sequence.ahead.len();
                self.held_changed(before, after);
            }
            self.note_waiting(&room);
        }
        released
    }

    /// Takes messages read from the store (a page of a longer stretch) and
    /// returns what can now be delivered.
    pub(super) fn filled_partly(&mut self, room: &RoomName, read: Vec<ChatMessage>, now: Instant) -> Vec<Published> {
        let mut delivered = Vec::new();
        for message in read {
            let event = RoomEvent::Message { message, author: Author::Stored };
            delivered.extend(self.heard(Published { room: room.clone(), event }, now));
        }
        delivered
    }

    /// Takes messages read from the store after `after` (all the store has
    /// up to the first held) and returns what can now be delivered. Read messages that do not reach the first one held
    /// mean the store has no such ids: what is held is released past them.
    pub(super) fn filled(
        &mut self,
        room: &RoomName,
        after: u64,
        read: Vec<ChatMessage>,
        now: Instant,
    ) -> (Vec<Published>, Option<u64>) {
        let mut delivered = self.filled_partly(room, read, now);
        let Some(sequence) = self.rooms.get_mut(room) else { return (delivered, None) };
        let mut skipped = None;
        if let (Some(last), Some(first_held)) = (sequence.last, sequence.ahead.keys().next().copied())
            && last >= after
            && first_held > last + 1
        {
            // The store was read and the ids are not there: do not wait forever.
            skipped = Some(first_held - last - 1);
            sequence.last = Some(first_held - 1);
            let before = sequence.ahead.len();
            delivered.extend(sequence.release(now));
            let after = sequence.ahead.len();
            self.held_changed(before, after);
            self.note_waiting(room);
        }
        (delivered, skipped)
    }

    /// The gaps that have waited long enough to be read from the store.
    pub(super) fn due_gaps(&self, now: Instant) -> Vec<Gap> {
        self.waiting
            .iter()
            .filter_map(|room| {
                let sequence = self.rooms.get(room)?;
                let since = sequence.waiting_since?;
                let overfull = sequence.ahead.len() >= MAX_AHEAD;
                if now.duration_since(since) < GAP_WAIT && !overfull {
                    return None;
                }
                let (last, first_held) = (sequence.last?, *sequence.ahead.keys().next()?);
                Some(Gap { room: room.clone(), after: last, through: first_held - 1 })
            })
            .collect()
    }

    /// When the earliest waiting gap (or start) falls due, if any waits.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let waiting = self.waiting.iter().filter_map(|room| self.rooms.get(room)?.waiting_since);
        waiting.min().map(|since| since + GAP_WAIT)
    }

    /// Notes that reading `room`'s gap failed: it is tried again after [`GAP_WAIT`].
    pub(super) fn retry_later(&mut self, room: &RoomName, now: Instant) {
        if let Some(sequence) = self.rooms.get_mut(room)
            && sequence.waiting_since.is_some()
        {
            sequence.waiting_since = Some(now);
        }
    }
}

impl RoomSequence {
    /// Lets go of the newest held past [`MAX_AHEAD`] (see there).
    fn bound(&mut self) {
        while self.ahead.len() > MAX_AHEAD {
            self.ahead.pop_last();
        }
    }

    /// Takes out what follows `last` without a gap.
    fn release(&mut self, now: Instant) -> Vec<Published> {
        let Some(mut last) = self.last else { return Vec::new() };
        // Held messages the baseline already covers were history.
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() > last {
                break;
            }
            entry.remove();
        }
        let mut released = Vec::new();
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != last + 1 {
                break;
            }
            last += 1;
            released.push(entry.remove());
        }
        self.last = Some(last);
        self.waiting_since = match (self.ahead.is_empty(), self.waiting_since) {
            (true, _) => None,
            // Still the same gap, unless something was released (then a new one).
            (false, Some(since)) if released.is_empty() => Some(since),
            (false, _) => Some(now),
        };
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Peer;
    use chat_shared::{MessageText, Nickname};

    fn room() -> RoomName {
        RoomName::parse("dev").expect("room")
    }

    fn message(id: u64) -> ChatMessage {
        ChatMessage {
            room: room(),
            id,
            ts: 0,
            nick: Nickname::parse("ann").expect("nick"),
            text: MessageText::parse(format!("m{id}")).expect("text"),
            client_id: None,
            deletes: None,
            deleted: false,
        }
    }

    fn heard(id: u64, node: u64) -> Published {
        let author = Author::Client(Peer { node, connection: 1 });
        Published { room: room(), event: RoomEvent::Message { message: message(id), author } }
    }

    fn ids(published: &[Published]) -> Vec<u64> {
        published.iter().filter_map(|p| p.event.message_id()).collect()
    }

    fn live(baseline: u64, now: Instant) -> Sequencer {
        let mut sequencer = Sequencer::default();
        sequencer.subscribe(room(), 1);
        assert!(sequencer.baseline(&room(), baseline, now).is_empty());
        sequencer
    }

    #[test]
    fn messages_in_order_pass_at_once_and_repeats_are_dropped() {
        let now = Instant::now();
        let mut sequencer = live(4, now);
        assert_eq!(ids(&sequencer.heard(heard(5, 1), now)), [5]);
        assert_eq!(ids(&sequencer.heard(heard(6, 2), now)), [6]);
        assert!(sequencer.heard(heard(6, 2), now).is_empty(), "a repeat");
        assert!(sequencer.heard(heard(3, 2), now).is_empty(), "history");
        assert_eq!(sequencer.next_due(), None);
    }

    #[test]
    fn crossing_publishes_are_put_back_in_order_without_reading_the_store() {
        let now = Instant::now();
        let mut sequencer = live(10, now);
        assert!(sequencer.heard(heard(12, 2), now).is_empty(), "held");
        assert!(sequencer.heard(heard(13, 2), now).is_empty(), "held");
        assert_eq!(sequencer.next_due(), Some(now + GAP_WAIT));
        assert_eq!(ids(&sequencer.heard(heard(11, 1), now)), [11, 12, 13]);
        assert_eq!(sequencer.next_due(), None);
        assert!(sequencer.due_gaps(now + GAP_WAIT * 2).is_empty());
    }

    #[test]
    fn a_lost_message_is_read_from_the_store_after_the_wait() {
        let now = Instant::now();
        let mut sequencer = live(10, now);
        sequencer.heard(heard(13, 2), now);
        assert!(sequencer.due_gaps(now + GAP_WAIT / 2).is_empty(), "not yet");
        let gaps = sequencer.due_gaps(now + GAP_WAIT);
        assert_eq!(gaps, [Gap { room: room(), after: 10, through: 12 }]);
        // The store read returns 11..=13 (13 was heard, with its author: that copy is kept).
        let (delivered, skipped) = sequencer.filled(&room(), 10, vec![message(11), message(12), message(13)], now);
        assert_eq!(ids(&delivered), [11, 12, 13]);
        assert_eq!(skipped, None);
        let kept = delivered.last().map(|p| &p.event);
        assert!(matches!(kept, Some(RoomEvent::Message { author: Author::Client(_), .. })), "{kept:?}");
        assert!(matches!(&delivered[0].event, RoomEvent::Message { author: Author::Stored, .. }));
    }

    #[test]
    fn ids_the_store_does_not_have_are_skipped_rather_than_waited_for() {
        let now = Instant::now();
        let mut sequencer = live(10, now);
        sequencer.heard(heard(13, 2), now);
        let (delivered, skipped) = sequencer.filled(&room(), 10, vec![message(11)], now);
        assert_eq!(ids(&delivered), [11, 13]);
        assert_eq!(skipped, Some(1));
        assert_eq!(sequencer.next_due(), None);
    }

    #[test]
    fn before_the_baseline_messages_wait_and_those_it_covers_are_dropped() {
        let now = Instant::now();
        let mut sequencer = Sequencer::default();
        sequencer.subscribe(room(), 7);
        assert!(sequencer.heard(heard(5, 2), now).is_empty());
        assert!(sequencer.heard(heard(7, 2), now).is_empty());
        assert_eq!(sequencer.next_due(), None, "no gap without a baseline");
        assert_eq!(sequencer.positions(), [(room(), None)]);
        // The baseline read saw 6: 5 and 6 were history, 7 is live.
        assert_eq!(ids(&sequencer.baseline(&room(), 6, now)), [7]);
        // A baseline read again (a reconnect) keeps the position.
        assert!(sequencer.baseline(&room(), 3, now).is_empty());
        assert_eq!(sequencer.positions(), [(room(), Some(7))]);
        assert_eq!(sequencer.generation(&room()), Some(7));
    }

    #[test]
    fn other_events_pass_unsequenced_and_unsubscribed_rooms_are_dropped() {
        let now = Instant::now();
        let mut sequencer = Sequencer::default();
        let typing = Published {
            room: room(),
            event: RoomEvent::Typing {
                nick: Nickname::parse("bo").expect("nick"),
                member: Peer { node: 2, connection: 3 },
            },
        };
        assert!(sequencer.heard(typing.clone(), now).is_empty(), "not subscribed");
        sequencer.subscribe(room(), 1);
        assert_eq!(sequencer.heard(typing.clone(), now), [typing]);
        sequencer.unsubscribe(&room());
        assert!(sequencer.heard(heard(1, 1), now).is_empty());
    }

    #[test]
    fn without_a_baseline_the_lowest_id_heard_in_the_first_moment_starts_the_sequence() {
        let now = Instant::now();
        let mut sequencer = Sequencer::default();
        sequencer.subscribe(room(), 1);
        sequencer.start_at_first(&room());
        // Two nodes' publishes cross: 10 comes first, 9 right after.
        assert!(sequencer.heard(heard(10, 2), now).is_empty(), "held for the moment");
        assert_eq!(sequencer.next_due(), Some(now + GAP_WAIT));
        assert!(sequencer.heard(heard(9, 1), now).is_empty());
        assert!(sequencer.started(now + GAP_WAIT / 2).is_empty());
        assert!(sequencer.due_gaps(now + GAP_WAIT).is_empty(), "no baseline: nothing to read");
        assert_eq!(ids(&sequencer.started(now + GAP_WAIT)), [9, 10], "none skipped");
        assert_eq!(ids(&sequencer.heard(heard(11, 2), now + GAP_WAIT)), [11]);
        assert_eq!(sequencer.next_due(), None);
    }

    #[test]
    fn a_baseline_read_late_starts_the_sequence_instead() {
        let now = Instant::now();
        let mut sequencer = Sequencer::default();
        sequencer.subscribe(room(), 1);
        sequencer.start_at_first(&room());
        assert!(sequencer.heard(heard(10, 2), now).is_empty());
        assert_eq!(ids(&sequencer.baseline(&room(), 9, now)), [10]);
        assert!(sequencer.started(now + GAP_WAIT).is_empty());
    }

    #[test]
    fn past_the_bound_the_newest_held_are_let_go_and_read_with_the_next_gap() {
        let now = Instant::now();
        let mut sequencer = live(0, now);
        for id in 2..=MAX_AHEAD as u64 + 500 {
            sequencer.heard(heard(id, 2), now);
        }
        assert_eq!(sequencer.rooms[&room()].ahead.len(), MAX_AHEAD, "bounded");
        assert_eq!(sequencer.held(), MAX_AHEAD, "as the gauge says");
        // The store fails: nothing more is kept.
        sequencer.retry_later(&room(), now);
        sequencer.heard(heard(MAX_AHEAD as u64 + 501, 2), now);
        assert_eq!(sequencer.rooms[&room()].ahead.len(), MAX_AHEAD);
        // The gap is read: what was held goes out, and the next message heard shows what was let go.
        let (delivered, _) = sequencer.filled(&room(), 0, vec![message(1)], now);
        assert_eq!(ids(&delivered).last(), Some(&(MAX_AHEAD as u64 + 1)));
        assert!(sequencer.heard(heard(MAX_AHEAD as u64 + 502, 2), now).is_empty());
        assert_eq!(sequencer.held(), 1);
        let gap = Gap { room: room(), after: MAX_AHEAD as u64 + 1, through: MAX_AHEAD as u64 + 501 };
        assert_eq!(sequencer.due_gaps(now + GAP_WAIT), [gap]);
    }

    #[test]
    fn only_rooms_with_a_gap_are_waited_on_among_many_quiet_ones() {
        let now = Instant::now();
        let mut sequencer = Sequencer::default();
        for n in 0..10_000 {
            let quiet = RoomName::parse(format!("quiet-{n}")).expect("room");
            sequencer.subscribe(quiet.clone(), 1);
            sequencer.baseline(&quiet, 0, now);
        }
        sequencer.subscribe(room(), 2);
        sequencer.baseline(&room(), 0, now);
        sequencer.heard(heard(2, 2), now);
        assert_eq!(sequencer.waiting.len(), 1);
        assert_eq!(sequencer.due_gaps(now + GAP_WAIT), [Gap { room: room(), after: 0, through: 1 }]);
        sequencer.heard(heard(1, 2), now);
        assert!(sequencer.waiting.is_empty(), "the gap closed");
        assert_eq!(sequencer.next_due(), None);
        sequencer.heard(heard(4, 2), now);
        sequencer.unsubscribe(&room());
        assert!(sequencer.waiting.is_empty(), "a room left is not waited on");
    }

    #[test]
    fn a_gap_whose_read_failed_is_tried_again_later() {
        let now = Instant::now();
        let mut sequencer = live(0, now);
        sequencer.heard(heard(2, 2), now);
        let later = now + GAP_WAIT;
        assert_eq!(sequencer.due_gaps(later).len(), 1);
        sequencer.retry_later(&room(), later);
        assert!(sequencer.due_gaps(later).is_empty());
        assert_eq!(sequencer.due_gaps(later + GAP_WAIT).len(), 1);
    }

    #[test]
    fn thousands_held_behind_one_gap_are_read_at_once_and_released_in_order() {
        let now = Instant::now();
        let mut sequencer = live(0, now);
        for id in (2..=MAX_AHEAD as u64 + 1).rev() {
            assert!(sequencer.heard(heard(id, 2), now).is_empty());
        }
        assert_eq!(sequencer.due_gaps(now), [Gap { room: room(), after: 0, through: 1 }], "full: due at once");
        let (delivered, _) = sequencer.filled(&room(), 0, vec![message(1)], now);
        assert_eq!(ids(&delivered), (1..=MAX_AHEAD as u64 + 1).collect::<Vec<_>>());
        assert_eq!(sequencer.held(), 0, "nothing held once released");
    }

    #[test]
    fn the_count_held_follows_every_way_messages_leave() {
        let now = Instant::now();
        let mut sequencer = live(0, now);
        for id in [3, 4, 6] {
            sequencer.heard(heard(id, 2), now);
        }
        assert_eq!(sequencer.held(), 3);
        sequencer.heard(heard(1, 2), now);
        assert_eq!(sequencer.held(), 3, "1 went out at once");
        sequencer.filled_partly(&room(), vec![message(2)], now);
        assert_eq!(sequencer.held(), 1, "2, 3 and 4 went out; 6 waits for 5");
        sequencer.filled(&room(), 4, Vec::new(), now);
        assert_eq!(sequencer.held(), 0, "the store has no 5: 6 went out too");
        sequencer.subscribe(room(), 3);
        assert_eq!(sequencer.held(), 0, "a new subscription starts empty");
        sequencer.heard(heard(9, 2), now);
        assert_eq!(sequencer.held(), 1, "held until the baseline");
        sequencer.baseline(&room(), 8, now);
        assert_eq!(sequencer.held(), 0);
        sequencer.heard(heard(11, 2), now);
        sequencer.unsubscribe(&room());
        assert_eq!(sequencer.held(), 0, "a room let go takes its held messages");
    }
}
