//! Moving dead letters back to work: `corral redrive QUEUE`.
//!
//! Once the cause is fixed (a bug deployed away, a backend back), the
//! messages a queue dead-lettered meanwhile are work still to do. Each one
//! is published to its queue again, confirmed, and only then removed from
//! the dead-letter queue: a crash halfway leaves it in both at worst (the
//! consumers already handle a redelivery), never in neither. The host's
//! own headers (dead-letter reason, attempt count) are dropped, so the
//! message starts again at attempt 1 with its id and body unchanged.
//!
//! It works on any [`Broker`] through the consumer interface, so it needs
//! nothing of either backend.

use std::time::Duration;

use super::{Broker, Outcome, PublishError, Subscribe, strip_reserved_headers};

/// How long the dead-letter queue must stay quiet for the move to end.
pub const IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("publishing to {queue:?} failed after {moved} messages: {source}")]
    Publish {
        queue: String,
        moved: u64,
        source: PublishError,
    },
    #[error("removing a moved message from {queue:?} failed after {moved} messages: {source:#}")]
    Remove {
        queue: String,
        moved: u64,
        source: anyhow::Error,
    },
}

/// Moves up to `limit` messages from `from` to `to`, one at a time, until
/// `from` has had nothing to hand out for `idle`. Returns how many moved.
pub async fn redrive(
    broker: &dyn Broker,
    from: &str,
    to: &str,
    limit: u64,
    idle: Duration,
) -> Result<u64, RedriveError> {
    let mut subscription = broker.subscribe(Subscribe {
        queue: from.to_owned(),
        dead_letter: format!("{from}.dead"),
        prefetch: 1,
    });
    let mut moved = 0;
    let result = loop {
        if moved >= limit {
            break Ok(moved);
        }
        let Ok(Some(delivery)) = tokio::time::timeout(idle, subscription.next()).await else {
            break Ok(moved);
        };
        let mut message = delivery.message.clone();
        strip_reserved_headers(&mut message);
        if let Err(source) = broker.publish(to, vec![message]).await {
            // Not moved: dropped unsettled, it goes back to the
            // dead-letter queue as it was.
            drop(delivery);
            break Err(RedriveError::Publish {
                queue: to.to_owned(),
                moved,
                source,
            });
        }
        if let Err(source) = delivery.settle(Outcome::Ack).await {
            break Err(RedriveError::Remove {
                queue: from.to_owned(),
                moved,
                source,
            });
        }
        moved += 1;
    };
    subscription.close().await;
    result
}
