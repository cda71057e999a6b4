//! The queue trigger: runs a component's `queue-handler.handle` for each
//! message of a queue.
//!
//! ```toml
//! [[component]]
//! name = "worker"
//! wasm = "worker.wasm"
//! queue = { name = "transactions", concurrency = 1, max_attempts = 5 }
//! ```
//!
//! A component exporting `queue-handler` gets each message on a fresh
//! instance of its current version, up to `concurrency` at once. One
//! exporting `queue-batch-handler` gets up to `batch_size` messages per
//! instance, up to `concurrency` batches at once: a batch is what the broker
//! has already sent, topped up for at most `batch_wait_ms`, so a quiet queue
//! still gets its messages handled at once. A message is acknowledged
//! only after its handler finished *and* its disposition was carried out
//! (the retry or dead-letter copy stored): at-least-once, never lost.
//! On stop, no new message is taken, those in flight finish and are
//! settled, and the rest stay in the queue for the next start.

mod handler;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::capabilities::messaging::broker::stopped;
use crate::capabilities::messaging::{Delivery, Outcome, Subscribe, Subscription};
use crate::runtime::Registry;
use crate::runtime::deployment::QueueEntry;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The queue to consume (without the host's `queue_prefix`).
    pub name: String,
    /// How many messages the broker hands out before acknowledgements.
    #[serde(default = "defaults::prefetch")]
    pub prefetch: u16,
    /// How many messages are handled at once.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: u32,
    /// Deliveries before a message goes to the dead-letter queue.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// First retry delay when the handler traps or times out; doubles per
    /// attempt up to `max_retry_delay_ms`.
    #[serde(default = "defaults::retry_delay_ms")]
    pub retry_delay_ms: u64,
    #[serde(default = "defaults::max_retry_delay_ms")]
    pub max_retry_delay_ms: u64,
    /// Where dead messages go; defaults to `<name>.dead`.
    pub dead_letter: Option<String>,
    /// Most messages per call of a `queue-batch-handler` component.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: u32,
    /// How long a batch waits for more messages once it has its first.
    #[serde(default = "defaults::batch_wait_ms")]
    pub batch_wait_ms: u64,
}

mod defaults {
    pub fn prefetch() -> u16 {
        32
    }
    pub fn concurrency() -> u32 {
        4
    }
    pub fn max_attempts() -> u32 {
        5
    }
    pub fn retry_delay_ms() -> u64 {
        1_000
    }
    pub fn max_retry_delay_ms() -> u64 {
        60_000
    }
    pub fn batch_size() -> u32 {
        100
    }
    pub fn batch_wait_ms() -> u64 {
        5
    }
}

/// The most messages one batch call may carry.
pub const MAX_BATCH_SIZE: u32 = 1_000;

impl QueueConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("name must not be empty".into());
        }
        if self.prefetch == 0 || self.concurrency == 0 || self.max_attempts == 0 {
            return Err("prefetch, concurrency and max_attempts must be at least 1".into());
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(format!(
                "batch_size must be between 1 and {MAX_BATCH_SIZE}, not {}",
                self.batch_size
            ));
        }
        if self.batch_wait_ms > 10_000 {
            return Err(format!(
                "batch_wait_ms must be at most 10000, not {}",
                self.batch_wait_ms
            ));
        }
        Ok(())
    }

    pub fn dead_letter_queue(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}.dead", self.name))
    }
}

/// Consumes `config.name` for component `name` until `stop` turns true.
pub async fn run(
    registry: Arc<Registry>,
    name: String,
    config: QueueConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let broker = loop {
        match registry.capabilities().messaging.broker() {
            Ok(broker) => break broker,
            Err(error) => {
                tracing::error!(component = %name, queue = %config.name, "no messaging backend: {error:#}; retrying");
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
            }
        }
    };
    if config.concurrency > u32::from(config.prefetch) {
        tracing::warn!(
            component = %name,
            queue = %config.name,
            "concurrency {} is above prefetch {}: at most {} messages are handled at once",
            config.concurrency,
            config.prefetch,
            config.prefetch
        );
    }
    let mut subscription = broker.subscribe(Subscribe {
        queue: config.name.clone(),
        dead_letter: config.dead_letter_queue(),
        prefetch: config.prefetch,
    });
    tracing::info!(component = %name, queue = %config.name, concurrency = config.concurrency, "queue trigger started");
    let slots = Arc::new(Semaphore::new(config.concurrency as usize));
    let config = Arc::new(config);
    let mut running = JoinSet::new();
    loop {
        let slot = tokio::select! {
            () = stopped(&mut stop) => break,
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
        };
        let first = tokio::select! {
            () = stopped(&mut stop) => break,
            delivery = subscription.next() => match delivery {
                Some(delivery) => delivery,
                None => break,
            },
        };
        // The version current when the messages were taken handles them, so
        // a redeploy takes effect from the next batch on.
        let deployment = registry.current(&name);
        let mut batch = vec![first];
        if let Some(QueueEntry::Batch(_)) = deployment
            .as_ref()
            .and_then(|d| d.entrypoints.queue.as_ref())
        {
            top_up(&mut subscription, &mut batch, &config, &mut stop).await;
        }
        let (registry, component, config) = (registry.clone(), name.clone(), config.clone());
        running.spawn(async move {
            let name = component;
            let outcomes = handler::decide(&registry, &name, &config, deployment, &batch).await;
            let settled = batch.into_iter().zip(outcomes).map(|(delivery, outcome)| {
                let (name, queue) = (&name, &config.name);
                async move {
                    let (id, attempt) = (delivery.message.message_id.clone(), delivery.attempt);
                    tracing::debug!(component = %name, %queue, ?id, attempt, ?outcome, "message handled");
                    if let Outcome::DeadLetter(reason) = &outcome {
                        tracing::warn!(component = %name, %queue, ?id, attempt, "dead-lettering: {reason}");
                    }
                    if let Err(error) = delivery.settle(outcome).await {
                        tracing::warn!(component = %name, %queue, ?id, attempt, "settling failed: {error:#}");
                    }
                }
            });
            // Settled together: the broker acknowledges a batch in one go.
            futures::future::join_all(settled).await;
            drop(slot);
        });
        while let Some(done) = running.try_join_next() {
            report(&name, done);
        }
    }
    tracing::info!(component = %name, queue = %config.name, in_flight = running.len(), "queue trigger stopping");
    while let Some(done) = running.join_next().await {
        report(&name, done);
    }
    subscription.close().await;
    tracing::info!(component = %name, queue = %config.name, "queue trigger stopped");
}

/// Adds to `batch` what the broker has already sent, then what arrives
/// within `batch_wait_ms`, up to `batch_size` messages. Stops early (with
/// the messages taken so far) when the trigger is told to stop.
async fn top_up(
    subscription: &mut Subscription,
    batch: &mut Vec<Delivery>,
    config: &QueueConfig,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let size = config.batch_size as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(config.batch_wait_ms);
    while batch.len() < size {
        // What is already there is taken without `next()`, which spends
        // tokio's cooperative budget: a batch larger than that budget would
        // otherwise be cut short once the wait is over.
        if let Some(delivery) = subscription.try_next() {
            batch.push(delivery);
            continue;
        }
        tokio::select! {
            () = stopped(stop) => return,
            next = tokio::time::timeout_at(deadline, subscription.next()) => match next {
                Ok(Some(delivery)) => batch.push(delivery),
                Ok(None) | Err(_) => return,
            },
        }
    }
}

fn report(name: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(component = %name, "a message task failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> QueueConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn batch_settings_have_defaults_and_bounds() {
        let config = parse("name = \"q\"");
        assert_eq!((config.batch_size, config.batch_wait_ms), (100, 5));
        assert_eq!(config.validate(), Ok(()));
        for (toml, problem) in [
            (
                "name = \"q\"\nbatch_size = 0",
                "batch_size must be between 1 and 1000, not 0",
            ),
            (
                "name = \"q\"\nbatch_size = 1001",
                "batch_size must be between 1 and 1000, not 1001",
            ),
            (
                "name = \"q\"\nbatch_wait_ms = 10001",
                "batch_wait_ms must be at most 10000, not 10001",
            ),
        ] {
            assert_eq!(parse(toml).validate(), Err(problem.to_owned()));
        }
    }
}
