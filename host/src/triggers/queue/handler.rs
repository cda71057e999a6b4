//! One message through a component: call `queue-handler.handle` on a fresh
//! instance of the component's current version, and turn what it says (or
//! how it failed) into an [`Outcome`] for the broker.

use std::time::Duration;

use super::QueueConfig;
use crate::bindings::queue_handler::{Delivery as WitDelivery, Disposition};
use crate::capabilities::messaging::{Delivery, Outcome};
use crate::runtime::Registry;
use crate::triggers::{failure, invocation};

/// Runs the handler for `delivery` and decides its outcome.
///
/// A trap, a timeout or a missing component counts as a retry with the
/// queue's exponential back-off; a handler's own `retry(ms)` is honoured up
/// to `max_retry_delay_ms`; a retry (for whatever reason) at attempt
/// `max_attempts` becomes a dead letter instead.
pub async fn decide(
    registry: &Registry,
    component: &str,
    config: &QueueConfig,
    delivery: &Delivery,
) -> Outcome {
    let attempt = delivery.attempt;
    let (delay, why) = match call(registry, component, delivery).await {
        Ok(Disposition::Ack) => return Outcome::Ack,
        Ok(Disposition::Reject(reason)) => {
            return Outcome::DeadLetter(format!("rejected: {reason}"));
        }
        Ok(Disposition::Retry(ms)) => (
            Duration::from_millis(ms.min(config.max_retry_delay_ms)),
            "the handler asked to retry".to_owned(),
        ),
        Err(why) => (backoff(config, attempt), why),
    };
    if attempt >= config.max_attempts {
        return Outcome::DeadLetter(format!(
            "gave up after {attempt} attempts (max_attempts {}): {why}",
            config.max_attempts
        ));
    }
    Outcome::Retry(delay)
}

/// The handler's disposition, or why there is none.
async fn call(
    registry: &Registry,
    component: &str,
    delivery: &Delivery,
) -> Result<Disposition, String> {
    // Looked up per message, so that a redeploy takes effect at the next one.
    let Some(deployment) = registry.current(component) else {
        return Err(format!("component {component:?} is not deployed"));
    };
    let Some(indices) = deployment.entrypoints.queue.as_ref() else {
        return Err(format!(
            "component {component:?} does not export queue-handler"
        ));
    };
    let argument = WitDelivery {
        queue: delivery.queue.clone(),
        message: delivery.message.clone(),
        attempt: delivery.attempt,
    };
    let result = invocation::call(registry, &deployment, async |store, instance| {
        let guest = indices.load(&mut *store, &instance)?;
        guest.call_handle(&mut *store, &argument).await
    })
    .await;
    result.map_err(|error| failure::classify(component, deployment.version, &error).1)
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
}
