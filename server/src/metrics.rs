//! Prometheus metrics: what the server is doing, for `GET /metrics`.
//!
//! Sessions resolve their labelled counters once ([`Metrics::endpoint`]), so
//! the per-frame cost is an atomic add.

use std::sync::Arc;
use std::time::Instant;

use chat_shared::Endpoint;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum RefusalReason {
    /// The page's origin is not allowed.
    Origin,
    /// Too many sockets from one address.
    IpLimit,
    /// Too many sockets in all.
    ServerFull,
    /// The handshake itself was invalid.
    Handshake,
    /// A guest's, where guests are not admitted (`--guests off`).
    Guests,
}

/// A store operation, for latency.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum StoreOperation {
    /// Storing a message.
    Append,
    /// Reading history.
    Read,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    /// [`Endpoint::name`].
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: RefusalReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: StoreOperation,
}

/// All metrics of the process; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    open_connections: Family<EndpointLabel, Gauge>,
    messages_in: Family<EndpointLabel, Counter>,
    messages_out: Family<EndpointLabel, Counter>,
    bytes_out: Family<EndpointLabel, Counter>,
    upgrades_refused: Family<ReasonLabel, Counter>,
    store_latency: Family<OperationLabel, Histogram>,
    /// Clients dropped for not reading: their outbound queue overflowed, or a
    /// write to them waited past its deadline.
    pub slow_consumer_closes: Counter,
    /// Standings read from the database (joins, posts and room changes the cache could not answer).
    pub standing_reads: Counter,
    /// Frames dropped by the per-connection rate limit.
    pub rate_limited_frames: Counter,
    /// Times a Redis bus (re)subscribed after connecting.
    pub bus_reconnects: Counter,
    /// Gaps in a room's messages read from the store (pub/sub lost them).
    pub bus_gap_reads: Counter,
    /// Message ids skipped because the store did not have them either.
    pub bus_skipped_ids: Counter,
    /// Messages not published because Redis was away too long.
    pub bus_publishes_dropped: Counter,
    /// From a message's acceptance on its node to its delivery here.
    bus_lag: Histogram,
    /// What the node holds in memory until something else happens; each
    /// drains to zero once the cluster is healthy and quiet (the fault run
    /// asserts it), and each has a bound (README, Bounds).
    pub held: HeldGauges,
}

/// Gauges of what a node holds waiting: messages ahead of a missing id,
/// events waiting to be published, messages waiting for the store, and
/// committed messages whose author waits for their delivery.
#[derive(Clone, Default)]
pub struct HeldGauges {
    /// Messages the bus holds ahead of a missing id (all rooms).
    pub bus_ahead: Gauge,
    /// Room events waiting to be published to Redis.
    pub bus_unpublished: Gauge,
    /// Messages accepted from clients, not yet committed.
    pub store_waiting: Gauge,
    /// Committed messages not yet delivered back (their authors wait for the ack).
    pub awaited_acks: Gauge,
}

/// One owner's share of a gauge several owners add to (each shard, each
/// bus): it adds the change whenever its own count is reported, and takes
/// its share back when dropped.
pub struct GaugeShare {
    gauge: Gauge,
    reported: i64,
}

impl GaugeShare {
    /// A share of `gauge`, counting nothing yet.
    pub fn of(gauge: &Gauge) -> Self {
        Self { gauge: gauge.clone(), reported: 0 }
    }

    /// This owner now holds `count`.
    pub fn report(&mut self, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        if count != self.reported {
            self.gauge.inc_by(count - self.reported);
            self.reported = count;
        }
    }
}

impl Drop for GaugeShare {
    fn drop(&mut self) {
        self.gauge.dec_by(self.reported);
    }
}

/// The counters of one endpoint, resolved once per session.
#[derive(Clone)]
pub struct EndpointMetrics {
    /// Open sockets.
    pub open_connections: Gauge,
    /// Data frames received.
    pub messages_in: Counter,
    /// Data frames written.
    pub messages_out: Counter,
    /// Payload bytes written.
    pub bytes_out: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("chat");
        let metrics = Self {
            registry: Arc::default(),
            open_connections: Family::default(),
            messages_in: Family::default(),
            messages_out: Family::default(),
            bytes_out: Family::default(),
            upgrades_refused: Family::default(),
            store_latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16))),
            slow_consumer_closes: Counter::default(),
            standing_reads: Counter::default(),
            rate_limited_frames: Counter::default(),
            bus_reconnects: Counter::default(),
            bus_gap_reads: Counter::default(),
            bus_skipped_ids: Counter::default(),
            bus_publishes_dropped: Counter::default(),
            bus_lag: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            held: HeldGauges::default(),
        };
        registry.register("open_connections", "Open WebSocket connections", metrics.open_connections.clone());
        registry.register("messages_in", "Data frames received from clients", metrics.messages_in.clone());
        registry.register("messages_out", "Data frames written to clients", metrics.messages_out.clone());
        registry.register("bytes_out", "Payload bytes written to clients", metrics.bytes_out.clone());
        registry.register("upgrades_refused", "WebSocket upgrades refused", metrics.upgrades_refused.clone());
        registry.register(
            "standing_reads",
            "Rooms' standings (may this caller enter, post) read from the database",
            metrics.standing_reads.clone(),
        );
        registry.register(
            "slow_consumer_closes",
            "Clients dropped for falling behind (queue overflow or a write past its deadline)",
            metrics.slow_consumer_closes.clone(),
        );
        registry.register(
            "rate_limited_frames",
            "Frames dropped by the rate limit",
            metrics.rate_limited_frames.clone(),
        );
        registry.register("store_latency_seconds", "History store latency", metrics.store_latency.clone());
        registry.register("bus_reconnects", "Redis bus subscriptions (re)established", metrics.bus_reconnects.clone());
        registry.register("bus_gap_reads", "Gaps in room messages read from the store", metrics.bus_gap_reads.clone());
        registry.register("bus_skipped_ids", "Message ids neither heard nor stored", metrics.bus_skipped_ids.clone());
        registry.register(
            "bus_publishes_dropped",
            "Messages not published while Redis was away",
            metrics.bus_publishes_dropped.clone(),
        );
        registry.register(
            "bus_lag_seconds",
            "From a message's acceptance on another node to its delivery here",
            metrics.bus_lag.clone(),
        );
        let held = &metrics.held;
        registry.register("bus_held_ahead", "Messages held ahead of a missing id", held.bus_ahead.clone());
        registry.register("bus_unpublished", "Room events waiting to be published", held.bus_unpublished.clone());
        registry.register("store_waiting", "Messages accepted, not yet committed", held.store_waiting.clone());
        registry.register(
            "awaited_acks",
            "Committed messages not yet delivered back to their authors",
            held.awaited_acks.clone(),
        );
        // Every label value from the start: a family prints nothing until a
        // value exists, and a dashboard should see zeros, not gaps.
        for endpoint in Endpoint::ALL {
            metrics.endpoint(endpoint);
        }
        for reason in [
            RefusalReason::Origin,
            RefusalReason::IpLimit,
            RefusalReason::ServerFull,
            RefusalReason::Handshake,
            RefusalReason::Guests,
        ] {
            drop(metrics.upgrades_refused.get_or_create(&ReasonLabel { reason }));
        }
        for operation in [StoreOperation::Append, StoreOperation::Read] {
            drop(metrics.store_latency.get_or_create(&OperationLabel { operation }));
        }
        Self { registry: Arc::new(registry), ..metrics }
    }

    /// The counters of `endpoint`.
    pub fn endpoint(&self, endpoint: Endpoint) -> EndpointMetrics {
        let label = EndpointLabel { endpoint: endpoint.name() };
        EndpointMetrics {
            open_connections: self.open_connections.get_or_create(&label).clone(),
            messages_in: self.messages_in.get_or_create(&label).clone(),
            messages_out: self.messages_out.get_or_create(&label).clone(),
            bytes_out: self.bytes_out.get_or_create(&label).clone(),
        }
    }

    /// Counts a refused upgrade.
    pub fn refused(&self, reason: RefusalReason) {
        self.upgrades_refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Records how long a store operation took.
    pub fn observe_store(&self, operation: StoreOperation, started: Instant) {
        self.store_latency.get_or_create(&OperationLabel { operation }).observe(started.elapsed().as_secs_f64());
    }

    /// Records how long a message took from its node to this one.
    pub fn observe_bus_lag(&self, lag: std::time::Duration) {
        self.bus_lag.observe(lag.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::new();
        metrics.endpoint(Endpoint::Json).messages_in.inc();
        metrics.refused(RefusalReason::Origin);
        metrics.observe_store(StoreOperation::Append, Instant::now());
        let text = metrics.render();
        assert!(text.contains("chat_messages_in_total{endpoint=\"json\"} 1"), "{text}");
        assert!(text.contains("chat_upgrades_refused_total{reason=\"Origin\"} 1"), "{text}");
        assert!(text.contains("chat_store_latency_seconds_count{operation=\"Append\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn every_series_exists_before_any_traffic() {
        let text = Metrics::new().render();
        for series in [
            "chat_open_connections{endpoint=\"json\"} 0",
            "chat_open_connections{endpoint=\"plain\"} 0",
            "chat_messages_in_total{endpoint=\"plain\"} 0",
            "chat_bytes_out_total{endpoint=\"json\"} 0",
            "chat_upgrades_refused_total{reason=\"IpLimit\"} 0",
            "chat_upgrades_refused_total{reason=\"ServerFull\"} 0",
            "chat_store_latency_seconds_count{operation=\"Read\"} 0",
            "chat_bus_held_ahead 0",
            "chat_bus_unpublished 0",
            "chat_store_waiting 0",
            "chat_awaited_acks 0",
        ] {
            assert!(text.contains(series), "missing {series} in\n{text}");
        }
    }

    #[test]
    fn shares_of_a_gauge_add_up_and_a_dropped_share_takes_its_part_back() {
        let metrics = Metrics::new();
        let mut one = GaugeShare::of(&metrics.held.store_waiting);
        let mut two = GaugeShare::of(&metrics.held.store_waiting);
        one.report(5);
        two.report(3);
        one.report(2);
        assert_eq!(metrics.held.store_waiting.get(), 5);
        drop(two);
        assert_eq!(metrics.held.store_waiting.get(), 2);
        assert!(metrics.render().contains("chat_store_waiting 2"));
    }
}
