//! The gateway access log: one record per request through the HTTP
//! trigger, published in batches to the log queue (`logs`, the logger's).
//!
//! The request path never waits on it: [`AccessLog::observe`] hands each
//! finished request's record to a bounded buffer with `try_send`, and a
//! background [`batcher`] publishes JSON-array batches through the host's
//! broker (embedded queue or RabbitMQ). While the broker is slow or down,
//! records wait in the buffer and the batch in hand is retried with
//! back-off; only records that find the buffer full are dropped, and every
//! drop is counted ([`Snapshot`], `GET /v1/access-log`, `corral
//! components`) and warned about at most once per interval. On shutdown the
//! buffer is flushed for at most `shutdown_flush_ms`.
//!
//! What a record holds: [`record`]. Where its `user_id` comes from:
//! [`user`] (the gateway's authentication, never a client header). The
//! request id: [`request_id`]. Skipping and sampling: [`filter`].

mod batcher;
mod filter;
mod observe;
pub mod record;
pub mod request_id;
pub mod settings;
mod stats;
pub mod user;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use batcher::Destination;
pub use observe::CountedBody;
pub use settings::{AccessLogSettings, SECTION};
pub use stats::Snapshot;
pub use user::{VerifiedUser, set_user, user_of};

use filter::Filter;
use record::AccessRecord;
use stats::Stats;

pub struct AccessLog {
    queue: String,
    ids: request_id::Generator,
    filter: Filter,
    /// The buffer's sending side; `None` when the access log is off.
    sender: Option<mpsc::Sender<AccessRecord>>,
    stats: Arc<Stats>,
    stop: watch::Sender<Option<tokio::time::Instant>>,
    batcher: Mutex<Option<JoinHandle<()>>>,
    shutdown_flush: Duration,
}

impl AccessLog {
    /// Starts the access log of `settings`, publishing to `destination`
    /// (the host's broker). Must run inside the tokio runtime when enabled.
    pub fn start(settings: &AccessLogSettings, destination: Arc<dyn Destination>) -> Arc<Self> {
        let stats = Arc::new(Stats::new(Duration::from_millis(settings.warn_interval_ms)));
        let (stop, stop_rx) = watch::channel(None);
        let (sender, batcher) = if settings.enabled {
            let (sender, receiver) = mpsc::channel(settings.buffer);
            let task = batcher::Batcher {
                receiver,
                destination,
                stats: stats.clone(),
                queue: settings.queue.clone(),
                batch_size: settings.batch_size,
                flush_interval: Duration::from_millis(settings.flush_interval_ms),
                max_retry_delay: Duration::from_millis(settings.max_retry_delay_ms),
                stop: stop_rx,
            };
            (Some(sender), Some(tokio::spawn(task.run())))
        } else {
            (None, None)
        };
        Arc::new(Self {
            queue: settings.queue.clone(),
            ids: request_id::Generator::default(),
            filter: Filter::new(settings),
            sender,
            stats,
            stop,
            batcher: Mutex::new(batcher),
            shutdown_flush: Duration::from_millis(settings.shutdown_flush_ms),
        })
    }

    /// An access log that records nothing (request ids still work).
    pub fn disabled() -> Arc<Self> {
        struct Nowhere;
        impl Destination for Nowhere {
            fn publish<'a>(
                &'a self,
                _: &'a str,
                _: crate::broker::Message,
            ) -> futures::future::BoxFuture<'a, Result<(), crate::broker::PublishError>>
            {
                unreachable!("a disabled access log publishes nothing")
            }
        }
        let settings = AccessLogSettings {
            enabled: false,
            ..AccessLogSettings::default()
        };
        Self::start(&settings, Arc::new(Nowhere))
    }

    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Hands `record` to the buffer; a full (or closed) buffer drops it,
    /// counted.
    fn emit(&self, record: AccessRecord) {
        let Some(sender) = &self.sender else { return };
        match sender.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.drop_records(1, "the buffer is full")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.stats.drop_records(1, "the access log has shut down")
            }
        }
    }

    /// The counters, as `GET /v1/access-log` answers them.
    pub fn snapshot(&self) -> Snapshot {
        let (waiting, capacity) = match &self.sender {
            Some(s) => (
                (s.max_capacity() - s.capacity()) as u64,
                s.max_capacity() as u64,
            ),
            None => (0, 0),
        };
        self.stats
            .snapshot(self.enabled(), &self.queue, waiting, capacity)
    }

    /// Publishes what is buffered, for at most `shutdown_flush_ms`, and
    /// stops the batcher; records still buffered then are counted as
    /// dropped. Call it once the HTTP listener has drained.
    pub async fn shutdown(&self) {
        let deadline = tokio::time::Instant::now() + self.shutdown_flush;
        self.stop.send_replace(Some(deadline));
        let task = self
            .batcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            // The batcher honours the deadline; the margin covers a
            // publish that ignores cancellation for a moment.
            let margin = deadline + Duration::from_secs(1);
            if tokio::time::timeout_at(margin, task).await.is_err() {
                tracing::warn!("access log: the flush did not finish in time");
            }
        }
        let s = self.snapshot();
        if s.enabled {
            tracing::info!(sent = s.sent, dropped = s.dropped, "access log stopped");
        }
    }
}
