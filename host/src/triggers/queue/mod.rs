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
//! settled, and the rest stay in the queue for the next start. While a
//! handler reports a backend unavailable, the queue pauses (`pause.rs`).

mod config;
mod handler;
mod pause;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use config::{MAX_BATCH_SIZE, QueueConfig};

use crate::broker::{Delivery, LazyBroker, Outcome, Subscribe, Subscription};
use crate::runtime::Registry;
use crate::runtime::deployment::QueueEntry;
use crate::shutdown::Shutdown;
use pause::Pause;

/// Consumes `config.name` from `broker` for component `name` until `stop`
/// fires.
pub async fn run(
    registry: Arc<Registry>,
    broker: Arc<LazyBroker>,
    name: String,
    config: QueueConfig,
    mut stop: Shutdown,
) {
    let broker = loop {
        match broker.get() {
            Ok(broker) => break broker,
            Err(error) => {
                tracing::error!(component = %name, queue = %config.name, "no messaging backend: {error:#}; retrying");
                tokio::select! {
                    () = stop.wait() => return,
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
    let pause = Arc::new(Pause::new(Duration::from_millis(config.max_pause_ms)));
    let config = Arc::new(config);
    let mut running = JoinSet::new();
    loop {
        let slot = tokio::select! {
            () = stop.wait() => break,
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
        };
        // Paused: a backend is down, and new messages would only fail too.
        if let Some(until) = pause.until() {
            tokio::select! {
                () = stop.wait() => break,
                () = tokio::time::sleep_until(until) => {}
            }
        }
        let first = tokio::select! {
            () = stop.wait() => break,
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
        let pause = pause.clone();
        running.spawn(async move {
            let name = component;
            let outcomes = handler::decide(&registry, &name, &config, deployment, &batch).await;
            let outcomes = paced(&pause, &name, &config.name, outcomes);
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
    stop: &mut Shutdown,
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
            () = stop.wait() => return,
            next = tokio::time::timeout_at(deadline, subscription.next()) => match next {
                Ok(Some(delivery)) => batch.push(delivery),
                Ok(None) | Err(_) => return,
            },
        }
    }
}

/// Turns the handler's `unavailable` answers into the queue's pause: each
/// such message is postponed for as long as the queue is paused. Any other
/// answer (the backends worked) ends the pause.
fn paced(pause: &Pause, component: &str, queue: &str, outcomes: Vec<Outcome>) -> Vec<Outcome> {
    let down = outcomes.iter().any(|o| matches!(o, Outcome::Postpone(_)));
    if !down {
        if pause.recovered() {
            tracing::info!(component, queue, "backends answer again; queue resumed");
        }
        return outcomes;
    }
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Postpone(hint) => {
                let paused = pause.unavailable(hint);
                if paused.escalated {
                    tracing::warn!(
                        component,
                        queue,
                        pause_ms = paused.delay.as_millis() as u64,
                        "a backend of the handler is unavailable; pausing the queue (messages are postponed, not counted as attempts)"
                    );
                }
                Outcome::Postpone(paused.delay)
            }
            other => other,
        })
        .collect()
}

fn report(name: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(component = %name, "a message task failed: {error}");
    }
}
