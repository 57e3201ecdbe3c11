//! The result of one run: printed for people, saved as JSON for the chart.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::args::Args;
use crate::storm::StormReport;

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// The percentiles of a histogram of nanoseconds (all zero if it is empty).
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

/// Everything measured in one run (fields as printed by [`Report::human`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Report {
    pub label: String,
    pub url: String,
    pub protocol: String,
    pub clients: usize,
    pub publishers: usize,
    pub rate: f64,
    pub payload: usize,
    pub connected: usize,
    pub connect_errors: usize,
    pub connect_seconds: f64,
    pub disconnects: u64,
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub seconds: f64,
    pub deliveries_per_second: f64,
    pub server_cpu_seconds: f64,
    pub deliveries_per_cpu_second: f64,
    pub server_rss_before: u64,
    pub server_rss_connected: u64,
    pub latency_ms: Latency,
    /// The login flood beside the load (`--login-flood` runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_flood: Option<crate::login_flood::FloodReport>,
    /// The reconnect storm's own figures (`--storm` runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormReport>,
}

impl Report {
    /// An empty report for these options.
    pub fn new(args: &Args) -> Self {
        Self {
            label: args.label.clone(),
            url: args.urls.join(" "),
            protocol: args.protocol.name().into(),
            clients: args.clients,
            publishers: args.publishers,
            rate: args.rate,
            payload: args.payload,
            ..Self::default()
        }
    }

    /// Server memory per connected client, in bytes.
    pub fn bytes_per_connection(&self) -> f64 {
        if self.connected == 0 {
            return 0.0;
        }
        self.server_rss_connected.saturating_sub(self.server_rss_before) as f64 / self.connected as f64
    }

    /// A few lines for a terminal.
    pub fn human(&self) -> String {
        let l = &self.latency_ms;
        let mut out = format!(
            "{label}{url} [{protocol}] clients {connected}/{clients} (connect errors {errors}, {cs:.1}s to connect), disconnects {disc}\n",
            label = if self.label.is_empty() { String::new() } else { format!("{}: ", self.label) },
            url = self.url,
            protocol = self.protocol,
            connected = self.connected,
            clients = self.clients,
            errors = self.connect_errors,
            cs = self.connect_seconds,
            disc = self.disconnects,
        );
        if self.server_rss_connected > 0 {
            out += &format!(
                "server RSS {:.1} MiB -> {:.1} MiB: {:.0} bytes per connection\n",
                self.server_rss_before as f64 / 1048576.0,
                self.server_rss_connected as f64 / 1048576.0,
                self.bytes_per_connection()
            );
        }
        if self.sent == 0 && self.seconds > 0.0 {
            out += &format!(
                "server CPU while idle: {:.2}s over {:.0}s ({:.1}% of a core)\n",
                self.server_cpu_seconds,
                self.seconds,
                100.0 * self.server_cpu_seconds / self.seconds
            );
        }
        if self.sent > 0 {
            out += &format!(
                "sent {} ({} publishers), delivered {}/{} (lost {}) in {:.2}s: {:.0} deliveries/s\n\
                 latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
                self.sent,
                self.publishers,
                self.delivered,
                self.expected,
                self.lost,
                self.seconds,
                self.deliveries_per_second,
                l.p50,
                l.p90,
                l.p99,
                l.p999,
                l.max
            );
            if self.server_cpu_seconds > 0.0 {
                out += &format!(
                    "server CPU {:.2}s: {:.0} deliveries per CPU-second\n",
                    self.server_cpu_seconds, self.deliveries_per_cpu_second
                );
            }
        }
        if let Some(flood) = &self.login_flood {
            out += &flood.human();
        }
        if let Some(storm) = &self.storm {
            out += &storm.human();
        }
        out
    }
}
