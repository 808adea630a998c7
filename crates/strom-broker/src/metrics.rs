//! The broker's metrics: a small registry of counters, gauges and fixed-bucket histograms
//! owned by [`crate::state::Broker`], and the Prometheus text format (0.0.4) writer the HTTP
//! endpoint renders them with.
//!
//! Why not a metrics crate: the hot path needs only relaxed atomic adds on instruments it
//! already holds, label sets are small and known (API key, topic), and the exposition
//! format is a few dozen lines. Holding the registry in `Broker` (no global behind a
//! macro) keeps tests that run several brokers in one process honest.
//!
//! Cost on the request path: one histogram observation and one counter add per request
//! (array index by API key, no lock); one read-locked map lookup per produced or fetched
//! topic. Per-topic counters are created on first traffic and dropped when the topic leaves
//! the metadata image ([`Metrics::retain_topics`]), so label cardinality is bounded by the
//! number of topics.
//!
//! Gauges that describe state (log sizes, offsets, lag, partition health) are not kept
//! here: the scrape computes them from the same snapshots the request handlers read
//! (see `http::prometheus`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use parking_lot::RwLock;

/// API keys are indexed directly; Kafka's keys are all below this.
const API_KEY_SLOTS: usize = 128;

/// Request latency bucket upper bounds, in seconds: 0.5 ms to 30 s. Fetch long polls and
/// group rebalances park by design, so the top buckets are wide.
pub const REQUEST_DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, amount: u64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, amount: i64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds one now and subtracts it when the guard drops (also when a future holding it is
    /// cancelled), so the gauge cannot leak.
    pub fn track(self: &Arc<Self>) -> GaugeGuard {
        self.add(1);
        GaugeGuard(self.clone())
    }
}

/// Holds one unit of a [`Gauge`]; see [`Gauge::track`].
pub struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// A histogram with fixed bucket bounds. Observations are counted in the first bucket whose
/// bound is >= the value (non-cumulative here; rendering accumulates). The sum is kept in
/// nanoseconds so it can be an integer atomic.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, plus the +Inf overflow bucket.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A consistent-enough copy of a histogram for rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [f64],
    /// Cumulative counts per bound; the last entry is +Inf and equals `count`.
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "histogram bounds must be strictly increasing"
        );
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let index = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Reads the buckets, then derives the count from them, so the rendered `_count` always
    /// equals the `+Inf` bucket even while observations race the scrape.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0u64;
        let cumulative: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| {
                running += bucket.load(Ordering::Relaxed);
                running
            })
            .collect();
        HistogramSnapshot {
            bounds: self.bounds,
            count: running,
            cumulative,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Traffic counters of one topic.
#[derive(Debug, Default)]
pub struct TopicCounters {
    /// Bytes of record batches appended (retries that were duplicates excluded).
    pub bytes_in: Counter,
    /// Records appended.
    pub messages_in: Counter,
    /// Bytes of record batches sent in fetch responses.
    pub bytes_out: Counter,
}

/// Request count and latency of one API key.
#[derive(Debug)]
pub struct ApiCounters {
    pub requests: Counter,
    pub duration: Histogram,
}

/// Every instrument the broker updates as it works.
pub struct Metrics {
    apis: Box<[ApiCounters]>,
    topics: RwLock<HashMap<String, Arc<TopicCounters>>>,
    /// Open Kafka client connections.
    pub connections: Arc<Gauge>,
    /// Connections closed at accept because `max.connections` was reached.
    pub connections_rejected: Counter,
    /// Fetch requests waiting for data (long poll).
    pub fetch_purgatory: Arc<Gauge>,
    /// Requests slower than `log.slow.request.ms`.
    pub slow_requests: Counter,
    /// Process start, for `strom_process_start_time_seconds` and the console.
    pub started_at_ms: i64,
}

impl Metrics {
    pub fn new(started_at_ms: i64) -> Self {
        Metrics {
            apis: (0..API_KEY_SLOTS)
                .map(|_| ApiCounters {
                    requests: Counter::default(),
                    duration: Histogram::new(REQUEST_DURATION_BUCKETS_SECONDS),
                })
                .collect(),
            topics: RwLock::new(HashMap::new()),
            connections: Arc::new(Gauge::default()),
            connections_rejected: Counter::default(),
            fetch_purgatory: Arc::new(Gauge::default()),
            slow_requests: Counter::default(),
            started_at_ms,
        }
    }

    /// Counts one answered request of `api_key` and its latency. Keys outside Kafka's range
    /// are not counted (they close the connection before any handler runs).
    pub fn observe_request(&self, api_key: i16, duration: Duration) {
        let Some(api) = usize::try_from(api_key)
            .ok()
            .and_then(|index| self.apis.get(index))
        else {
            return;
        };
        api.requests.add(1);
        api.duration.observe(duration);
    }

    /// The counters of `api_key`, if it is in range.
    pub fn api(&self, api_key: i16) -> Option<&ApiCounters> {
        usize::try_from(api_key)
            .ok()
            .and_then(|index| self.apis.get(index))
    }

    /// The counters of `topic`, created on first use.
    pub fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        if let Some(counters) = self.topics.read().get(topic) {
            return counters.clone();
        }
        self.topics
            .write()
            .entry(topic.to_string())
            .or_default()
            .clone()
    }

    /// The counters of `topic` if it has seen traffic.
    pub fn topic_if_seen(&self, topic: &str) -> Option<Arc<TopicCounters>> {
        self.topics.read().get(topic).cloned()
    }

    pub fn record_produce(&self, topic: &str, bytes: u64, records: u64) {
        let counters = self.topic(topic);
        counters.bytes_in.add(bytes);
        counters.messages_in.add(records);
    }

    pub fn record_fetch(&self, topic: &str, bytes: u64) {
        if bytes > 0 {
            self.topic(topic).bytes_out.add(bytes);
        }
    }

    /// Drops the counters of topics for which `keep` is false (deleted topics), bounding
    /// label cardinality. A topic re-created under the same name starts again from zero,
    /// which Prometheus' `rate()` treats as a counter reset.
    pub fn retain_topics(&self, keep: impl Fn(&str) -> bool) {
        let stale = self.topics.read().keys().any(|name| !keep(name));
        if stale {
            self.topics.write().retain(|name, _| keep(name));
        }
    }

    /// Topic counters, sorted by topic name.
    pub fn topic_snapshot(&self) -> Vec<(String, Arc<TopicCounters>)> {
        let mut topics: Vec<(String, Arc<TopicCounters>)> = self
            .topics
            .read()
            .iter()
            .map(|(name, counters)| (name.clone(), counters.clone()))
            .collect();
        topics.sort_by(|a, b| a.0.cmp(&b.0));
        topics
    }

    /// `(api name, counters)` of every API key that has been requested, in key order.
    pub fn api_snapshot(&self) -> Vec<(String, &ApiCounters)> {
        self.apis
            .iter()
            .enumerate()
            .filter(|(_, api)| api.requests.get() > 0)
            .map(|(index, api)| (api_name(index as i16), api))
            .collect()
    }
}

/// Kafka's name of an API key (`Produce`, `ListOffsets`), or `Unknown<key>`.
pub fn api_name(api_key: i16) -> String {
    match ApiKey::try_from(api_key) {
        Ok(key) => format!("{key:?}"),
        Err(()) => format!("Unknown{api_key}"),
    }
}

/// The Prometheus metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// Writes the Prometheus text exposition format, version 0.0.4: one `# HELP` and `# TYPE`
/// per family followed by its samples. Families must be written whole, one after another.
#[derive(Default)]
pub struct TextWriter {
    out: String,
}

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl TextWriter {
    pub fn new() -> Self {
        TextWriter::default()
    }

    pub fn family(&mut self, name: &str, metric_type: MetricType, help: &str) {
        debug_assert!(valid_metric_name(name), "bad metric name {name}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", metric_type.name());
    }

    /// One sample line: `name{label="value",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// A whole histogram series: cumulative `_bucket`s with `le`, then `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], hist: &HistogramSnapshot) {
        let bucket_name = format!("{name}_bucket");
        for (index, cumulative) in hist.cumulative.iter().enumerate() {
            let le = match hist.bounds.get(index) {
                Some(bound) => format_float(*bound),
                None => "+Inf".to_string(),
            };
            self.out.push_str(&bucket_name);
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.sample(&format!("{name}_sum"), labels, hist.sum_seconds);
        self.sample(&format!("{name}_count"), labels, hist.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(out, value);
        out.push('"');
    }
    out.push('}');
}

/// Label values escape backslash, double quote and newline.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes backslash and newline.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn push_value(out: &mut String, value: f64) {
    out.push_str(&format_float(value));
}

/// Go-style float text that Prometheus parses: integers without a fraction, `+Inf`, `NaN`.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_observations_when_snapshotted_should_be_cumulative_with_inf_equal_to_count() {
        let histogram = Histogram::new(&[0.001, 0.01, 0.1]);
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1)); // on the bound: le="0.001"
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_secs(2));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.cumulative, vec![2, 2, 3, 4]);
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum_seconds - 2.0515).abs() < 1e-9);
    }

    #[test]
    fn given_label_values_with_quotes_when_rendered_should_escape() {
        let mut writer = TextWriter::new();
        writer.family(
            "strom_test_total",
            MetricType::Counter,
            "A test.\nSecond line",
        );
        writer.sample("strom_test_total", &[("topic", "a\"b\\c\nd")], 3.0);
        let text = writer.finish();
        assert_eq!(
            text,
            "# HELP strom_test_total A test.\\nSecond line\n# TYPE strom_test_total counter\nstrom_test_total{topic=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn given_histogram_when_rendered_should_end_with_inf_sum_and_count() {
        let histogram = Histogram::new(&[0.5]);
        histogram.observe(Duration::from_millis(250));
        let mut writer = TextWriter::new();
        writer.family("strom_x_seconds", MetricType::Histogram, "x");
        writer.histogram(
            "strom_x_seconds",
            &[("api", "Fetch")],
            &histogram.snapshot(),
        );
        let text = writer.finish();
        assert!(text.contains("strom_x_seconds_bucket{api=\"Fetch\",le=\"0.5\"} 1\n"));
        assert!(text.contains("strom_x_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("strom_x_seconds_sum{api=\"Fetch\"} 0.25\n"));
        assert!(text.contains("strom_x_seconds_count{api=\"Fetch\"} 1\n"));
    }

    #[test]
    fn given_requests_when_observed_should_count_per_api_and_ignore_out_of_range_keys() {
        let metrics = Metrics::new(0);
        metrics.observe_request(0, Duration::from_millis(1));
        metrics.observe_request(0, Duration::from_millis(1));
        metrics.observe_request(-1, Duration::from_millis(1));
        metrics.observe_request(i16::MAX, Duration::from_millis(1));
        let apis = metrics.api_snapshot();
        assert_eq!(apis.len(), 1);
        assert_eq!(apis[0].0, "Produce");
        assert_eq!(apis[0].1.requests.get(), 2);
    }

    #[test]
    fn given_deleted_topic_when_retained_should_drop_its_counters() {
        let metrics = Metrics::new(0);
        metrics.record_produce("keep", 100, 2);
        metrics.record_produce("gone", 10, 1);
        metrics.retain_topics(|name| name == "keep");
        let topics = metrics.topic_snapshot();
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].1.messages_in.get(), 2);
    }

    #[test]
    fn given_guard_when_dropped_should_restore_gauge() {
        let metrics = Metrics::new(0);
        {
            let _one = metrics.fetch_purgatory.track();
            let _two = metrics.fetch_purgatory.track();
            assert_eq!(metrics.fetch_purgatory.get(), 2);
        }
        assert_eq!(metrics.fetch_purgatory.get(), 0);
    }
}
