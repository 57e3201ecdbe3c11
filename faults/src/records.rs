//! The servers' own record of who held which nickname when: each node logs
//! (as JSON, at debug, target `chat_server::presence::record`) a `claimed`
//! line when a connection takes a name and a `released` line when it stops
//! speaking under it. Read back here into intervals, one per claim, ended by
//! its release, by its node's death (a killed node writes nothing more), or
//! by the end of the run.

use std::path::Path;

/// One connection's hold of a name, as the servers recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// The room.
    pub room: String,
    /// The name.
    pub nick: String,
    /// The fingerprint of its browser tab.
    pub tab: String,
    /// The fingerprint of its user (an account, a token's user); `None`
    /// for a guest.
    pub owner: Option<String>,
    /// The node whose log recorded it.
    pub node: usize,
    /// The connection, on that node.
    pub connection: u64,
    /// When it was claimed, in seconds since the Unix epoch.
    pub from: f64,
    /// When it was released (or its node died, or the run ended).
    pub until: f64,
}

/// Seconds since the Unix epoch of an RFC 3339 UTC timestamp as
/// `tracing-subscriber` writes it (`2026-12-07T10:04:28.123456Z`).
fn epoch_seconds(timestamp: &str) -> Option<f64> {
    let (date, time) = timestamp.strip_suffix('Z')?.split_once('T')?;
    let mut date = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.split(':');
    let (hours, minutes) = (time.next()?.parse::<i64>().ok()?, time.next()?.parse::<i64>().ok()?);
    let seconds: f64 = time.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some((days * 86_400 + hours * 3_600 + minutes * 60) as f64 + seconds)
}

/// A line of a node's log that matters here.
enum Line {
    /// A record of a name claimed or released.
    Record { message: String, room: String, nick: String, tab: Option<String>, owner: Option<String>, connection: u64 },
    /// A process started (it logs `listening` once bound): whatever the
    /// one before held ended with it.
    Started,
    /// Anything else (its time still says the process was alive).
    Other,
}

/// A line's time and what it is; `None` if it is not a JSON log line.
fn line(text: &str) -> Option<(f64, Line)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let at = epoch_seconds(value.get("timestamp")?.as_str()?)?;
    if value.get("message").and_then(serde_json::Value::as_str) == Some("listening") {
        return Some((at, Line::Started));
    }
    Some((at, record(&value).unwrap_or(Line::Other)))
}

fn record(value: &serde_json::Value) -> Option<Line> {
    if value.get("target")?.as_str()? != "chat_server::presence::record" {
        return None;
    }
    let text = |key: &str| value.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    Some(Line::Record {
        message: text("message")?,
        room: text("room")?,
        nick: text("nick")?,
        tab: text("tab"),
        owner: text("owner"),
        connection: value.get("connection")?.as_u64()?,
    })
}

/// The holds recorded in node `node`'s log at `path`. A hold ends at its
/// release; or, when its process ended first, at the first of `deaths` (the
/// times the node was killed) after it began, or, for a process that ended
/// otherwise (it exited at startup, say), at its last log line before the
/// next one started. Holds still open when the log ends end at `end`.
pub fn read(path: &Path, node: usize, deaths: &[f64], end: f64) -> Vec<Hold> {
    let Ok(log) = std::fs::read_to_string(path) else { return Vec::new() };
    let death_after = |from: f64| deaths.iter().copied().filter(|death| *death >= from).reduce(f64::min);
    let mut holds: Vec<Hold> = Vec::new();
    // Indices of the holds of the running process not yet released.
    let mut open: Vec<usize> = Vec::new();
    let mut last_seen = f64::NEG_INFINITY;
    for (at, line) in log.lines().filter_map(line) {
        // Killed since they began: over at the kill.
        open.retain(|index| match death_after(holds[*index].from) {
            Some(death) if death <= at => {
                holds[*index].until = death;
                false
            }
            _ => true,
        });
        match line {
            Line::Started => {
                for index in open.drain(..) {
                    holds[index].until = last_seen.max(holds[index].from);
                }
            }
            Line::Record { message, room, nick, tab, owner, connection } => match (message.as_str(), tab) {
                ("claimed", Some(tab)) => {
                    open.push(holds.len());
                    holds.push(Hold { room, nick, tab, owner, node, connection, from: at, until: end });
                }
                ("released", _) => {
                    if let Some(position) = open.iter().position(|index| {
                        let hold = &holds[*index];
                        hold.connection == connection && hold.room == room && hold.nick == nick
                    }) {
                        holds[open.remove(position)].until = at;
                    }
                }
                _ => {}
            },
            Line::Other => {}
        }
        last_seen = at;
    }
    for index in open {
        holds[index].until = death_after(holds[index].from).unwrap_or(end);
    }
    holds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_seconds_since_the_epoch() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:01.5Z"), Some(1.5));
        assert_eq!(epoch_seconds("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(epoch_seconds("2026-12-07T10:04:28.25Z"), Some(1_796_637_868.25));
        assert_eq!(epoch_seconds("yesterday"), None);
    }

    #[test]
    fn holds_end_at_their_release_or_their_nodes_death() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("node-0.log");
        let line = |at: &str, message: &str, nick: &str, connection: u64| {
            format!(
                r#"{{"timestamp":"1970-01-01T00:00:{at}Z","level":"DEBUG","message":"{message}","room":"r","nick":"{nick}","tab":"t{connection}","connection":{connection},"target":"chat_server::presence::record"}}"#
            )
        };
        let log = [
            line("01", "claimed", "ann", 1),
            r#"{"timestamp":"1970-01-01T00:00:02Z","level":"INFO","message":"connected","target":"chat_server::session"}"#
                .to_owned(),
            line("03", "released", "ann", 1),
            line("04", "claimed", "bob", 2),
            // Killed at 10 s; the restarted process numbers connections from 1 again.
            line("15", "claimed", "dan", 1),
            line("16", "released", "dan", 1),
            line("20", "claimed", "cat", 3),
            line("21", "claimed", "eve", 4),
            line("22", "released", "eve", 4),
            // That process exited by itself (no kill): the next one starts at 25 s.
            r#"{"timestamp":"1970-01-01T00:00:25Z","level":"INFO","message":"listening","target":"chat_server"}"#
                .to_owned(),
            line("26", "claimed", "fay", 3).replace(r#""tab""#, r#""owner":"u7","tab""#),
        ];
        std::fs::write(&path, log.join("\n")).expect("log");
        let holds = read(&path, 0, &[10.0], 30.0);
        let spans: Vec<(&str, f64, f64)> = holds.iter().map(|h| (h.nick.as_str(), h.from, h.until)).collect();
        assert_eq!(
            spans,
            [
                ("ann", 1.0, 3.0),
                ("bob", 4.0, 10.0),
                ("dan", 15.0, 16.0),
                ("cat", 20.0, 22.0),
                ("eve", 21.0, 22.0),
                ("fay", 26.0, 30.0)
            ]
        );
        let owners: Vec<Option<&str>> = holds.iter().map(|h| h.owner.as_deref()).collect();
        assert_eq!(owners, [None, None, None, None, None, Some("u7")], "a guest has none");
    }
}
