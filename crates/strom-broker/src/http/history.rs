//! The console's short memory: what the broker's counters did over the last 15 minutes,
//! sampled every [`SAMPLE_INTERVAL_MS`] into a ring of [`POINTS_MAX`] points.
//!
//! Pure code: a [`Reading`] (cumulative counters, histogram buckets, lag and partition
//! health at one instant, with its time) goes in, a [`Point`] (rates and the p99 latency of
//! the interval since the previous reading) is kept. Nothing here reads a clock or the
//! broker; `history_api` takes the readings and serves the JSON.
//!
//! Memory is bounded: at most [`POINTS_MAX`] points, each holding at most
//! [`TOPICS_PER_POINT_MAX`] topics (the busiest of the interval), at most
//! [`LAG_GROUPS_MAX`] groups (the most lagging) with at most [`LAG_PARTITIONS_MAX`]
//! partitions each, and one p99 per API key that saw requests.

use std::collections::{HashMap, VecDeque};

use crate::metrics::HistogramSnapshot;

/// Time between two kept points.
pub const SAMPLE_INTERVAL_MS: i64 = 10_000;
/// Points kept: 15 minutes at one per 10 s.
pub const POINTS_MAX: usize = 90;
/// Topics with traffic kept per point (the busiest by bytes in + out).
pub const TOPICS_PER_POINT_MAX: usize = 100;
/// Consumer groups kept per point (the most lagging by total lag).
pub const LAG_GROUPS_MAX: usize = 20;
/// Partitions kept per lagging group (the most lagging).
pub const LAG_PARTITIONS_MAX: usize = 16;

/// Cumulative traffic counters of one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicTotals {
    pub bytes_in: u64,
    pub messages_in: u64,
    pub bytes_out: u64,
}

/// The lag of one committed offset behind its partition's high watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// What the broker's instruments said at one instant.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub at_ms: i64,
    /// Cumulative counters per topic.
    pub topics: Vec<(String, TopicTotals)>,
    /// Request latency histogram per API name (cumulative since start).
    pub apis: Vec<(String, HistogramSnapshot)>,
    pub lag: Vec<PartitionLag>,
    pub under_replicated_partitions: u32,
    pub offline_partitions: u32,
}

/// Rates of one topic (or of all topics) over one interval, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub bytes_in: f64,
    pub messages_in: f64,
    pub bytes_out: f64,
}

impl Rates {
    fn add(&mut self, other: &Rates) {
        self.bytes_in += other.bytes_in;
        self.messages_in += other.messages_in;
        self.bytes_out += other.bytes_out;
    }
}

/// Lag of one group at the end of an interval: its total and its most lagging partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLag {
    pub group: String,
    pub total: i64,
    /// `(topic, partition, lag)`, most lagging first, at most [`LAG_PARTITIONS_MAX`].
    pub partitions: Vec<(String, i32, i64)>,
}

/// One interval of history, ending at `at_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at_ms: i64,
    pub interval_ms: i64,
    /// All topics together (including those not kept in `topics`).
    pub total: Rates,
    /// The busiest topics of the interval; a topic absent here had no traffic, unless
    /// `topics_cut` is true.
    pub topics: Vec<(String, Rates)>,
    /// More topics had traffic than [`TOPICS_PER_POINT_MAX`].
    pub topics_cut: bool,
    /// p99 request latency of the interval in milliseconds, per API that saw requests.
    pub request_p99_ms: Vec<(String, f64)>,
    /// The most lagging groups, most lagging first.
    pub lag: Vec<GroupLag>,
    pub under_replicated_partitions: u32,
    pub offline_partitions: u32,
}

/// The ring of points and the reading the next point is measured from.
#[derive(Debug)]
pub struct History {
    points: VecDeque<Point>,
    baseline: Option<Reading>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    pub fn new() -> Self {
        History {
            points: VecDeque::with_capacity(POINTS_MAX),
            baseline: None,
        }
    }

    /// Keeps the point from the previous reading to `reading` (the first reading only
    /// becomes the baseline). A reading not later than the baseline is ignored.
    pub fn record(&mut self, reading: Reading) {
        if let Some(point) = self.preview(&reading) {
            if self.points.len() == POINTS_MAX {
                self.points.pop_front();
            }
            self.points.push_back(point);
        } else if self
            .baseline
            .as_ref()
            .is_some_and(|baseline| reading.at_ms <= baseline.at_ms)
        {
            return;
        }
        self.baseline = Some(reading);
        debug_assert!(self.points.len() <= POINTS_MAX);
    }

    /// The point `reading` would make, without keeping it (the console's "now" point
    /// between two samples). `None` before the first reading or when no time has passed.
    pub fn preview(&self, reading: &Reading) -> Option<Point> {
        let baseline = self.baseline.as_ref()?;
        let interval_ms = reading.at_ms - baseline.at_ms;
        if interval_ms <= 0 {
            return None;
        }
        Some(point_between(baseline, reading, interval_ms))
    }

    /// Kept points, oldest first.
    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }

    /// When the last reading was taken.
    pub fn baseline_at_ms(&self) -> Option<i64> {
        self.baseline.as_ref().map(|reading| reading.at_ms)
    }
}

fn point_between(before: &Reading, after: &Reading, interval_ms: i64) -> Point {
    let seconds = interval_ms as f64 / 1000.0;
    let earlier: HashMap<&str, &TopicTotals> = before
        .topics
        .iter()
        .map(|(name, totals)| (name.as_str(), totals))
        .collect();
    let mut total = Rates::default();
    let mut topics: Vec<(String, Rates)> = Vec::new();
    for (name, now) in &after.topics {
        let was = earlier
            .get(name.as_str())
            .copied()
            .copied()
            .unwrap_or_default();
        let rates = Rates {
            bytes_in: increase(was.bytes_in, now.bytes_in) as f64 / seconds,
            messages_in: increase(was.messages_in, now.messages_in) as f64 / seconds,
            bytes_out: increase(was.bytes_out, now.bytes_out) as f64 / seconds,
        };
        total.add(&rates);
        if rates != Rates::default() {
            topics.push((name.clone(), rates));
        }
    }
    let topics_cut = topics.len() > TOPICS_PER_POINT_MAX;
    if topics_cut {
        topics.sort_by(|a, b| {
            let busy = |r: &Rates| r.bytes_in + r.bytes_out;
            busy(&b.1)
                .total_cmp(&busy(&a.1))
                .then_with(|| a.0.cmp(&b.0))
        });
        topics.truncate(TOPICS_PER_POINT_MAX);
    }
    topics.sort_by(|a, b| a.0.cmp(&b.0));

    let earlier_apis: HashMap<&str, &HistogramSnapshot> = before
        .apis
        .iter()
        .map(|(name, histogram)| (name.as_str(), histogram))
        .collect();
    let request_p99_ms = after
        .apis
        .iter()
        .filter_map(|(name, now)| {
            let p99 = quantile_between(earlier_apis.get(name.as_str()).copied(), now, 0.99)?;
            Some((name.clone(), p99 * 1000.0))
        })
        .collect();

    Point {
        at_ms: after.at_ms,
        interval_ms,
        total,
        topics,
        topics_cut,
        request_p99_ms,
        lag: top_lag(&after.lag),
        under_replicated_partitions: after.under_replicated_partitions,
        offline_partitions: after.offline_partitions,
    }
}

/// How much a counter grew; a counter that went down was reset (a topic deleted and
/// created again), so all of its value is new.
fn increase(before: u64, after: u64) -> u64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

/// The `q` quantile (in seconds) of the observations made between two snapshots of one
/// histogram, interpolated linearly inside the bucket it falls in (as Prometheus'
/// `histogram_quantile` does). Observations above the last bound count as the last bound.
/// `None` when nothing was observed in between.
pub fn quantile_between(
    before: Option<&HistogramSnapshot>,
    after: &HistogramSnapshot,
    q: f64,
) -> Option<f64> {
    debug_assert!((0.0..=1.0).contains(&q));
    let counts: Vec<u64> = after
        .cumulative
        .iter()
        .enumerate()
        .map(|(index, now)| {
            let was = before
                .filter(|b| b.bounds == after.bounds)
                .and_then(|b| b.cumulative.get(index))
                .copied()
                .unwrap_or(0);
            now.saturating_sub(was)
        })
        .collect();
    let count = *counts.last()?;
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut below = 0u64;
    for (index, cumulative) in counts.iter().enumerate() {
        if (*cumulative as f64) >= rank && *cumulative > below {
            let Some(upper) = after.bounds.get(index) else {
                return after.bounds.last().copied();
            };
            let lower = if index == 0 {
                0.0
            } else {
                after.bounds[index - 1]
            };
            let in_bucket = (*cumulative - below) as f64;
            let into = (rank - below as f64).max(0.0);
            return Some(lower + (upper - lower) * (into / in_bucket));
        }
        below = below.max(*cumulative);
    }
    after.bounds.last().copied()
}

/// The [`LAG_GROUPS_MAX`] most lagging groups, each with its most lagging partitions.
fn top_lag(lag: &[PartitionLag]) -> Vec<GroupLag> {
    let mut groups: HashMap<&str, Vec<&PartitionLag>> = HashMap::new();
    for entry in lag {
        groups.entry(entry.group.as_str()).or_default().push(entry);
    }
    let mut out: Vec<GroupLag> = groups
        .into_iter()
        .map(|(group, mut partitions)| {
            let total = partitions.iter().map(|p| p.lag.max(0)).sum();
            partitions.sort_by(|a, b| {
                b.lag
                    .cmp(&a.lag)
                    .then_with(|| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)))
            });
            partitions.truncate(LAG_PARTITIONS_MAX);
            GroupLag {
                group: group.to_string(),
                total,
                partitions: partitions
                    .into_iter()
                    .map(|p| (p.topic.clone(), p.partition, p.lag.max(0)))
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.group.cmp(&b.group)));
    out.truncate(LAG_GROUPS_MAX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Histogram;
    use std::time::Duration;

    fn reading(at_ms: i64, topics: &[(&str, u64, u64, u64)]) -> Reading {
        Reading {
            at_ms,
            topics: topics
                .iter()
                .map(|(name, bytes_in, messages_in, bytes_out)| {
                    (
                        name.to_string(),
                        TopicTotals {
                            bytes_in: *bytes_in,
                            messages_in: *messages_in,
                            bytes_out: *bytes_out,
                        },
                    )
                })
                .collect(),
            ..Reading::default()
        }
    }

    #[test]
    fn given_first_reading_when_recorded_should_keep_no_point() {
        let mut history = History::new();
        history.record(reading(1_000, &[("a", 100, 1, 0)]));
        assert_eq!(history.points().count(), 0);
        assert_eq!(history.baseline_at_ms(), Some(1_000));
    }

    #[test]
    fn given_two_readings_when_recorded_should_keep_rates_per_topic_and_total() {
        let mut history = History::new();
        history.record(reading(0, &[("a", 1_000, 10, 0), ("b", 0, 0, 0)]));
        history.record(reading(
            10_000,
            &[("a", 11_000, 110, 5_000), ("b", 500, 5, 0), ("c", 0, 0, 0)],
        ));
        let points: Vec<&Point> = history.points().collect();
        assert_eq!(points.len(), 1);
        let point = points[0];
        assert_eq!(point.at_ms, 10_000);
        assert_eq!(point.interval_ms, 10_000);
        assert_eq!(
            point.total,
            Rates {
                bytes_in: 1_050.0,
                messages_in: 10.5,
                bytes_out: 500.0
            }
        );
        // The idle topic `c` is not kept.
        let names: Vec<&str> = point.topics.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(point.topics[0].1.messages_in, 10.0);
    }

    #[test]
    fn given_counter_reset_when_recorded_should_count_the_new_value_not_a_negative_rate() {
        let mut history = History::new();
        history.record(reading(0, &[("a", 1_000, 10, 0)]));
        history.record(reading(1_000, &[("a", 300, 3, 0)]));
        let point = history.points().next().unwrap();
        assert_eq!(point.total.bytes_in, 300.0);
        assert_eq!(point.total.messages_in, 3.0);
    }

    #[test]
    fn given_more_than_capacity_readings_when_recorded_should_keep_the_newest_points() {
        let mut history = History::new();
        for step in 0..=(POINTS_MAX as i64 + 25) {
            history.record(reading(
                step * SAMPLE_INTERVAL_MS,
                &[("a", step as u64, 0, 0)],
            ));
        }
        let points: Vec<&Point> = history.points().collect();
        assert_eq!(points.len(), POINTS_MAX);
        assert_eq!(points[0].at_ms, 26 * SAMPLE_INTERVAL_MS);
        assert_eq!(
            points[POINTS_MAX - 1].at_ms,
            (POINTS_MAX as i64 + 25) * SAMPLE_INTERVAL_MS
        );
        assert!(points.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn given_reading_not_after_baseline_when_recorded_should_be_ignored() {
        let mut history = History::new();
        history.record(reading(5_000, &[("a", 10, 1, 0)]));
        history.record(reading(5_000, &[("a", 20, 2, 0)]));
        history.record(reading(4_000, &[("a", 30, 3, 0)]));
        assert_eq!(history.points().count(), 0);
        assert_eq!(history.baseline_at_ms(), Some(5_000));
        // The baseline is still the first reading: the next rate is measured from it.
        history.record(reading(6_000, &[("a", 40, 4, 0)]));
        assert_eq!(history.points().next().unwrap().total.bytes_in, 30.0);
    }

    #[test]
    fn given_preview_when_taken_should_not_change_the_history() {
        let mut history = History::new();
        assert!(history.preview(&reading(0, &[])).is_none());
        history.record(reading(0, &[("a", 0, 0, 0)]));
        let live = history.preview(&reading(2_000, &[("a", 0, 8, 0)])).unwrap();
        assert_eq!(live.total.messages_in, 4.0);
        assert_eq!(history.points().count(), 0);
        assert_eq!(history.baseline_at_ms(), Some(0));
    }

    #[test]
    fn given_many_busy_topics_when_recorded_should_keep_the_busiest_and_say_so() {
        let mut history = History::new();
        let names: Vec<String> = (0..TOPICS_PER_POINT_MAX + 10)
            .map(|i| format!("t{i:04}"))
            .collect();
        let zero: Vec<(&str, u64, u64, u64)> =
            names.iter().map(|n| (n.as_str(), 0, 0, 0)).collect();
        let busy: Vec<(&str, u64, u64, u64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), 1 + i as u64, 1, 0))
            .collect();
        history.record(reading(0, &zero));
        history.record(reading(1_000, &busy));
        let point = history.points().next().unwrap();
        assert!(point.topics_cut);
        assert_eq!(point.topics.len(), TOPICS_PER_POINT_MAX);
        // The ten quietest (t0000..t0009) were dropped; the total still counts them.
        assert_eq!(point.topics[0].0, "t0010");
        assert_eq!(point.total.messages_in, (TOPICS_PER_POINT_MAX + 10) as f64);
    }

    fn histogram_with(millis: &[u64]) -> Histogram {
        let histogram = Histogram::new(crate::metrics::REQUEST_DURATION_BUCKETS_SECONDS);
        for ms in millis {
            histogram.observe(Duration::from_millis(*ms));
        }
        histogram
    }

    #[test]
    fn given_histogram_delta_when_p99_taken_should_use_only_the_interval() {
        // Before: 100 slow requests (2 s). In the interval: 100 fast ones (under 1 ms).
        let histogram = histogram_with(&[2_000; 100]);
        let before = histogram.snapshot();
        for _ in 0..100 {
            histogram.observe(Duration::from_micros(800));
        }
        let after = histogram.snapshot();
        let p99 = quantile_between(Some(&before), &after, 0.99).unwrap();
        assert!(p99 > 0.0005 && p99 <= 0.001, "p99 {p99}");
        // Over all time the slow requests dominate.
        let all = quantile_between(None, &after, 0.99).unwrap();
        assert!(all > 1.0 && all <= 2.5, "p99 {all}");
    }

    #[test]
    fn given_no_requests_in_interval_when_p99_taken_should_be_none() {
        let histogram = histogram_with(&[5]);
        let snapshot = histogram.snapshot();
        assert_eq!(quantile_between(Some(&snapshot), &snapshot, 0.99), None);
        let empty = histogram_with(&[]).snapshot();
        assert_eq!(quantile_between(None, &empty, 0.99), None);
    }

    #[test]
    fn given_one_slow_request_in_a_hundred_when_p99_taken_should_interpolate_inside_its_bucket() {
        // 99 at 3 ms (bucket 2.5..5 ms) and 1 over the last bound.
        let mut millis = vec![3; 99];
        millis.push(60_000);
        let after = histogram_with(&millis).snapshot();
        let p99 = quantile_between(None, &after, 0.99).unwrap();
        assert!((0.0025..=0.005).contains(&p99), "p99 {p99}");
        let p100 = quantile_between(None, &after, 1.0).unwrap();
        assert_eq!(p100, 30.0, "the overflow bucket counts as the last bound");
    }

    #[test]
    fn given_many_groups_when_recorded_should_keep_the_most_lagging_with_bounded_partitions() {
        let mut lag = Vec::new();
        for group in 0..(LAG_GROUPS_MAX + 5) {
            for partition in 0..(LAG_PARTITIONS_MAX as i32 + 4) {
                lag.push(PartitionLag {
                    group: format!("g{group:02}"),
                    topic: "t".into(),
                    partition,
                    lag: group as i64 * 100 + i64::from(partition),
                });
            }
        }
        lag.push(PartitionLag {
            group: "ahead".into(),
            topic: "t".into(),
            partition: 0,
            lag: -5,
        });
        let mut history = History::new();
        history.record(Reading::default());
        history.record(Reading {
            at_ms: 1,
            lag,
            under_replicated_partitions: 3,
            ..Reading::default()
        });
        let point = history.points().next().unwrap();
        assert_eq!(point.under_replicated_partitions, 3);
        assert_eq!(point.lag.len(), LAG_GROUPS_MAX);
        assert_eq!(point.lag[0].group, format!("g{:02}", LAG_GROUPS_MAX + 4));
        assert!(point.lag.windows(2).all(|w| w[0].total >= w[1].total));
        assert!(point.lag.iter().all(|g| g.group != "ahead"));
        let first = &point.lag[0];
        assert_eq!(first.partitions.len(), LAG_PARTITIONS_MAX);
        assert_eq!(first.partitions[0].1, LAG_PARTITIONS_MAX as i32 + 3);
        let expected_total: i64 = (0..(LAG_PARTITIONS_MAX as i64 + 4))
            .map(|p| (LAG_GROUPS_MAX as i64 + 4) * 100 + p)
            .sum();
        assert_eq!(
            first.total, expected_total,
            "the total counts every partition"
        );
    }
}
