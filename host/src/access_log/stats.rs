//! The access log's counters: what the admin API (`GET /v1/access-log`)
//! and `corral components` show, and the rate-limited warnings.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// The counters, updated from request tasks and the batcher.
pub struct Stats {
    /// Records published (the broker confirmed them).
    pub sent: AtomicU64,
    /// Records lost: the buffer was full, the broker refused them for good,
    /// or shutdown came before they could go.
    pub dropped: AtomicU64,
    /// Records taken from the buffer by the batcher, not yet published.
    pub in_flight: AtomicU64,
    pub batches: AtomicU64,
    /// Publish attempts that failed (each retried unless final).
    pub failed_publishes: AtomicU64,
    pub skipped: AtomicU64,
    pub sampled_out: AtomicU64,
    last_error: Mutex<Option<(String, SystemTime)>>,
    drop_warning: Warning,
    publish_warning: Warning,
}

/// At most one warning per interval; the ones held back are counted.
pub struct Warning {
    interval_ms: u64,
    start: Instant,
    /// Milliseconds since `start` of the last warning, plus one (0: never).
    last: AtomicU64,
}

impl Warning {
    fn new(interval: Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Whether a warning may be logged now; true at most once per interval.
    pub fn due(&self) -> bool {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now - last < self.interval_ms {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// A point-in-time copy, as the admin API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub enabled: bool,
    pub queue: String,
    pub sent: u64,
    pub dropped: u64,
    /// Records waiting: in the buffer or in a batch not yet published.
    pub buffered: u64,
    pub buffer_capacity: u64,
    pub batches: u64,
    pub failed_publishes: u64,
    pub skipped: u64,
    pub sampled_out: u64,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub last_error_at: Option<String>,
}

impl Stats {
    pub fn new(warn_interval: Duration) -> Self {
        Self {
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failed_publishes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            sampled_out: AtomicU64::new(0),
            last_error: Mutex::new(None),
            drop_warning: Warning::new(warn_interval),
            publish_warning: Warning::new(warn_interval),
        }
    }

    /// Counts `n` lost records and warns (at most once per interval).
    pub fn drop_records(&self, n: u64, why: &str) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        if self.drop_warning.due() {
            tracing::warn!(
                dropped = n,
                dropped_total = total,
                "access log: dropping records ({why}); further drops are counted in GET /v1/access-log"
            );
        }
    }

    /// Notes a failed publish; warns at most once per interval.
    pub fn publish_failed(&self, error: &str, records: usize, retry_in: Option<Duration>) {
        self.failed_publishes.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((error.to_owned(), SystemTime::now()));
        if self.publish_warning.due() {
            match retry_in {
                Some(delay) => tracing::warn!(
                    records,
                    "access log: publishing failed, retrying in {delay:?}: {error}"
                ),
                None => tracing::warn!(records, "access log: publishing failed for good: {error}"),
            }
        }
    }

    pub fn snapshot(&self, enabled: bool, queue: &str, waiting: u64, capacity: u64) -> Snapshot {
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Snapshot {
            enabled,
            queue: queue.to_owned(),
            sent: load(&self.sent),
            dropped: load(&self.dropped),
            buffered: waiting + load(&self.in_flight),
            buffer_capacity: capacity,
            batches: load(&self.batches),
            failed_publishes: load(&self.failed_publishes),
            skipped: load(&self.skipped),
            sampled_out: load(&self.sampled_out),
            last_error_at: last.as_ref().map(|(_, at)| {
                chrono::DateTime::<chrono::Utc>::from(*at)
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string()
            }),
            last_error: last.map(|(e, _)| e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_due_once_per_interval() {
        let w = Warning::new(Duration::from_secs(3600));
        assert!(w.due());
        assert!(!w.due());
        assert!(!w.due());
        let always = Warning::new(Duration::from_millis(1));
        assert!(always.due());
        std::thread::sleep(Duration::from_millis(3));
        assert!(always.due());
    }
}
