//! The log cleaner: one dedicated thread that compacts the logs of `cleanup.policy=compact`
//! topics, off the request path.
//!
//! Per pass it visits every hosted partition: plans under the partition's mutex (cheap: no
//! I/O but a checkpoint read), builds the cleaned segments with the mutex released (so
//! produce and fetch on that partition continue; the plan holds an immutable snapshot of
//! sealed segments), then takes the mutex again only to rename the cleaned files in. Its
//! I/O is paced by `log.cleaner.io.max.bytes.per.second`, shared across partitions. One
//! clean at a time, as Kafka's default `log.cleaner.threads=1`. When a pass cleans
//! nothing the thread sleeps `log.cleaner.backoff.ms`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use strom_storage::{Throttle, CLEANER_MAP_BYTES_DEFAULT};
use tracing::{info, warn};

use crate::state::{now_ms, Broker};

/// Settings read from the broker config (`log.cleaner.*`).
#[derive(Debug, Clone, Copy)]
pub struct CleanerSettings {
    pub enable: bool,
    pub backoff_ms: u64,
    pub io_max_bytes_per_second: f64,
    pub dedupe_buffer_bytes: usize,
}

impl CleanerSettings {
    pub fn from_config(config: &crate::config::BrokerConfig) -> CleanerSettings {
        Self::from_values(|key| config.describe(key).map(|(value, _)| value))
    }

    /// The settings now: dynamic broker configs (backoff, I/O rate, dedupe buffer) over the
    /// static ones, so a change takes effect at the next pass without a restart.
    pub fn current(broker: &Broker) -> CleanerSettings {
        let image = broker.image();
        Self::from_values(|key| {
            crate::config::dynamic::dynamic_value(broker.config(), &image, key)
                .cloned()
                .or_else(|| broker.config().describe(key).map(|(value, _)| value))
        })
    }

    fn from_values(raw: impl Fn(&str) -> Option<String>) -> CleanerSettings {
        CleanerSettings {
            enable: raw("log.cleaner.enable")
                .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false")),
            backoff_ms: raw("log.cleaner.backoff.ms")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(15_000)
                .clamp(10, 3_600_000),
            io_max_bytes_per_second: raw("log.cleaner.io.max.bytes.per.second")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .unwrap_or(f64::INFINITY),
            dedupe_buffer_bytes: raw("log.cleaner.dedupe.buffer.size")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(CLEANER_MAP_BYTES_DEFAULT)
                .max(1024 * 1024),
        }
    }
}

/// Totals since start, for logs and metrics.
#[derive(Debug, Default)]
pub struct CleanerCounters {
    pub cleans: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_removed: AtomicU64,
    pub build_micros: AtomicU64,
}

/// Stops and joins the cleaner thread when dropped (or by [`CleanerHandle::stop`]).
pub struct CleanerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counters: Arc<CleanerCounters>,
}

impl CleanerHandle {
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if let Some(current) = thread.thread().name() {
                tracing::debug!(thread = current, "stopping the log cleaner");
            }
            let _ = thread.join();
        }
    }
}

impl Drop for CleanerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the cleaner thread (nothing when `log.cleaner.enable=false`). It holds only a
/// weak reference to the broker and exits when stopped or when the broker is gone.
pub fn spawn(broker: Arc<Broker>) -> CleanerHandle {
    let settings = CleanerSettings::from_config(broker.config());
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(CleanerCounters::default());
    if !settings.enable {
        return CleanerHandle {
            stop,
            thread: None,
            counters,
        };
    }
    let weak = Arc::downgrade(&broker);
    drop(broker);
    let thread_stop = stop.clone();
    let thread_counters = counters.clone();
    let thread = std::thread::Builder::new()
        .name("strom-log-cleaner".into())
        .spawn(move || run(weak, settings, thread_stop, thread_counters))
        .expect("spawning the log cleaner thread");
    CleanerHandle {
        stop,
        thread: Some(thread),
        counters,
    }
}

fn run(
    broker: Weak<Broker>,
    settings: CleanerSettings,
    stop: Arc<AtomicBool>,
    counters: Arc<CleanerCounters>,
) {
    // The stop flag also cancels a build in progress, so a stop never waits for a clean.
    let new_throttle = |settings: &CleanerSettings| {
        Throttle::new(settings.io_max_bytes_per_second).with_cancel(stop.clone())
    };
    let mut settings = settings;
    let mut throttle = new_throttle(&settings);
    while !stop.load(Ordering::SeqCst) {
        let cleaned_any = match broker.upgrade() {
            Some(broker) => {
                // Dynamic broker configs may have changed the rate or the buffer.
                let now = CleanerSettings::current(&broker);
                if now.io_max_bytes_per_second != settings.io_max_bytes_per_second {
                    throttle = new_throttle(&now);
                }
                settings = now;
                clean_pass(&broker, &settings, &mut throttle, &stop, &counters)
            }
            None => return,
        };
        if cleaned_any {
            continue;
        }
        // Sleep in short steps so a stop is noticed quickly; restart the rate window so
        // idle time does not become a burst allowance.
        let until = Instant::now() + Duration::from_millis(settings.backoff_ms);
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        throttle = new_throttle(&settings);
    }
}

/// One pass over every partition; whether anything was cleaned.
fn clean_pass(
    broker: &Broker,
    settings: &CleanerSettings,
    throttle: &mut Throttle,
    stop: &AtomicBool,
    counters: &CleanerCounters,
) -> bool {
    let mut cleaned_any = false;
    for partition in broker.partitions().all() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let plan = {
            let log = partition.log.lock();
            let high_watermark = log.log_end_offset();
            log.plan_clean(now_ms(), high_watermark, false)
        };
        let plan = match plan {
            Ok(Some(plan)) => plan,
            Ok(None) => continue,
            Err(error) => {
                warn!(topic = %partition.topic, partition = partition.index, %error, "cleaner cannot plan");
                continue;
            }
        };
        let dirty_ratio = plan.dirty_ratio;
        let started = Instant::now();
        // No lock held: appends and fetches continue while the segments are rewritten.
        let built = plan.build(throttle, settings.dedupe_buffer_bytes);
        let build_time = started.elapsed();
        let cleaned = match built {
            Ok(cleaned) => cleaned,
            Err(_) if stop.load(Ordering::SeqCst) => break,
            Err(error) => {
                warn!(topic = %partition.topic, partition = partition.index, %error, "cleaning failed");
                continue;
            }
        };
        let outcome = partition.log.lock().install_cleaned(cleaned);
        match outcome {
            Ok(outcome) => {
                cleaned_any = true;
                let stats = outcome.stats;
                counters.cleans.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes_read
                    .fetch_add(stats.bytes_read, Ordering::Relaxed);
                counters.bytes_removed.fetch_add(
                    stats.bytes_before.saturating_sub(stats.bytes_after),
                    Ordering::Relaxed,
                );
                counters
                    .build_micros
                    .fetch_add(build_time.as_micros() as u64, Ordering::Relaxed);
                let megabytes_per_second =
                    stats.bytes_read as f64 / 1e6 / build_time.as_secs_f64().max(1e-6);
                info!(
                    topic = %partition.topic,
                    partition = partition.index,
                    dirty_ratio = format!("{dirty_ratio:.2}"),
                    bytes_before = stats.bytes_before,
                    bytes_after = stats.bytes_after,
                    records_removed = stats.records_removed,
                    tombstones_removed = stats.tombstones_removed,
                    segments_rewritten = stats.segments_rewritten,
                    segments_deleted = stats.segments_deleted,
                    skipped = outcome.segments_skipped,
                    build_ms = build_time.as_millis() as u64,
                    read_mb_per_s = format!("{megabytes_per_second:.1}"),
                    "cleaned log"
                );
            }
            Err(error) => {
                warn!(topic = %partition.topic, partition = partition.index, %error, "installing a cleaned log failed")
            }
        }
    }
    cleaned_any
}
