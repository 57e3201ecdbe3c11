//! The nodes' own gauges, read from their `/metrics`: what each holds
//! waiting (messages ahead of a missing id, events to publish, messages to
//! commit, acks awaiting their message) and its open sockets. Sampled through
//! the run, so the peaks can be held against the documented bounds, and read
//! once after healing and settling, when everything held must have drained
//! and every open socket must belong to a client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

use crate::client::Phase;

/// One gauge of something a node holds waiting.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// Its name in `/metrics`.
    pub metric: &'static str,
    /// What it counts, as the report says.
    pub what: &'static str,
}

/// The gauges of what a node holds waiting (see the README's bounds).
pub const HELD: [Held; 4] = [
    Held { metric: "chat_bus_held_ahead", what: "messages held ahead of a missing id" },
    Held { metric: "chat_bus_unpublished", what: "room events waiting to be published" },
    Held { metric: "chat_store_waiting", what: "messages accepted, not yet committed" },
    Held { metric: "chat_awaited_acks", what: "committed messages not yet delivered back" },
];

/// The open JSON sockets of a node.
const OPEN_SOCKETS: &str = "chat_open_connections{endpoint=\"json\"}";

/// How often the gauges are sampled while the run goes on.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// How long a node may take to answer `/metrics` (a frozen one never does).
const SCRAPE_PATIENCE: Duration = Duration::from_secs(2);

/// What one node's gauges said once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Each [`HELD`] gauge's value, by metric name.
    pub held: BTreeMap<&'static str, i64>,
    /// Its open JSON sockets.
    pub open_sockets: i64,
}

/// Reads `node`'s gauges; `None` if it did not answer (stopped, frozen, killed).
pub async fn read(http: &reqwest::Client, node: SocketAddr) -> Option<Reading> {
    let response = http.get(format!("http://{node}/metrics")).timeout(SCRAPE_PATIENCE).send().await.ok()?;
    parse(&response.text().await.ok()?)
}

/// The gauges in a Prometheus text exposition; `None` if one is missing.
fn parse(text: &str) -> Option<Reading> {
    let value = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
            rest.trim().parse::<f64>().ok()
        })
    };
    let mut reading = Reading::default();
    for gauge in HELD {
        // Gauges are whole numbers; the exposition may print them as floats.
        reading.held.insert(gauge.metric, value(gauge.metric)? as i64);
    }
    reading.open_sockets = value(OPEN_SOCKETS)? as i64;
    Some(reading)
}

/// The highest value each gauge of each node reached in the samples, by
/// (node, metric).
pub type Peaks = BTreeMap<(usize, &'static str), i64>;

/// Samples every node's gauges until the run's phase leaves chatting, and
/// returns the peaks.
pub async fn sample(nodes: Vec<SocketAddr>, mut phase: watch::Receiver<Phase>) -> Peaks {
    let http = reqwest::Client::new();
    let mut peaks = Peaks::new();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    while *phase.borrow() == Phase::Chatting {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = phase.changed() => break,
        }
        let readings = futures_util::future::join_all(nodes.iter().map(|node| read(&http, *node))).await;
        for (node, reading) in readings.into_iter().enumerate() {
            for (metric, value) in reading.map(|reading| reading.held).unwrap_or_default() {
                let peak = peaks.entry((node, metric)).or_default();
                *peak = (*peak).max(value);
            }
        }
    }
    peaks
}

/// Reads every node's gauges once (after healing and settling).
pub async fn read_all(nodes: &[SocketAddr]) -> Vec<Option<Reading>> {
    let http = reqwest::Client::new();
    futures_util::future::join_all(nodes.iter().map(|node| read(&http, *node))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauges_are_read_from_the_exposition_and_a_missing_one_is_not_guessed() {
        let text = "# HELP chat_bus_held_ahead Messages held ahead of a missing id\n\
                    # TYPE chat_bus_held_ahead gauge\n\
                    chat_bus_held_ahead 3\n\
                    chat_bus_held_ahead_other 9\n\
                    chat_bus_unpublished 0\n\
                    chat_store_waiting 12\n\
                    chat_awaited_acks 1\n\
                    chat_open_connections{endpoint=\"json\"} 4\n\
                    chat_open_connections{endpoint=\"plain\"} 7\n";
        let reading = parse(text).expect("every gauge there");
        assert_eq!(reading.held["chat_bus_held_ahead"], 3, "not confused with a longer name");
        assert_eq!(reading.held["chat_store_waiting"], 12);
        assert_eq!(reading.open_sockets, 4, "the JSON endpoint's");
        assert_eq!(parse(&text.replace("chat_awaited_acks 1\n", "")), None);
    }
}
