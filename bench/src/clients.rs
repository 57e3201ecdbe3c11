//! Connecting, publishing and receiving: one task per client reads, one task
//! per publisher writes, and every delivery's latency goes into a shared
//! HdrHistogram (through small per-client buffers, to keep the lock cold).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_shared::RoomName;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use chat_shared::Endpoint;

use crate::args::Args;
use crate::dial::{Sink, Stream, publish_frame};
use crate::procstat::ProcSample;
use crate::report::Report;
use crate::stamp::{self, Stamp};

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Options that cannot work together.
    #[error("{0}")]
    Options(String),
    /// No client could connect.
    #[error("no client connected (first error: {0})")]
    NoConnections(String),
}

/// What the readers share.
struct Shared {
    start: Instant,
    histogram: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    last_delivery_ns: AtomicU64,
    disconnects: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Runs the configured load and reports.
pub async fn run(args: &Args) -> Result<Report, LoadError> {
    if args.publishers > args.clients {
        return Err(LoadError::Options("--publishers cannot exceed --clients".into()));
    }
    if args.rooms > 1 && args.protocol == Endpoint::Plain {
        return Err(LoadError::Options("--rooms needs --protocol json (plain clients all hear each other)".into()));
    }
    let histogram =
        Histogram::new_with_bounds(1_000, 60_000_000_000, 3).map_err(|e| LoadError::Options(e.to_string()))?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        histogram: Mutex::new(histogram),
        delivered: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        disconnects: AtomicU64::new(0),
    });
    let mut report = Report::new(args);
    let before_connect = args.sample_servers();

    let connect_started = Instant::now();
    let (sockets, connect_errors) = connect_all(args).await;
    report.connect_seconds = connect_started.elapsed().as_secs_f64();
    report.connected = sockets.len();
    report.connect_errors = connect_errors.len();
    if sockets.is_empty() {
        return Err(LoadError::NoConnections(connect_errors.into_iter().next().unwrap_or_default()));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    if let (Some(before), Some(after)) = (before_connect, args.sample_servers()) {
        report.server_rss_before = before.rss_bytes;
        report.server_rss_connected = after.rss_bytes;
    }
    if args.idle {
        // Hold the connections quietly for --duration and see what they cost the server.
        let before = args.sample_servers();
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        if let (Some(a), Some(b)) = (before, args.sample_servers()) {
            report.server_cpu_seconds = b.cpu_seconds - a.cpu_seconds;
            report.seconds = args.duration;
        }
        drop(sockets);
        return Ok(report);
    }

    // Who hears whom: each room's members, by the room's name.
    let mut members: HashMap<String, u64> = HashMap::new();
    for (index, _) in &sockets {
        *members.entry(args.room_for(*index)).or_default() += 1;
    }
    // Readers first, so nothing is missed; publishers' readers release their window.
    let windows: Vec<Arc<Semaphore>> =
        (0..args.publishers).map(|_| Arc::new(Semaphore::new(args.window.max(1)))).collect();
    let (stop, stopped) = watch::channel(false);
    let mut sinks = Vec::with_capacity(args.publishers);
    let mut readers = Vec::with_capacity(sockets.len());
    for (index, (sink, stream)) in sockets {
        let publishes = index < args.publishers;
        let own = publishes.then(|| (index as u32, windows[index].clone()));
        if publishes {
            sinks.push((index, sink));
        } else {
            // Receivers never write; keep the sink alive so the socket stays open.
            readers.push(tokio::spawn(hold(sink, stopped.clone())));
        }
        readers.push(tokio::spawn(read(stream, args.protocol, own, shared.clone(), stopped.clone())));
    }

    let flood = (args.login_flood > 0.0).then(|| {
        let host = crate::login_flood::host_of(args.url_for(0)).unwrap_or_default();
        tokio::spawn(crate::login_flood::run(host, args.login_flood, stopped.clone()))
    });
    let cpu_before = args.sample_servers();
    let publish_started = shared.now_ns();
    let tasks: Vec<_> = sinks
        .into_iter()
        .map(|(index, sink)| {
            let task = tokio::spawn(publish(index as u32, sink, args.clone(), windows[index].clone(), shared.clone()));
            (index, task)
        })
        .collect();
    let (mut sent, mut expected) = (0, 0);
    for (index, task) in tasks {
        let count = task.await.unwrap_or(0);
        sent += count;
        // Every member of its room hears it, the publisher included.
        expected += count * members.get(&args.room_for(index)).copied().unwrap_or(0);
    }
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.settle.max(0.5) * 2.0);
    while shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_after = args.sample_servers();
    let _ = stop.send(true);
    for reader in readers {
        let _ = reader.await;
    }
    if let Some(flood) = flood {
        report.login_flood = flood.await.ok();
    }

    let delivered = shared.delivered.load(Ordering::Relaxed);
    let busy_ns = shared.last_delivery_ns.load(Ordering::Relaxed).saturating_sub(publish_started).max(1);
    report.sent = sent;
    report.expected = expected;
    report.delivered = delivered;
    report.lost = expected.saturating_sub(delivered);
    report.disconnects = shared.disconnects.load(Ordering::Relaxed);
    report.seconds = busy_ns as f64 / 1e9;
    report.deliveries_per_second = delivered as f64 / report.seconds;
    if let (Some(ProcSample { cpu_seconds: a, .. }), Some(ProcSample { cpu_seconds: b, .. })) = (cpu_before, cpu_after)
    {
        report.server_cpu_seconds = b - a;
        report.deliveries_per_cpu_second = if b > a { delivered as f64 / (b - a) } else { 0.0 };
    }
    report.latency_ms = crate::report::Latency::of(&*shared.histogram.lock().await);
    Ok(report)
}

/// Opens every client, at most `connect_concurrency` at a time; each
/// socket comes with its client's index.
async fn connect_all(args: &Args) -> (Vec<(usize, (Sink, Stream))>, Vec<String>) {
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let tasks: Vec<_> = (0..args.clients)
        .map(|index| {
            let (gate, args) = (gate.clone(), args.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
                connect(&args, index).await.map(|socket| (index, socket))
            })
        })
        .collect();
    let (mut sockets, mut errors) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await {
            Ok(Ok(socket)) => sockets.push(socket),
            Ok(Err(error)) => errors.push(error),
            Err(error) => errors.push(error.to_string()),
        }
    }
    (sockets, errors)
}

/// One client: connected, and for JSON joined to the room.
async fn connect(args: &Args, index: usize) -> Result<(Sink, Stream), String> {
    crate::dial::join(args.url_for(index), args.protocol, &args.room_for(index), index, |_| {}).await
}

/// Keeps a receiver's write half open until the run ends.
async fn hold(sink: Sink, mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
    drop(sink);
}

/// Reads deliveries, recording latency; releases the publisher's window on its own echoes.
async fn read(
    mut stream: Stream,
    protocol: Endpoint,
    own: Option<(u32, Arc<Semaphore>)>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut samples: Vec<u64> = Vec::with_capacity(256);
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let stamp = match frame {
            Some(Ok(Message::Text(text))) => match protocol {
                Endpoint::Json => stamp::from_json_event(&text),
                Endpoint::Plain => stamp::decode(&text),
            },
            Some(Ok(Message::Binary(bytes))) => std::str::from_utf8(&bytes).ok().and_then(stamp::decode),
            Some(Ok(_)) => None,
            Some(Err(_)) | None => {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        let Some(Stamp { publisher, sent_ns, .. }) = stamp else { continue };
        let now = shared.now_ns();
        samples.push(now.saturating_sub(sent_ns).max(1_000));
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        shared.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
        if let Some((me, window)) = &own
            && *me == publisher
        {
            window.add_permits(1);
        }
        if samples.len() == samples.capacity() {
            flush(&shared, &mut samples).await;
        }
    }
    flush(&shared, &mut samples).await;
}

async fn flush(shared: &Shared, samples: &mut Vec<u64>) {
    let mut histogram = shared.histogram.lock().await;
    for sample in samples.drain(..) {
        histogram.saturating_record(sample);
    }
}

/// Publishes at the fixed rate, or closed-loop within the window; returns how many were sent.
async fn publish(index: u32, mut sink: Sink, args: Args, window: Arc<Semaphore>, shared: Arc<Shared>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let mut ticker = (args.rate > 0.0).then(|| {
        // Publishers tick out of phase, spread evenly over one period: in step,
        // they would send in bursts (10 publishers × 1,000 clients = 10,000
        // frames at once) and measure the burst, not a steady rate.
        let period = Duration::from_secs_f64(1.0 / args.rate);
        let phase = period.mul_f64(f64::from(index) / args.publishers.max(1) as f64);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    let room = RoomName::parse(args.room_for(index as usize)).ok();
    let mut seq = 0;
    while Instant::now() < deadline && (args.messages == 0 || seq < args.messages) {
        match &mut ticker {
            Some(ticker) => {
                ticker.tick().await;
            }
            None => match tokio::time::timeout_at(deadline.into(), window.acquire()).await {
                Ok(Ok(permit)) => permit.forget(),
                _ => break,
            },
        }
        let text = stamp::encode(Stamp { publisher: index, seq, sent_ns: shared.now_ns() }, args.payload);
        let Some(frame) = room.as_ref().and_then(|room| publish_frame(args.protocol, room, index, seq, text)) else {
            break;
        };
        if sink.send(frame).await.is_err() {
            break;
        }
        seq += 1;
    }
    seq
}
