//! A flood of wrong-password sign-ins beside the load (`--login-flood N`):
//! N `POST /api/login` a second, open loop (a slow answer does not slow the
//! flood), each from another address (`X-Forwarded-For`, so run the server
//! with `--trusted-proxy 127.0.0.1/32`: per-address limits never kick in) and
//! for another unknown account (so per-account limits never kick in either):
//! every attempt costs the server a password hash, which is what the flood
//! is meant to cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

/// Attempts in flight at most; past it, attempts are counted as not sent.
const MAX_IN_FLIGHT: usize = 1024;

/// How one attempt may take at most before it counts as timed out.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the flood did, by the server's answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FloodReport {
    /// Attempts per second asked for.
    pub rate: f64,
    /// Attempts made.
    pub attempts: u64,
    /// `401`: the password was checked (a hash computed).
    pub refused_after_hashing: u64,
    /// `503`: the hashing queue was full.
    pub busy: u64,
    /// `429`: a guessing limit.
    pub rate_limited: u64,
    /// Anything else: other statuses, errors, timeouts, attempts not sent.
    pub other: u64,
    /// Mean time to an answer, ms.
    pub mean_answer_ms: f64,
}

impl FloodReport {
    /// A line for a terminal.
    pub fn human(&self) -> String {
        format!(
            "login flood {:.0}/s: {} attempts, {} checked (401), {} busy (503), {} limited (429), {} other; mean answer {:.1} ms\n",
            self.rate,
            self.attempts,
            self.refused_after_hashing,
            self.busy,
            self.rate_limited,
            self.other,
            self.mean_answer_ms
        )
    }
}

#[derive(Default)]
struct Counts {
    attempts: AtomicU64,
    refused: AtomicU64,
    busy: AtomicU64,
    limited: AtomicU64,
    other: AtomicU64,
    answer_us: AtomicU64,
    answered: AtomicU64,
}

/// Floods `host` (`ip:port`) at `rate` attempts a second until `stop` says so.
pub async fn run(host: String, rate: f64, mut stop: watch::Receiver<bool>) -> FloodReport {
    let counts = Arc::new(Counts::default());
    let gate = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut attempt = 0_u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        attempt += 1;
        counts.attempts.fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            counts.other.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let (host, counts) = (host.clone(), counts.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let status = tokio::time::timeout(ATTEMPT_TIMEOUT, sign_in(&host, attempt)).await.ok().flatten();
            let counter = match status {
                Some(401) => &counts.refused,
                Some(503) => &counts.busy,
                Some(429) => &counts.limited,
                _ => &counts.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if status.is_some() {
                counts.answered.fetch_add(1, Ordering::Relaxed);
                counts.answer_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    // The attempts under way finish (or time out).
    let _ = tokio::time::timeout(ATTEMPT_TIMEOUT, gate.acquire_many(MAX_IN_FLIGHT as u32)).await;
    let answered = counts.answered.load(Ordering::Relaxed).max(1);
    FloodReport {
        rate,
        attempts: counts.attempts.load(Ordering::Relaxed),
        refused_after_hashing: counts.refused.load(Ordering::Relaxed),
        busy: counts.busy.load(Ordering::Relaxed),
        rate_limited: counts.limited.load(Ordering::Relaxed),
        other: counts.other.load(Ordering::Relaxed),
        mean_answer_ms: counts.answer_us.load(Ordering::Relaxed) as f64 / answered as f64 / 1000.0,
    }
}

/// One wrong-password sign-in; the answer's status.
async fn sign_in(host: &str, attempt: u64) -> Option<u16> {
    let body = format!(r#"{{"username":"flood-{attempt}","password":"not the password {attempt}"}}"#);
    // 10.0.0.0/8, one address per attempt.
    let address = format!("10.{}.{}.{}", (attempt >> 16) & 255, (attempt >> 8) & 255, attempt & 255);
    let request = format!(
        "POST /api/login HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-forwarded-for: {address}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(host).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).await.ok()?;
    // "HTTP/1.1 401"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The `ip:port` of a socket URL (`ws://127.0.0.1:8080/ws`).
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    Some(rest.split('/').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_of_a_socket_url() {
        assert_eq!(super::host_of("ws://127.0.0.1:8080/ws").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(super::host_of("ws://[::1]:9/").as_deref(), Some("[::1]:9"));
        assert_eq!(super::host_of("nonsense"), None);
    }
}
