//! The reconnect storm (`--storm`): what a restart looks like to the server.
//!
//! One publisher joins first and sends at `--rate`; then the other clients
//! open and join one room as fast as `--connect-concurrency` lets them, each
//! reading from the moment it is connected (as a browser would). The run
//! reports the server's CPU for the storm, the frames each joining client
//! received besides messages and history, and the publisher's messages:
//! latency and loss during the storm (sent before the last client was in)
//! and after it (sent during the following `--duration` seconds).
//!
//! A client owes every message sent after it was in (for JSON: after its
//! `history` arrived, which covers everything before); anything of those it
//! never receives is lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::{Endpoint, RoomName};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::args::Args;
use crate::clients::LoadError;
use crate::dial::{self, Sink, Stream, event_type};
use crate::procstat;
use crate::report::{Latency, Report};
use crate::stamp::{self, Stamp};

/// Latency and loss of the publisher's messages in one phase of the storm.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Phase {
    /// Messages the publisher sent in this phase.
    pub sent: u64,
    /// Deliveries owed: for each message, the clients that were in when it was sent.
    pub expected: u64,
    /// Of those, delivered.
    pub delivered: u64,
    /// Owed and never delivered.
    pub lost: u64,
    /// Latency of every live delivery of this phase's messages.
    pub latency_ms: Latency,
}

/// What one storm measured (see the module doc).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StormReport {
    /// Clients that joined besides the publisher.
    pub joiners: usize,
    /// Seconds from the first connect to the last client in.
    pub seconds: f64,
    /// Server CPU from the first connect to the last client in.
    pub server_cpu_seconds: f64,
    /// Server CPU over the `--settle` seconds after (coalesced summaries going out).
    pub settle_cpu_seconds: f64,
    /// This tool's own CPU during the storm: beside the server's, it shows
    /// whether the tool was what set the pace (the machine has two cores).
    pub load_cpu_seconds: f64,
    /// Deliveries of the publisher's messages within those two windows
    /// (their share of the CPU, at the server's usual cost per delivery).
    pub deliveries_in_storm: u64,
    /// Frames joining clients received, by event type, messages and history excluded.
    pub frames_by_type: BTreeMap<String, u64>,
    /// Those frames per joining client.
    pub frames_per_joiner: f64,
    /// Deliveries out of order or twice (must be 0).
    pub out_of_order: u64,
    /// Messages sent before the last client was in.
    pub during: Phase,
    /// Messages sent after.
    pub after: Phase,
}

impl StormReport {
    /// A few lines for a terminal.
    pub fn human(&self) -> String {
        let frames: Vec<String> = self.frames_by_type.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        let phase = |name: &str, p: &Phase| {
            format!(
                "{name}: sent {}, delivered {}/{} (lost {}), latency ms p50 {:.1} p99 {:.1} max {:.1}\n",
                p.sent, p.delivered, p.expected, p.lost, p.latency_ms.p50, p.latency_ms.p99, p.latency_ms.max
            )
        };
        format!(
            "storm: {} joined in {:.2}s; server CPU {:.2}s for the storm + {:.2}s settling \
             ({} of the publisher's deliveries in that time); load tool CPU {:.2}s\n\
             frames per joiner besides messages and history: {:.2} ({}); out of order {}\n{}{}",
            self.joiners,
            self.seconds,
            self.server_cpu_seconds,
            self.settle_cpu_seconds,
            self.deliveries_in_storm,
            self.load_cpu_seconds,
            self.frames_per_joiner,
            frames.join(", "),
            self.out_of_order,
            phase("during", &self.during),
            phase("after", &self.after),
        )
    }
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// When it was in (connected; for JSON, history received), ns since start.
    ready_ns: u64,
    /// Publisher's message number and latency of each live delivery.
    deliveries: Vec<(u64, u64)>,
    /// Frames by type, messages and history excluded.
    frames: BTreeMap<String, u64>,
    disconnected: bool,
}

/// Runs the storm and reports.
pub async fn run(args: &Args) -> Result<Report, LoadError> {
    if args.clients < 2 {
        return Err(LoadError::Options("--storm needs --clients of at least 2 (a publisher and a joiner)".into()));
    }
    if args.rate <= 0.0 {
        return Err(LoadError::Options("--storm needs a fixed --rate".into()));
    }
    let start = Instant::now();
    let now_ns = move || u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    // Publishing stops first; reading a settle time later, so nothing in flight is cut off.
    let (stop_publishing, publishing_stopped) = watch::channel(false);
    let (stop, stopped) = watch::channel(false);
    let sent_log: Arc<Mutex<Vec<u64>>> = Arc::default();

    // The publisher is in before the storm begins, like someone already chatting.
    let publisher = open(args, 0, now_ns).await.map_err(LoadError::NoConnections)?;
    let (sink, stream, publisher_seen) = publisher;
    let publisher_reader = tokio::spawn(read(stream, args.protocol, publisher_seen, now_ns, stopped.clone()));
    let publishing = tokio::spawn(publish(sink, args.clone(), sent_log.clone(), now_ns, publishing_stopped));

    let cpu_start = args.sample_servers();
    let load_start = procstat::sample(std::process::id());
    let storm_start = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let joiners: Vec<_> = (1..args.clients)
        .map(|index| {
            let (gate, args, stopped) = (gate.clone(), args.clone(), stopped.clone());
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
                let (sink, stream, seen) = open(&args, index, now_ns).await?;
                drop(permit);
                let ready_ns = seen.ready_ns;
                let reader = tokio::spawn(read(stream, args.protocol, seen, now_ns, stopped.clone()));
                let holder = tokio::spawn(async move {
                    let mut stopped = stopped;
                    let _ = stopped.wait_for(|s| *s).await;
                    drop(sink);
                });
                Ok::<_, String>((ready_ns, reader, holder))
            })
        })
        .collect();
    let (mut readers, mut errors, mut last_ready_ns) = (Vec::new(), Vec::new(), 0);
    for joiner in joiners {
        match joiner.await {
            Ok(Ok((ready_ns, reader, holder))) => {
                last_ready_ns = last_ready_ns.max(ready_ns);
                readers.push((reader, holder));
            }
            Ok(Err(error)) => errors.push(error),
            Err(error) => errors.push(error.to_string()),
        }
    }
    let storm_seconds = storm_start.elapsed().as_secs_f64();
    let cpu_storm_end = args.sample_servers();
    let load_storm_end = procstat::sample(std::process::id());
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let cpu_settled = args.sample_servers();
    let settled_ns = now_ns();
    // The publisher goes on for --duration after the storm, then everything drains.
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let publish_end_ns = now_ns();
    let _ = stop_publishing.send(true);
    let sent = publishing.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let _ = stop.send(true);
    let mut seen = vec![publisher_reader.await.unwrap_or_default()];
    for (reader, holder) in readers {
        seen.push(reader.await.unwrap_or_default());
        let _ = holder.await;
    }
    let sent_ns = sent_log.lock().await.clone();

    let mut report = Report::new(args);
    report.connected = seen.len();
    report.connect_errors = errors.len();
    report.connect_seconds = storm_seconds;
    report.disconnects = seen.iter().filter(|s| s.disconnected).count() as u64;
    report.sent = sent;
    report.seconds = publish_end_ns as f64 / 1e9;
    let mut storm = StormReport { joiners: seen.len() - 1, seconds: storm_seconds, ..StormReport::default() };
    if let (Some(a), Some(b)) = (load_start, load_storm_end) {
        storm.load_cpu_seconds = b.cpu_seconds - a.cpu_seconds;
    }
    if let (Some(a), Some(b), Some(c)) = (cpu_start, cpu_storm_end, cpu_settled) {
        storm.server_cpu_seconds = b.cpu_seconds - a.cpu_seconds;
        storm.settle_cpu_seconds = c.cpu_seconds - b.cpu_seconds;
    }
    let histogram = || Histogram::<u64>::new_with_bounds(1_000, 120_000_000_000, 3);
    let (Ok(mut during), Ok(mut after), Ok(mut all)) = (histogram(), histogram(), histogram()) else {
        return Err(LoadError::Options("histogram bounds".into()));
    };
    let during_phase = |seq: u64| sent_ns.get(seq as usize).is_some_and(|&ns| ns <= last_ready_ns);
    for (index, client) in seen.iter().enumerate() {
        if index > 0 {
            for (kind, count) in &client.frames {
                *storm.frames_by_type.entry(kind.clone()).or_default() += count;
            }
        }
        let mut received = vec![false; sent_ns.len()];
        let mut last = None;
        for &(seq, latency) in &client.deliveries {
            if last.is_some_and(|l| seq <= l) || (seq as usize) >= received.len() {
                storm.out_of_order += 1;
                continue;
            }
            last = Some(seq);
            received[seq as usize] = true;
            all.saturating_record(latency);
            if during_phase(seq) {
                during.saturating_record(latency);
            } else {
                after.saturating_record(latency);
            }
            if sent_ns[seq as usize] <= settled_ns {
                storm.deliveries_in_storm += 1;
            }
        }
        for (seq, &ns) in sent_ns.iter().enumerate() {
            if ns <= client.ready_ns {
                continue;
            }
            let phase = if ns <= last_ready_ns { &mut storm.during } else { &mut storm.after };
            phase.expected += 1;
            if received[seq] {
                phase.delivered += 1;
            } else {
                phase.lost += 1;
            }
        }
    }
    storm.during.sent = sent_ns.iter().filter(|&&ns| ns <= last_ready_ns).count() as u64;
    storm.after.sent = sent - storm.during.sent;
    storm.during.latency_ms = Latency::of(&during);
    storm.after.latency_ms = Latency::of(&after);
    storm.frames_per_joiner = storm.frames_by_type.values().sum::<u64>() as f64 / storm.joiners.max(1) as f64;
    report.expected = storm.during.expected + storm.after.expected;
    report.delivered = storm.during.delivered + storm.after.delivered;
    report.lost = storm.during.lost + storm.after.lost;
    report.latency_ms = Latency::of(&all);
    report.storm = Some(storm);
    Ok(report)
}

/// Connects client `index` and, for JSON, joins; counts the frames on the way in.
async fn open(args: &Args, index: usize, now_ns: impl Fn() -> u64) -> Result<(Sink, Stream, Seen), String> {
    let mut seen = Seen::default();
    let (sink, stream) = dial::join(args.url_for(index), args.protocol, &args.room, index, |kind| {
        // A message sent before this client was in is neither owed nor join cost.
        if kind != "message" {
            count(&mut seen, kind);
        }
    })
    .await?;
    seen.ready_ns = now_ns();
    Ok((sink, stream, seen))
}

fn count(seen: &mut Seen, kind: &str) {
    match seen.frames.get_mut(kind) {
        Some(count) => *count += 1,
        None => {
            seen.frames.insert(kind.to_owned(), 1);
        }
    }
}

/// Reads until the run ends: the publisher's messages and every other frame.
async fn read(
    mut stream: Stream,
    protocol: Endpoint,
    mut seen: Seen,
    now_ns: impl Fn() -> u64,
    mut stopped: watch::Receiver<bool>,
) -> Seen {
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            // The seed's Node server relays text as binary frames.
            Some(Ok(Message::Binary(bytes))) => match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(bytes) {
                Ok(text) => text,
                Err(_) => continue,
            },
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                seen.disconnected = true;
                break;
            }
        };
        let stamp = match protocol {
            Endpoint::Json => match event_type(&text) {
                "message" => stamp::from_json_event(&text),
                kind => {
                    count(&mut seen, kind);
                    None
                }
            },
            Endpoint::Plain => stamp::decode(&text),
        };
        if let Some(Stamp { seq, sent_ns, .. }) = stamp {
            seen.deliveries.push((seq, now_ns().saturating_sub(sent_ns).max(1_000)));
        }
    }
    seen
}

/// Sends at `--rate` until stopped; returns how many were sent.
async fn publish(
    mut sink: Sink,
    args: Args,
    sent_log: Arc<Mutex<Vec<u64>>>,
    now_ns: impl Fn() -> u64,
    mut stopped: watch::Receiver<bool>,
) -> u64 {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let Ok(room) = RoomName::parse(args.room.clone()) else { return 0 };
    let mut seq = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        let sent_ns = now_ns();
        let text = stamp::encode(Stamp { publisher: 0, seq, sent_ns }, args.payload);
        let Some(frame) = dial::publish_frame(args.protocol, &room, 0, seq, text) else { break };
        sent_log.lock().await.push(sent_ns);
        if sink.send(frame).await.is_err() {
            sent_log.lock().await.pop();
            break;
        }
        seq += 1;
    }
    seq
}
