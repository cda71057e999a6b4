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
//! Up to `concurrency` messages are handled at once, each on a fresh
//! instance of the component's current version. A message is acknowledged
//! only after its handler finished *and* its disposition was carried out
//! (the retry or dead-letter copy stored): at-least-once, never lost.
//! On stop, no new message is taken, those in flight finish and are
//! settled, and the rest stay in the queue for the next start.

mod handler;

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::capabilities::messaging::broker::stopped;
use crate::capabilities::messaging::{Outcome, Subscribe};
use crate::runtime::Registry;

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
}

impl QueueConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("name must not be empty".into());
        }
        if self.prefetch == 0 || self.concurrency == 0 || self.max_attempts == 0 {
            return Err("prefetch, concurrency and max_attempts must be at least 1".into());
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
        let delivery = tokio::select! {
            () = stopped(&mut stop) => break,
            delivery = subscription.next() => match delivery {
                Some(delivery) => delivery,
                None => break,
            },
        };
        let (registry, component, config) = (registry.clone(), name.clone(), config.clone());
        running.spawn(async move {
            let name = component;
            let outcome = handler::decide(&registry, &name, &config, &delivery).await;
            let (id, attempt) = (delivery.message.message_id.clone(), delivery.attempt);
            tracing::debug!(component = %name, queue = %config.name, ?id, attempt, ?outcome, "message handled");
            if let Outcome::DeadLetter(reason) = &outcome {
                tracing::warn!(component = %name, queue = %config.name, ?id, attempt, "dead-lettering: {reason}");
            }
            if let Err(error) = delivery.settle(outcome).await {
                tracing::warn!(component = %name, queue = %config.name, ?id, attempt, "settling failed: {error:#}");
            }
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

fn report(name: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(component = %name, "a message task failed: {error}");
    }
}
