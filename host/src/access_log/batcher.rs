//! The background task that takes records out of the buffer and publishes
//! them, a JSON array per message, to the log queue.
//!
//! A batch goes when it has `batch_size` records or when its first record
//! has waited `flush_interval_ms`. A failed publish is retried, the same
//! message (same `message-id`, so the logger stores a duplicate once) with
//! a pause doubling from 100 ms to `max_retry_delay_ms`; meanwhile new
//! records wait in the buffer, and only when that is full are they dropped
//! (counted by the sender). A message the broker calls invalid is dropped
//! (retrying cannot help). On shutdown the buffer is flushed until the
//! deadline; what is left then is counted as dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::record::{AccessRecord, batch_body};
use super::stats::Stats;
use crate::broker::{LazyBroker, Message, PublishError, new_message_id};

/// First pause after a failed publish.
const RETRY_START: Duration = Duration::from_millis(100);

/// The shutdown deadline, once there is one. A dropped sender (the access
/// log gone without a shutdown) means: stop now.
fn deadline_of(stop: &watch::Receiver<Option<Instant>>) -> Option<Instant> {
    if stop.has_changed().is_err() {
        return Some(Instant::now());
    }
    *stop.borrow()
}

/// Where batches go: the host's broker, or a stand-in in tests.
pub trait Destination: Send + Sync + 'static {
    fn publish<'a>(
        &'a self,
        queue: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<(), PublishError>>;
}

impl Destination for LazyBroker {
    fn publish<'a>(
        &'a self,
        queue: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let broker = self
                .get()
                .map_err(|e| PublishError::Unavailable(format!("{e:#}")))?;
            broker.publish(queue, vec![message]).await
        })
    }
}

pub struct Batcher {
    pub receiver: mpsc::Receiver<AccessRecord>,
    pub destination: Arc<dyn Destination>,
    pub stats: Arc<Stats>,
    pub queue: String,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub max_retry_delay: Duration,
    /// Becomes `Some(deadline)` when the host shuts down.
    pub stop: watch::Receiver<Option<Instant>>,
}

impl Batcher {
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        while self.gather(&mut batch).await {
            let records = std::mem::take(&mut batch);
            self.deliver(records).await;
            if self.deadline().is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        // Shutdown: whatever is still buffered cannot go any more.
        self.receiver.close();
        let mut left = 0;
        while self.receiver.try_recv().is_ok() {
            left += 1;
        }
        if left > 0 {
            self.stats
                .drop_records(left, "shutdown came before they could be published");
        }
    }

    fn deadline(&self) -> Option<Instant> {
        deadline_of(&self.stop)
    }

    /// Waits for the stop signal; a dropped sender counts as one.
    async fn stopped(stop: &mut watch::Receiver<Option<Instant>>) {
        let _ = stop.wait_for(Option::is_some).await;
    }

    /// Fills `batch`; false when there is nothing more to publish (stopping
    /// with an empty buffer, or every sender gone).
    async fn gather(&mut self, batch: &mut Vec<AccessRecord>) -> bool {
        let first = loop {
            if self.deadline().is_some() {
                match self.receiver.try_recv() {
                    Ok(record) => break record,
                    Err(_) => return false,
                }
            }
            tokio::select! {
                record = self.receiver.recv() => match record {
                    Some(record) => break record,
                    None => return false,
                },
                () = Self::stopped(&mut self.stop) => {}
            }
        };
        batch.push(first);
        let flush_at = Instant::now() + self.flush_interval;
        while batch.len() < self.batch_size {
            match self.receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.deadline().is_some() {
                        break;
                    }
                    tokio::select! {
                        record = self.receiver.recv() => match record {
                            Some(record) => batch.push(record),
                            None => break,
                        },
                        () = tokio::time::sleep_until(flush_at) => break,
                        () = Self::stopped(&mut self.stop) => break,
                    }
                }
            }
        }
        self.stats
            .in_flight
            .store(batch.len() as u64, Ordering::Relaxed);
        true
    }

    /// Publishes one batch, retrying until it is stored, refused for good,
    /// or the shutdown deadline passes.
    async fn deliver(&mut self, records: Vec<AccessRecord>) {
        let n = records.len();
        let message = Message {
            body: batch_body(&records),
            content_type: Some("application/json".into()),
            headers: Vec::new(),
            message_id: Some(new_message_id()),
        };
        drop(records);
        let mut delay = RETRY_START;
        let outcome = loop {
            let result = self.attempt(message.clone()).await;
            match result {
                Ok(()) => break Ok(()),
                Err(PublishError::Invalid(e)) => {
                    self.stats.publish_failed(&format!("invalid: {e}"), n, None);
                    break Err("the broker refused the message as invalid");
                }
                Err(e) => {
                    let deadline = self.deadline();
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        self.stats.publish_failed(&e.to_string(), n, None);
                        break Err("shutdown came before they could be published");
                    }
                    self.stats.publish_failed(&e.to_string(), n, Some(delay));
                    let mut wake = Instant::now() + delay;
                    if let Some(d) = deadline {
                        wake = wake.min(d);
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(wake) => {}
                        // Shutting down: try again at once, until the deadline.
                        () = Self::stopped(&mut self.stop), if deadline.is_none() => {}
                    }
                    delay = (delay * 2).min(self.max_retry_delay);
                }
            }
        };
        self.stats.in_flight.store(0, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                self.stats.sent.fetch_add(n as u64, Ordering::Relaxed);
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => self.stats.drop_records(n as u64, why),
        }
    }

    /// One publish, cut short by the shutdown deadline once there is one.
    async fn attempt(&mut self, message: Message) -> Result<(), PublishError> {
        let publish = self.destination.publish(&self.queue, message);
        tokio::pin!(publish);
        loop {
            match deadline_of(&self.stop) {
                Some(deadline) => {
                    return tokio::time::timeout_at(deadline, &mut publish)
                        .await
                        .unwrap_or_else(|_| {
                            Err(PublishError::Unavailable(
                                "the shutdown flush time ran out".into(),
                            ))
                        });
                }
                None => tokio::select! {
                    result = &mut publish => return result,
                    () = Self::stopped(&mut self.stop) => {}
                },
            }
        }
    }
}
