//! `GET /api/history`: the last minutes of traffic, latency, lag and partition health as
//! series the console draws, and the sampler that feeds [`History`] every
//! [`SAMPLE_INTERVAL_MS`].
//!
//! A reading copies counters (relaxed atomic loads), histogram buckets, the high watermark
//! of each hosted partition (an atomic) and the committed offsets (under the group
//! coordinator's lock, released before anything else is read). It runs on the blocking
//! pool; the history's own lock is taken only after the reading is done, never across it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::warn;

use super::history::{
    History, PartitionLag, Point, Reading, TopicTotals, POINTS_MAX, SAMPLE_INTERVAL_MS,
};
use super::query::Query;
use super::{json_response, HttpError, HttpResponse};
use crate::state::{now_ms, Broker};

/// The history shared by the sampler and the route.
pub type SharedHistory = Arc<Mutex<History>>;

/// Query parameters `/api/history` understands; any other is refused.
const PARAMETERS: &[&str] = &["minutes", "topic", "group"];
/// The window served by default and at most.
const WINDOW_MINUTES_MAX: i64 = 15;
/// Longest topic name Kafka allows.
const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Longest group id accepted as a query parameter.
const GROUP_ID_BYTES_MAX: usize = 1024;
/// Topics listed for the console's topic select, busiest first.
const TOPICS_LISTED_MAX: usize = 100;
/// A "now" point is served only after this long since the last sample (shorter intervals
/// give jumpy rates).
const LIVE_POINT_MIN_MS: i64 = 1_000;

/// Samples the broker into `history` every [`SAMPLE_INTERVAL_MS`] until aborted; the first
/// reading is taken at once so rates can be shown from the first seconds.
pub fn spawn_sampler(broker: Arc<Broker>, history: SharedHistory) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(SAMPLE_INTERVAL_MS as u64));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let reader = broker.clone();
            match tokio::task::spawn_blocking(move || read(&reader, now_ms())).await {
                Ok(reading) => history.lock().record(reading),
                Err(error) => warn!(%error, "history sample failed"),
            }
        }
    })
}

/// What the broker's instruments say now.
pub fn read(broker: &Broker, at_ms: i64) -> Reading {
    let topics = broker
        .metrics()
        .topic_snapshot()
        .into_iter()
        .map(|(name, counters)| {
            let totals = TopicTotals {
                bytes_in: counters.bytes_in.get(),
                messages_in: counters.messages_in.get(),
                bytes_out: counters.bytes_out.get(),
            };
            (name, totals)
        })
        .collect();
    let apis = broker
        .metrics()
        .api_snapshot()
        .into_iter()
        .map(|(name, api)| (name, api.duration.snapshot()))
        .collect();
    let image = broker.image();
    let live = image.broker_ids();
    let (mut under_replicated, mut offline) = (0u32, 0u32);
    for topic in image.topics() {
        for partition in &topic.partitions {
            under_replicated += u32::from(partition.isr.len() < partition.replicas.len());
            offline += u32::from(partition.leader < 0 || !live.contains(&partition.leader));
        }
    }
    Reading {
        at_ms,
        topics,
        apis,
        lag: lag(broker),
        under_replicated_partitions: under_replicated,
        offline_partitions: offline,
    }
}

/// Lag of every committed offset behind the high watermark of a partition hosted here.
fn lag(broker: &Broker) -> Vec<PartitionLag> {
    let committed: Vec<(String, String, i32, i64)> = {
        let mut committed = Vec::new();
        broker.groups().read_all(|state| {
            committed.extend(state.offsets.iter().flat_map(|(group, offsets)| {
                offsets.iter().map(move |((topic, partition), value)| {
                    (group.clone(), topic.clone(), *partition, value.offset)
                })
            }))
        });
        committed
    };
    if committed.is_empty() {
        return Vec::new();
    }
    let high_watermarks: HashMap<(String, i32), i64> = broker
        .partitions()
        .all()
        .iter()
        .map(|p| ((p.topic.clone(), p.index), p.high_watermark()))
        .collect();
    committed
        .into_iter()
        .filter_map(|(group, topic, partition, offset)| {
            let high_watermark = *high_watermarks.get(&(topic.clone(), partition))?;
            Some(PartitionLag {
                group,
                topic,
                partition,
                lag: (high_watermark - offset).max(0),
            })
        })
        .collect()
}

/// Per-second rates, one value per point.
#[derive(Serialize, Default)]
struct RateSeries {
    bytes_in_per_s: Vec<Option<f64>>,
    messages_in_per_s: Vec<Option<f64>>,
    bytes_out_per_s: Vec<Option<f64>>,
}

impl RateSeries {
    fn push(&mut self, rates: Option<super::history::Rates>) {
        self.bytes_in_per_s.push(rates.map(|r| r.bytes_in));
        self.messages_in_per_s.push(rates.map(|r| r.messages_in));
        self.bytes_out_per_s.push(rates.map(|r| r.bytes_out));
    }
}

#[derive(Serialize)]
struct TopicSeries {
    name: String,
    /// `null` where the topic was not among the busiest kept for that point.
    #[serde(flatten)]
    rates: RateSeries,
}

#[derive(Serialize)]
struct ApiSeries {
    api: String,
    /// `null` where the API saw no request in the interval.
    p99_ms: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct GroupSeries {
    group: String,
    /// `null` where the group was not among the most lagging.
    total: Vec<Option<i64>>,
}

#[derive(Serialize)]
struct PartitionSeries {
    topic: String,
    partition: i32,
    lag: Vec<Option<i64>>,
}

#[derive(Serialize)]
struct GroupDetail {
    group: String,
    partitions: Vec<PartitionSeries>,
}

#[derive(Serialize)]
struct LagSeries {
    groups: Vec<GroupSeries>,
    /// Per-partition lag of the `group` asked for, else of the first of `groups`.
    group: Option<GroupDetail>,
}

#[derive(Serialize)]
struct HistoryBody {
    interval_ms: i64,
    points_max: usize,
    window_ms: i64,
    now_ms: i64,
    /// End of each point's interval, oldest first.
    times_ms: Vec<i64>,
    /// The last point is the interval from the last sample to now, not a kept sample.
    live: bool,
    total: RateSeries,
    /// Topics with traffic in the window, busiest first (for choosing `topic`).
    topics: Vec<String>,
    /// The `topic` asked for, else the busiest one; `null` when none had traffic.
    topic: Option<TopicSeries>,
    request_p99_ms: Vec<ApiSeries>,
    lag: LagSeries,
    under_replicated_partitions: Vec<u32>,
    offline_partitions: Vec<u32>,
}

/// The checked query of `/api/history`.
#[derive(Debug, PartialEq, Eq)]
struct HistoryQuery {
    window_ms: i64,
    topic: Option<String>,
    group: Option<String>,
}

fn parse_query(query: &Query) -> Result<HistoryQuery, HttpError> {
    if let Some(unknown) = query.keys().find(|key| !PARAMETERS.contains(key)) {
        return Err(HttpError::bad_request(format!(
            "unknown query parameter `{unknown}`; /api/history takes {}",
            PARAMETERS.join(", ")
        )));
    }
    let minutes = query.number("minutes", WINDOW_MINUTES_MAX, 1, WINDOW_MINUTES_MAX)?;
    let topic = query.get("topic").map(str::to_string);
    if let Some(name) = &topic {
        let valid = name.len() <= TOPIC_NAME_BYTES_MAX
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(HttpError::bad_request(format!(
                "query parameter `topic` is not a valid topic name (at most \
                 {TOPIC_NAME_BYTES_MAX} of a-z, A-Z, 0-9, '.', '_', '-')"
            )));
        }
    }
    let group = query.get("group").map(str::to_string);
    if group.as_ref().is_some_and(|g| g.len() > GROUP_ID_BYTES_MAX) {
        return Err(HttpError::bad_request(format!(
            "query parameter `group` is longer than {GROUP_ID_BYTES_MAX} bytes"
        )));
    }
    Ok(HistoryQuery {
        window_ms: minutes * 60_000,
        topic,
        group,
    })
}

/// `GET /api/history?minutes=15&topic=NAME&group=ID`.
pub fn history(
    broker: &Broker,
    history: &SharedHistory,
    query: &Query,
) -> Result<HttpResponse, HttpError> {
    let query = parse_query(query)?;
    if let Some(topic) = &query.topic {
        if broker.image().topic(topic).is_none() {
            return Err(HttpError::not_found(format!("no topic named `{topic}`")));
        }
    }
    let now = now_ms();
    // Read before locking: the reading takes other locks.
    let reading = read(broker, now);
    let history = history.lock();
    let live = history
        .baseline_at_ms()
        .is_some_and(|at| now - at >= LIVE_POINT_MIN_MS)
        .then(|| history.preview(&reading))
        .flatten();
    let since = now - query.window_ms;
    let points: Vec<&Point> = history
        .points()
        .filter(|point| point.at_ms > since)
        .chain(live.as_ref())
        .collect();
    let body = build(&points, live.is_some(), now, &query);
    drop(history);
    Ok(json_response(StatusCode::OK, &body))
}

fn build(points: &[&Point], live: bool, now_ms: i64, query: &HistoryQuery) -> HistoryBody {
    debug_assert!(points.len() <= POINTS_MAX + 1);
    let mut total = RateSeries::default();
    for point in points {
        total.push(Some(point.total));
    }

    // Topics ranked by bytes over the window.
    let mut busy: BTreeMap<&str, f64> = BTreeMap::new();
    for point in points {
        for (name, rates) in &point.topics {
            *busy.entry(name.as_str()).or_default() += rates.bytes_in + rates.bytes_out;
        }
    }
    let mut topics: Vec<(&str, f64)> = busy.into_iter().collect();
    topics.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let topics: Vec<String> = topics
        .into_iter()
        .take(TOPICS_LISTED_MAX)
        .map(|(name, _)| name.to_string())
        .collect();
    // The topic asked for, else the busiest of the window.
    let topic = query.topic.as_ref().or(topics.first()).map(|name| {
        let mut rates = RateSeries::default();
        for point in points {
            let found = point
                .topics
                .binary_search_by(|(n, _)| n.as_str().cmp(name))
                .ok()
                .map(|index| point.topics[index].1);
            // Absent means idle, unless the point kept only the busiest topics.
            let value = match found {
                Some(found) => Some(found),
                None if point.topics_cut => None,
                None => Some(Default::default()),
            };
            rates.push(value);
        }
        TopicSeries {
            name: name.clone(),
            rates,
        }
    });

    let mut apis: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
    for (index, point) in points.iter().enumerate() {
        for (api, p99) in &point.request_p99_ms {
            apis.entry(api.as_str())
                .or_insert_with(|| vec![None; points.len()])[index] = Some(*p99);
        }
    }
    let request_p99_ms = apis
        .into_iter()
        .map(|(api, p99_ms)| ApiSeries {
            api: api.to_string(),
            p99_ms,
        })
        .collect();

    HistoryBody {
        interval_ms: SAMPLE_INTERVAL_MS,
        points_max: POINTS_MAX,
        window_ms: query.window_ms,
        now_ms,
        times_ms: points.iter().map(|p| p.at_ms).collect(),
        live,
        total,
        topics,
        topic,
        request_p99_ms,
        lag: lag_series(points, query.group.as_deref()),
        under_replicated_partitions: points
            .iter()
            .map(|p| p.under_replicated_partitions)
            .collect(),
        offline_partitions: points.iter().map(|p| p.offline_partitions).collect(),
    }
}

fn lag_series(points: &[&Point], wanted: Option<&str>) -> LagSeries {
    let mut groups: BTreeMap<&str, Vec<Option<i64>>> = BTreeMap::new();
    for (index, point) in points.iter().enumerate() {
        for group in &point.lag {
            groups
                .entry(group.group.as_str())
                .or_insert_with(|| vec![None; points.len()])[index] = Some(group.total);
        }
    }
    // Most lagging at its last known value first; at most LAG_GROUPS_MAX are in any point,
    // but the set may change along the window, so cap the union too.
    let mut groups: Vec<GroupSeries> = groups
        .into_iter()
        .map(|(group, total)| GroupSeries {
            group: group.to_string(),
            total,
        })
        .collect();
    let last = |g: &GroupSeries| g.total.iter().rev().find_map(|v| *v).unwrap_or(-1);
    groups.sort_by(|a, b| last(b).cmp(&last(a)).then_with(|| a.group.cmp(&b.group)));
    groups.truncate(super::history::LAG_GROUPS_MAX * 2);

    let chosen = wanted
        .map(str::to_string)
        .or_else(|| groups.first().map(|g| g.group.clone()));
    let group = chosen.map(|chosen| {
        let mut partitions: BTreeMap<(&str, i32), Vec<Option<i64>>> = BTreeMap::new();
        for (index, point) in points.iter().enumerate() {
            let Some(group) = point.lag.iter().find(|g| g.group == chosen) else {
                continue;
            };
            for (topic, partition, lag) in &group.partitions {
                partitions
                    .entry((topic.as_str(), *partition))
                    .or_insert_with(|| vec![None; points.len()])[index] = Some(*lag);
            }
        }
        GroupDetail {
            group: chosen.clone(),
            partitions: partitions
                .into_iter()
                .map(|((topic, partition), lag)| PartitionSeries {
                    topic: topic.to_string(),
                    partition,
                    lag,
                })
                .collect(),
        }
    });
    LagSeries { groups, group }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::history::{GroupLag, Rates};

    fn parse(text: &str) -> Result<HistoryQuery, String> {
        parse_query(&Query::parse(text)).map_err(|error| {
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            error.message
        })
    }

    #[test]
    fn given_no_parameters_when_parsed_should_serve_fifteen_minutes() {
        assert_eq!(
            parse(""),
            Ok(HistoryQuery {
                window_ms: 15 * 60_000,
                topic: None,
                group: None
            })
        );
        assert_eq!(parse("minutes=1&topic=a.b_c-1").unwrap().window_ms, 60_000);
    }

    #[test]
    fn given_malformed_parameters_when_parsed_should_refuse_with_a_message() {
        assert!(parse("minutes=0").unwrap_err().contains("1..=15"));
        assert!(parse("minutes=16").unwrap_err().contains("1..=15"));
        assert!(parse("minutes=ten").unwrap_err().contains("`minutes`"));
        assert!(parse("minute=5")
            .unwrap_err()
            .contains("unknown query parameter `minute`"));
        assert!(parse("topic=a%2Fb").unwrap_err().contains("topic name"));
        assert!(parse(&format!("topic={}", "x".repeat(250)))
            .unwrap_err()
            .contains("topic name"));
        assert!(parse(&format!("group={}", "g".repeat(1025)))
            .unwrap_err()
            .contains("`group`"));
    }

    fn point(at_ms: i64, topics: &[(&str, f64)], cut: bool, lag: &[(&str, i64)]) -> Point {
        Point {
            at_ms,
            interval_ms: SAMPLE_INTERVAL_MS,
            total: Rates {
                bytes_in: topics.iter().map(|t| t.1).sum(),
                ..Rates::default()
            },
            topics: topics
                .iter()
                .map(|(name, bytes_in)| {
                    (
                        name.to_string(),
                        Rates {
                            bytes_in: *bytes_in,
                            ..Rates::default()
                        },
                    )
                })
                .collect(),
            topics_cut: cut,
            request_p99_ms: vec![("Produce".into(), 2.0)],
            lag: lag
                .iter()
                .map(|(group, total)| GroupLag {
                    group: group.to_string(),
                    total: *total,
                    partitions: vec![("t".into(), 0, *total)],
                })
                .collect(),
            under_replicated_partitions: 0,
            offline_partitions: 0,
        }
    }

    #[test]
    fn given_points_when_built_should_align_every_series_with_the_times() {
        let a = point(10_000, &[("a", 5.0), ("b", 50.0)], false, &[("g1", 7)]);
        let b = point(20_000, &[("b", 10.0)], false, &[("g1", 3), ("g2", 9)]);
        let c = point(30_000, &[("b", 1.0)], true, &[]);
        let query = HistoryQuery {
            window_ms: 900_000,
            topic: Some("a".into()),
            group: Some("g1".into()),
        };
        let body = build(&[&a, &b, &c], true, 31_000, &query);
        assert_eq!(body.times_ms, [10_000, 20_000, 30_000]);
        assert_eq!(
            body.total.bytes_in_per_s,
            [Some(55.0), Some(10.0), Some(1.0)]
        );
        assert_eq!(body.topics, ["b", "a"]);
        // `a` was idle at b (kept nothing is cut) and unknown at c (cut).
        let topic = body.topic.unwrap();
        assert_eq!(topic.rates.bytes_in_per_s, [Some(5.0), Some(0.0), None]);
        assert_eq!(body.request_p99_ms[0].p99_ms, [Some(2.0); 3]);
        let groups: Vec<&str> = body.lag.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(groups, ["g2", "g1"], "most lagging at its last value first");
        assert_eq!(body.lag.groups[1].total, [Some(7), Some(3), None]);
        let detail = body.lag.group.unwrap();
        assert_eq!(detail.group, "g1");
        assert_eq!(detail.partitions[0].lag, [Some(7), Some(3), None]);
        assert!(body.live);

        let busiest = build(
            &[&a, &b, &c],
            false,
            31_000,
            &HistoryQuery {
                window_ms: 900_000,
                topic: None,
                group: None,
            },
        );
        let topic = busiest.topic.unwrap();
        assert_eq!(topic.name, "b");
        assert_eq!(
            topic.rates.bytes_in_per_s,
            [Some(50.0), Some(10.0), Some(1.0)]
        );
        assert_eq!(
            busiest.lag.group.unwrap().group,
            "g2",
            "most lagging at the end"
        );
        let none = build(
            &[],
            false,
            0,
            &HistoryQuery {
                window_ms: 60_000,
                topic: None,
                group: None,
            },
        );
        assert!(none.topic.is_none() && none.lag.group.is_none());
        assert!(none.times_ms.is_empty());
    }
}
