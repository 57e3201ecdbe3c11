//! The checker: reads every client's history against what the store holds
//! once the run is quiet, and lists every broken promise. Each invariant is
//! one function over the same [`Evidence`], so adding one is adding a function
//! to [`INVARIANTS`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::client::{History, Received};
use crate::gauges::{self, Peaks, Reading};
use crate::records::Hold;

/// What the run gathered: each client's history, the stored messages, and
/// the servers' record of names held.
pub struct Evidence<'a> {
    /// Every client's history.
    pub histories: &'a [History],
    /// Each room's stored messages: id -> client id.
    pub store: BTreeMap<String, BTreeMap<u64, Option<String>>>,
    /// Every hold of a name the nodes recorded.
    pub holds: Vec<Hold>,
    /// When each node was frozen (SIGSTOP): node, from, until (seconds since the epoch).
    pub frozen: Vec<(usize, f64, f64)>,
    /// Each node's gauges after healing and settling (`None`: it did not
    /// answer); empty when not read.
    pub gauges_at_end: Vec<Option<Reading>>,
    /// The highest each node's gauges of what it held reached while chatting.
    pub peaks: Peaks,
    /// The bound of each gauge of what a node holds, by metric.
    pub bounds: BTreeMap<&'static str, i64>,
}

impl<'a> Evidence<'a> {
    /// Gathers the evidence from the histories and the rows (room, id, client id).
    pub fn new(histories: &'a [History], rows: Vec<(String, u64, Option<String>)>) -> Self {
        let mut store: BTreeMap<String, BTreeMap<u64, Option<String>>> = BTreeMap::new();
        for (room, id, client_id) in rows {
            store.entry(room).or_default().insert(id, client_id);
        }
        Self {
            histories,
            store,
            holds: Vec::new(),
            frozen: Vec::new(),
            gauges_at_end: Vec::new(),
            peaks: Peaks::new(),
            bounds: BTreeMap::new(),
        }
    }

    /// Adds the servers' record of names held, and when nodes were frozen.
    pub fn with_holds(mut self, holds: Vec<Hold>, frozen: Vec<(usize, f64, f64)>) -> Self {
        self.holds = holds;
        self.frozen = frozen;
        self
    }

    /// Adds the nodes' gauges: read once at the end, their peaks while
    /// chatting, and the bounds the peaks are held to.
    pub fn with_gauges(
        mut self,
        at_end: Vec<Option<Reading>>,
        peaks: Peaks,
        bounds: BTreeMap<&'static str, i64>,
    ) -> Self {
        self.gauges_at_end = at_end;
        self.peaks = peaks;
        self.bounds = bounds;
        self
    }

    /// The newest id stored in `room` (0 if none).
    fn newest(&self, room: &str) -> u64 {
        self.store.get(room).and_then(|ids| ids.keys().next_back().copied()).unwrap_or(0)
    }
}

/// One invariant: its name, and what it found (how many cases it checked,
/// and a line per violation).
pub struct Checked {
    /// What it promises.
    pub name: &'static str,
    /// Cases checked.
    pub cases: usize,
    /// What broke it.
    pub violations: Vec<String>,
}

/// An invariant over the evidence.
type Invariant = fn(&Evidence<'_>) -> Checked;

/// Every invariant checked, in the report's order.
pub const INVARIANTS: [Invariant; 10] = [
    every_frame_was_valid_protocol,
    store_ids_have_no_gaps,
    acks_name_stored_messages,
    every_send_was_acknowledged,
    every_client_got_its_room_once_in_order,
    member_lists_heal,
    one_holder_per_name,
    held_stayed_within_bounds,
    nothing_held_after_healing,
    every_open_socket_is_a_clients,
];

/// While chatting, no node held more of anything than its bound.
fn held_stayed_within_bounds(evidence: &Evidence<'_>) -> Checked {
    let mut checked = Checked { name: "what nodes held stayed within its bounds", cases: 0, violations: Vec::new() };
    for ((node, metric), peak) in &evidence.peaks {
        checked.cases += 1;
        match evidence.bounds.get(metric) {
            Some(bound) if peak <= bound => {}
            Some(bound) => checked.violations.push(format!("node {node}: {metric} reached {peak} (bound {bound})")),
            None => checked.violations.push(format!("node {node}: {metric} has no bound")),
        }
    }
    checked
}

/// Once healed and quiet, no node holds anything waiting: every message
/// ahead of a gap was released, every event published, every message
/// committed, every committed message delivered back to its author.
fn nothing_held_after_healing(evidence: &Evidence<'_>) -> Checked {
    let mut checked = Checked { name: "nothing held waits once healed", cases: 0, violations: Vec::new() };
    for (node, reading) in evidence.gauges_at_end.iter().enumerate() {
        let Some(reading) = reading else {
            checked.cases += 1;
            checked.violations.push(format!("node {node} did not answer /metrics"));
            continue;
        };
        for gauge in gauges::HELD {
            checked.cases += 1;
            let held = reading.held.get(gauge.metric).copied().unwrap_or_default();
            if held != 0 {
                checked.violations.push(format!("node {node}: {held} {} ({})", gauge.what, gauge.metric));
            }
        }
    }
    checked
}

/// Once quiet, the nodes' open sockets are exactly the clients' (no
/// session outlived its client, none was lost without its client knowing).
fn every_open_socket_is_a_clients(evidence: &Evidence<'_>) -> Checked {
    let mut checked = Checked { name: "every open socket is a client's", cases: 0, violations: Vec::new() };
    if evidence.gauges_at_end.is_empty() {
        return checked;
    }
    let clients = evidence.histories.iter().filter(|history| history.joined_at_end).count();
    checked.cases = clients;
    let open: Vec<i64> = evidence.gauges_at_end.iter().flatten().map(|reading| reading.open_sockets).collect();
    let total: i64 = open.iter().sum();
    if open.len() != evidence.gauges_at_end.len() || total != clients as i64 {
        checked.violations.push(format!("{clients} clients connected; the nodes count {open:?} open sockets"));
    }
    checked
}

/// How long after a frozen node is let go its connections may still hold
/// names they lost (it closes them at its first look at its lease).
const THAW: f64 = 1.0;

/// By the servers' own records, no two users ever held one name in one
/// room at the same moment: two holds at once are of one tab (taking its
/// own name back) or of one signed-in user (its devices). A node's
/// connections hold nothing while it is frozen, and for [`THAW`] after.
fn one_holder_per_name(evidence: &Evidence<'_>) -> Checked {
    let mut checked =
        Checked { name: "no two users held one name at once (servers' records)", cases: 0, violations: Vec::new() };
    let mut by_name: BTreeMap<(&str, &str), Vec<&Hold>> = BTreeMap::new();
    for hold in &evidence.holds {
        by_name.entry((hold.room.as_str(), hold.nick.as_str())).or_default().push(hold);
    }
    let frozen = |hold: &Hold, from: f64, until: f64| {
        evidence.frozen.iter().any(|(node, start, end)| *node == hold.node && *start <= from && until <= end + THAW)
    };
    for ((room, nick), holds) in by_name {
        checked.cases += holds.len();
        for (i, a) in holds.iter().enumerate() {
            for b in &holds[i + 1..] {
                let (from, until) = (a.from.max(b.from), a.until.min(b.until));
                let one_user = a.tab == b.tab || (a.owner.is_some() && a.owner == b.owner);
                if one_user || until <= from || frozen(a, from, until) || frozen(b, from, until) {
                    continue;
                }
                checked.violations.push(format!(
                    "#{room} {nick}: held by connection {} on node {} and by connection {} on node {} (other users) for {:.3}s",
                    a.connection,
                    a.node,
                    b.connection,
                    b.node,
                    until - from
                ));
            }
        }
    }
    checked
}

/// Runs every invariant.
pub fn check(evidence: &Evidence<'_>) -> Vec<Checked> {
    INVARIANTS.iter().map(|invariant| invariant(evidence)).collect()
}

/// Every text frame a server sent decodes as the protocol of `chat-shared`.
fn every_frame_was_valid_protocol(evidence: &Evidence<'_>) -> Checked {
    let mut checked = Checked { name: "every frame was valid protocol", cases: 0, violations: Vec::new() };
    for history in evidence.histories {
        checked.cases += history.received.len() + history.acks.len() + history.invalid_frames.len();
        for frame in &history.invalid_frames {
            checked.violations.push(format!("{} was sent {frame}", history.nick));
        }
    }
    checked
}

/// The store numbers each room's messages 1, 2, 3... with no gap.
fn store_ids_have_no_gaps(evidence: &Evidence<'_>) -> Checked {
    let mut checked = Checked { name: "stored ids run 1..n in every room", cases: 0, violations: Vec::new() };
    for (room, ids) in &evidence.store {
        checked.cases += ids.len();
        for (expected, id) in (1..).zip(ids.keys()) {
            if *id != expected {
                checked.violations.push(format!("#{room}: id {expected} is missing from the store (next is {id})"));
                break;
            }
        }
    }
    checked
}

/// Every ack names the message stored with that client id, under that id.
fn acks_name_stored_messages(evidence: &Evidence<'_>) -> Checked {
    let mut checked = Checked { name: "every ack names its message, stored once", cases: 0, violations: Vec::new() };
    for history in evidence.histories {
        let stored = evidence.store.get(&history.room);
        let by_client_id: HashMap<&str, u64> =
            stored.into_iter().flatten().filter_map(|(id, client_id)| Some((client_id.as_deref()?, *id))).collect();
        for (client_id, acked) in &history.acks {
            checked.cases += 1;
            match by_client_id.get(client_id.as_str()) {
                Some(id) if id == acked => {}
                Some(id) => checked.violations.push(format!(
                    "{}: {client_id} acknowledged as #{} {acked} but stored as {id}",
                    history.nick, history.room
                )),
                None => checked.violations.push(format!(
                    "{}: {client_id} acknowledged as #{} {acked} but not stored",
                    history.nick, history.room
                )),
            }
        }
    }
    checked
}

/// Every client id a client sent (and resent) was acknowledged by the end.
fn every_send_was_acknowledged(evidence: &Evidence<'_>) -> Checked {
    let mut checked = Checked { name: "every message sent was acknowledged", cases: 0, violations: Vec::new() };
    for history in evidence.histories {
        checked.cases += history.sent.len();
        for client_id in history.sent.keys() {
            if !history.acks.contains_key(client_id) {
                let times = history.sent[client_id];
                checked
                    .violations
                    .push(format!("{}: {client_id} (sent {times} times) was never acknowledged", history.nick));
            }
        }
    }
    checked
}

/// Every client, once the run is quiet, was given every message of its room
/// from where it started to the newest stored, live or on resume, each once,
/// in id order, with no gap.
fn every_client_got_its_room_once_in_order(evidence: &Evidence<'_>) -> Checked {
    let mut checked =
        Checked { name: "every client got its room once, in order, no gap", cases: 0, violations: Vec::new() };
    for history in evidence.histories {
        let mut last: Option<u64> = None;
        let mut broken = None;
        // Where it was, to say so with a violation.
        let mut on = String::new();
        for received in &history.received {
            match received {
                Received::Joined { node, at, after } => {
                    on = format!(" ({node} since {:.2}s, resumed after {after:?})", at.as_secs_f64());
                }
                Received::Start { first } => last = Some(first.map_or(0, |first| first - 1)),
                Received::Message { id } => {
                    checked.cases += 1;
                    match last {
                        Some(held) if *id == held + 1 => last = Some(*id),
                        Some(held) if *id <= held => {
                            broken
                                .get_or_insert(format!("got #{} {id} again (or late) after {held}{on}", history.room));
                        }
                        Some(held) => {
                            broken.get_or_insert(format!(
                                "got #{} {id} right after {held}: {} to {} never came first{on}",
                                history.room,
                                held + 1,
                                id - 1
                            ));
                            last = Some(*id);
                        }
                        None => {
                            broken.get_or_insert(format!("got #{} {id} before any page{on}", history.room));
                        }
                    }
                }
            }
        }
        let newest = evidence.newest(&history.room);
        if broken.is_none() && last.unwrap_or(0) < newest {
            broken = Some(format!(
                "holds #{} up to {} once quiet, but {} is stored{}{on}",
                history.room,
                last.unwrap_or(0),
                newest,
                if history.joined_at_end { "" } else { " (not joined at the end)" }
            ));
        }
        if let Some(broken) = broken {
            checked.violations.push(format!("{}: {broken}", history.nick));
        }
    }
    checked
}

/// Once the run is quiet, every client's member list is who is in its room:
/// every client of the room (all are joined by then), and nobody else.
fn member_lists_heal(evidence: &Evidence<'_>) -> Checked {
    let mut checked =
        Checked { name: "every member list heals to the room's members", cases: 0, violations: Vec::new() };
    let mut truth: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for history in evidence.histories {
        truth.entry(history.room.as_str()).or_default().insert(history.nick.clone());
    }
    for history in evidence.histories.iter().filter(|history| history.joined_at_end) {
        checked.cases += 1;
        let room = &truth[history.room.as_str()];
        let missing: Vec<&String> = room.difference(&history.members_at_end).collect();
        let ghosts: Vec<&String> = history.members_at_end.difference(room).collect();
        if !missing.is_empty() || !ghosts.is_empty() {
            let on = history.received.iter().rev().find_map(|received| match received {
                Received::Joined { node, at, .. } => Some(format!(" ({node} since {:.2}s)", at.as_secs_f64())),
                _ => None,
            });
            // The last few changes to its list say how it came to be wrong.
            let trail: Vec<String> = history
                .members_trail
                .iter()
                .rev()
                .take(8)
                .rev()
                .map(|(at, change)| format!("{:.2}s {change}", at.as_secs_f64()))
                .collect();
            checked.violations.push(format!(
                "{} in #{}: lists {:?}; missing {missing:?}, not there {ghosts:?}{}; last changes: {}",
                history.nick,
                history.room,
                history.members_at_end,
                on.unwrap_or_default(),
                trail.join(", ")
            ));
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client of `room` that was given `received` and acknowledged `acks`.
    fn client(nick: &str, room: &str, received: Vec<Received>, acks: &[(&str, u64)]) -> History {
        History {
            nick: nick.to_owned(),
            room: room.to_owned(),
            received,
            acks: acks.iter().map(|(id, stored)| ((*id).to_owned(), *stored)).collect(),
            sent: acks.iter().map(|(id, _)| ((*id).to_owned(), 1)).collect(),
            joined_at_end: true,
            members_at_end: ["a", "b"].into_iter().map(str::to_owned).collect(),
            ..History::default()
        }
    }

    fn messages(ids: impl IntoIterator<Item = u64>) -> Vec<Received> {
        let mut received = vec![Received::Start { first: None }];
        received.extend(ids.into_iter().map(|id| Received::Message { id }));
        received
    }

    fn rows(room: &str, n: u64) -> Vec<(String, u64, Option<String>)> {
        (1..=n).map(|id| (room.to_owned(), id, Some(format!("t-{id}")))).collect()
    }

    fn violations(histories: &[History], rows: Vec<(String, u64, Option<String>)>) -> Vec<(&'static str, String)> {
        let evidence = Evidence::new(histories, rows);
        check(&evidence).into_iter().flat_map(|c| c.violations.into_iter().map(move |v| (c.name, v))).collect()
    }

    #[test]
    fn a_run_where_every_promise_held_has_no_violations() {
        let histories = [
            client("a", "r", messages(1..=3), &[("t-1", 1), ("t-3", 3)]),
            client("b", "r", messages(1..=3), &[("t-2", 2)]),
        ];
        assert_eq!(violations(&histories, rows("r", 3)), []);
    }

    #[test]
    fn a_gap_a_repeat_and_a_missing_tail_are_each_seen() {
        let histories = [
            client("a", "r", messages([1, 3]), &[]),
            client("b", "r", messages([1, 2, 2, 3]), &[]),
            client("c", "r", messages([1, 2]), &[]),
        ];
        let found = violations(&histories, rows("r", 3));
        let about = |nick: &str| found.iter().filter(|(_, v)| v.starts_with(&format!("{nick}:"))).count();
        assert_eq!((about("a"), about("b"), about("c")), (1, 1, 1), "{found:#?}");
    }

    #[test]
    fn a_lost_ack_a_wrong_ack_and_a_resume_that_started_over_are_told_apart() {
        let mut lost = client("a", "r", messages(1..=2), &[("t-1", 2)]);
        lost.sent.insert("t-9".to_owned(), 3);
        // A refused resume starts over from the latest page: what it skipped is not a gap.
        let mut restarted = messages([1]);
        restarted.extend([Received::Start { first: Some(2) }, Received::Message { id: 2 }]);
        let histories = [lost, client("b", "r", restarted, &[])];
        let found = violations(&histories, rows("r", 2));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().any(|(_, v)| v.contains("t-1") && v.contains("stored as 1")));
        assert!(found.iter().any(|(_, v)| v.contains("t-9") && v.contains("never acknowledged")));
    }

    #[test]
    fn a_frame_that_is_not_protocol_is_a_violation() {
        let mut garbled = client("a", "r", messages(1..=1), &[]);
        garbled.invalid_frames.push("expected value: {oops".to_owned());
        let found = violations(&[garbled, client("b", "r", messages(1..=1), &[])], rows("r", 1));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].0, "every frame was valid protocol");
    }

    #[test]
    fn two_users_holding_one_name_at_once_is_a_violation_but_a_frozen_node_holds_nothing() {
        let hold = |tab: &str, node: usize, from: f64, until: f64| Hold {
            room: "r".to_owned(),
            nick: "a".to_owned(),
            tab: tab.to_owned(),
            owner: tab.strip_prefix("user-").map(|user| user[..1].to_owned()),
            node,
            connection: 1,
            from,
            until,
        };
        let histories = [client("a", "r", messages(1..=1), &[])];
        let found = |holds: Vec<Hold>, frozen: Vec<(usize, f64, f64)>| {
            let evidence = Evidence::new(&histories, rows("r", 1)).with_holds(holds, frozen);
            one_holder_per_name(&evidence).violations
        };
        assert!(
            found(vec![hold("t1", 0, 0.0, 10.0), hold("t2", 1, 10.0, 20.0)], vec![]).is_empty(),
            "one after the other"
        );
        assert!(found(vec![hold("t1", 0, 0.0, 10.0), hold("t1", 1, 5.0, 20.0)], vec![]).is_empty(), "its own tab");
        assert_eq!(found(vec![hold("t1", 0, 0.0, 10.0), hold("t2", 1, 9.0, 20.0)], vec![]).len(), 1);
        // Two devices of one user may; two users, or a user and a guest, may not.
        assert!(found(vec![hold("user-a1", 0, 0.0, 10.0), hold("user-a2", 1, 5.0, 20.0)], vec![]).is_empty());
        assert_eq!(found(vec![hold("user-a1", 0, 0.0, 10.0), hold("user-b1", 1, 5.0, 20.0)], vec![]).len(), 1);
        assert_eq!(found(vec![hold("user-a1", 0, 0.0, 10.0), hold("t2", 1, 5.0, 20.0)], vec![]).len(), 1);
        // Node 0 was frozen from 2 s to 9.5 s: its connection held nothing then (nor for a second after).
        assert!(found(vec![hold("t1", 0, 0.0, 10.0), hold("t2", 1, 9.0, 20.0)], vec![(0, 2.0, 9.5)]).is_empty());
    }

    #[test]
    fn member_lists_must_name_exactly_the_room() {
        let mut ghost = client("a", "r", messages(1..=1), &[]);
        ghost.members_at_end.insert("gone".to_owned());
        let mut short = client("b", "r", messages(1..=1), &[]);
        short.members_at_end.remove("a");
        let found = violations(&[ghost, short], rows("r", 1));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().all(|(name, _)| *name == "every member list heals to the room's members"));
    }

    #[test]
    fn held_gauges_must_drain_stay_bounded_and_sockets_match_the_clients() {
        let histories = [client("a", "r", messages(1..=1), &[]), client("b", "r", messages(1..=1), &[])];
        let drained = |open_sockets: i64| Reading {
            held: gauges::HELD.iter().map(|gauge| (gauge.metric, 0)).collect(),
            open_sockets,
        };
        let bounds: BTreeMap<&'static str, i64> = gauges::HELD.iter().map(|gauge| (gauge.metric, 100)).collect();
        let found = |at_end: Vec<Option<Reading>>, peaks: Peaks| {
            let evidence = Evidence::new(&histories, rows("r", 1)).with_gauges(at_end, peaks, bounds.clone());
            check(&evidence).into_iter().flat_map(|c| c.violations).collect::<Vec<_>>()
        };
        let peaks = Peaks::from([((0, "chat_bus_held_ahead"), 100), ((1, "chat_store_waiting"), 7)]);
        assert_eq!(found(vec![Some(drained(1)), Some(drained(1))], peaks.clone()), Vec::<String>::new());

        let mut stuck = drained(1);
        stuck.held.insert("chat_awaited_acks", 2);
        assert_eq!(found(vec![Some(drained(1)), Some(stuck)], Peaks::new()).len(), 1, "an ack still awaited");
        assert_eq!(found(vec![Some(drained(2)), None], Peaks::new()).len(), 2, "a node that never answers");
        assert_eq!(found(vec![Some(drained(2)), Some(drained(1))], Peaks::new()).len(), 1, "a socket too many");
        let over = Peaks::from([((2, "chat_bus_unpublished"), 101)]);
        assert_eq!(found(vec![Some(drained(1)), Some(drained(1))], over).len(), 1, "past its bound");
    }
}
