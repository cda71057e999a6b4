//! Messages through a component: call its handler on a fresh instance of
//! the version current when the messages were taken, and turn what it says
//! (or how it failed) into an [`Outcome`] per message for the broker.
//!
//! A `queue-handler` component gets one instance per message; a
//! `queue-batch-handler` component one instance per batch.

use std::sync::Arc;
use std::time::Duration;

use super::QueueConfig;
use crate::bindings::queue_batch_handler::{
    self, Delivery as WitBatchDelivery, Disposition as BatchDisposition,
};
use crate::bindings::queue_handler::{self, Delivery as WitDelivery, Disposition};
use crate::broker::{Delivery, Outcome};
use crate::runtime::Registry;
use crate::runtime::deployment::{Deployment, QueueEntry};
use crate::triggers::{failure, invocation};

/// Runs `deployment`'s handler for `deliveries` and decides an outcome for
/// each, in order.
///
/// A trap, a timeout or a missing component counts as a retry with the
/// queue's exponential back-off (for every message of a batch); a
/// handler's own `retry(ms)` is honoured up to `max_retry_delay_ms`; a retry
/// (for whatever reason) at attempt `max_attempts` becomes a dead letter
/// instead.
pub async fn decide(
    registry: &Registry,
    component: &str,
    config: &QueueConfig,
    deployment: Option<Arc<Deployment>>,
    deliveries: &[Delivery],
) -> Vec<Outcome> {
    let answers = match deployment {
        None => vec![Err(NoAnswer::NotDeployed(component.to_owned())); deliveries.len()],
        Some(deployment) => match &deployment.entrypoints.queue {
            None => vec![Err(NoAnswer::NoHandler(component.to_owned())); deliveries.len()],
            Some(QueueEntry::Batch(indices)) => {
                match call_batch(registry, &deployment, indices, deliveries).await {
                    Ok(dispositions) => dispositions.into_iter().map(Ok).collect(),
                    Err(why) => vec![Err(why); deliveries.len()],
                }
            }
            Some(QueueEntry::Single(indices)) => {
                let mut answers = Vec::with_capacity(deliveries.len());
                for delivery in deliveries {
                    answers.push(call_one(registry, &deployment, indices, delivery).await);
                }
                answers
            }
        },
    };
    deliveries
        .iter()
        .zip(answers)
        .map(|(delivery, answer)| outcome(config, delivery.attempt, answer))
        .collect()
}

/// What the queue does with a message given the handler's answer.
fn outcome(config: &QueueConfig, attempt: u32, answer: Result<Disposition, NoAnswer>) -> Outcome {
    let (delay, why) = match answer {
        Ok(Disposition::Ack) => return Outcome::Ack,
        Ok(Disposition::Reject(reason)) => {
            return Outcome::DeadLetter(format!("rejected: {reason}"));
        }
        Ok(Disposition::Retry(ms)) => (
            Duration::from_millis(ms.min(config.max_retry_delay_ms)),
            "the handler asked to retry".to_owned(),
        ),
        // Not an attempt: the handler could not try. The trigger turns the
        // delay into the queue's pause (see `pause.rs`).
        Ok(Disposition::Unavailable(ms)) => {
            return Outcome::Postpone(Duration::from_millis(ms.min(config.max_pause_ms)));
        }
        Err(why) => (backoff(config, attempt), why.to_string()),
    };
    if attempt >= config.max_attempts {
        return Outcome::DeadLetter(format!(
            "gave up after {attempt} attempts (max_attempts {}): {why}",
            config.max_attempts
        ));
    }
    Outcome::Retry(delay)
}

/// `queue-handler.handle` for one message.
async fn call_one(
    registry: &Registry,
    deployment: &Arc<Deployment>,
    indices: &queue_handler::GuestIndices,
    delivery: &Delivery,
) -> Result<Disposition, NoAnswer> {
    let argument = WitDelivery {
        queue: delivery.queue.clone(),
        message: delivery.message.clone().into(),
        attempt: delivery.attempt,
    };
    let result = invocation::call(registry, deployment, async |store, instance| {
        let guest = indices.load(&mut *store, &instance)?;
        guest.call_handle(&mut *store, &argument).await
    })
    .await;
    result.map_err(|error| failed(deployment, &error))
}

/// `queue-batch-handler.handle-batch` for all of `deliveries` at once.
async fn call_batch(
    registry: &Registry,
    deployment: &Arc<Deployment>,
    indices: &queue_batch_handler::GuestIndices,
    deliveries: &[Delivery],
) -> Result<Vec<Disposition>, NoAnswer> {
    let argument: Vec<WitBatchDelivery> = deliveries
        .iter()
        .map(|delivery| WitBatchDelivery {
            queue: delivery.queue.clone(),
            message: delivery.message.clone().into(),
            attempt: delivery.attempt,
        })
        .collect();
    let result = invocation::call(registry, deployment, async |store, instance| {
        let guest = indices.load(&mut *store, &instance)?;
        guest.call_handle_batch(&mut *store, &argument).await
    })
    .await;
    let dispositions = result.map_err(|error| failed(deployment, &error))?;
    if dispositions.len() != deliveries.len() {
        let why = NoAnswer::WrongCount {
            got: dispositions.len(),
            expected: deliveries.len(),
        };
        tracing::warn!(component = %deployment.component, version = deployment.version, "{why}");
        return Err(why);
    }
    Ok(dispositions
        .into_iter()
        .map(|d| match d {
            BatchDisposition::Ack => Disposition::Ack,
            BatchDisposition::Retry(ms) => Disposition::Retry(ms),
            BatchDisposition::Reject(reason) => Disposition::Reject(reason),
            BatchDisposition::Unavailable(ms) => Disposition::Unavailable(ms),
        })
        .collect())
}

fn failed(deployment: &Deployment, error: &wasmtime::Error) -> NoAnswer {
    NoAnswer::Failed(failure::classify(&deployment.component, deployment.version, error).message)
}

/// Why a message got no disposition from its handler: each counts as a
/// retry with the queue's back-off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum NoAnswer {
    #[error("component {0:?} is not deployed")]
    NotDeployed(String),
    #[error("component {0:?} does not export a queue handler")]
    NoHandler(String),
    /// The call failed (trap, timeout...): the classified message.
    #[error("{0}")]
    Failed(String),
    #[error("handle-batch returned {got} dispositions for {expected} deliveries")]
    WrongCount { got: usize, expected: usize },
}

/// `retry_delay_ms` doubled per attempt already made, at most
/// `max_retry_delay_ms`.
pub fn backoff(config: &QueueConfig, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let ms = config
        .retry_delay_ms
        .saturating_mul(1u64 << doublings)
        .min(config.max_retry_delay_ms);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> QueueConfig {
        toml::from_str("name = \"q\"\nretry_delay_ms = 100\nmax_retry_delay_ms = 1000").unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = config();
        let ms = |a| backoff(&c, a).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(5), ms(99)],
            [100, 200, 400, 800, 1000, 1000]
        );
    }

    #[test]
    fn outcomes_follow_the_answer_and_the_attempt() {
        let mut c = config();
        c.max_attempts = 3;
        assert_eq!(outcome(&c, 1, Ok(Disposition::Ack)), Outcome::Ack);
        assert_eq!(
            outcome(&c, 1, Ok(Disposition::Retry(50_000))),
            Outcome::Retry(Duration::from_millis(1000)),
            "a handler's delay is capped"
        );
        assert_eq!(
            outcome(&c, 2, Err(NoAnswer::Failed("trapped".into()))),
            Outcome::Retry(Duration::from_millis(200))
        );
        assert!(matches!(
            outcome(&c, 3, Err(NoAnswer::Failed("trapped".into()))),
            Outcome::DeadLetter(reason) if reason.contains("gave up after 3 attempts") && reason.contains("trapped")
        ));
        assert_eq!(
            outcome(&c, 1, Ok(Disposition::Reject("bad".into()))),
            Outcome::DeadLetter("rejected: bad".into())
        );
        // An outage is no attempt: even the last one is postponed, capped
        // at the longest pause.
        c.max_pause_ms = 60_000;
        assert_eq!(
            outcome(&c, 3, Ok(Disposition::Unavailable(999_999))),
            Outcome::Postpone(Duration::from_secs(60))
        );
    }
}
