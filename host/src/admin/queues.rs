//! `POST /v1/queues/{queue}/redrive[?limit=N]`: moves the queue's dead
//! letters back to it (see `broker::redrive`). Answers
//! `{"queue", "from", "moved"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;

use crate::broker::LazyBroker;
use crate::broker::redrive;
use crate::responses::HostError;

/// Most messages one call moves; call again for more.
pub const MAX_LIMIT: u64 = 1_000_000;

/// The broker, and where each consumed queue's dead letters go.
pub struct Queues {
    broker: Arc<LazyBroker>,
    /// Queue → its dead-letter queue, for queues a component consumes
    /// (a `dead_letter` setting may name another one than `<queue>.dead`).
    dead_letters: BTreeMap<String, String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Redriven {
    pub queue: String,
    pub from: String,
    pub moved: u64,
}

impl Queues {
    pub fn new(broker: Arc<LazyBroker>, dead_letters: Vec<(String, String)>) -> Self {
        Self {
            broker,
            dead_letters: dead_letters.into_iter().collect(),
        }
    }

    /// The dead-letter queue of `queue`.
    pub fn dead_letter_of(&self, queue: &str) -> String {
        self.dead_letters
            .get(queue)
            .cloned()
            .unwrap_or_else(|| format!("{queue}.dead"))
    }

    pub async fn redrive(&self, queue: &str, query: Option<&str>) -> Result<Redriven, HostError> {
        let limit = limit(query)?;
        let from = self.dead_letter_of(queue);
        let broker = self.broker.get().map_err(|e| {
            HostError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                format!("no messaging backend: {e:#}"),
            )
        })?;
        match redrive::redrive(broker.as_ref(), &from, queue, limit, redrive::IDLE).await {
            Ok(moved) => {
                tracing::info!(queue, from, moved, "dead letters moved back");
                Ok(Redriven {
                    queue: queue.to_owned(),
                    from,
                    moved,
                })
            }
            Err(error) => {
                tracing::warn!(queue, from, "redrive stopped: {error}");
                // Either way the broker failed midway: what moved stays
                // moved, and the answer says how many.
                Err(HostError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backend_unavailable",
                    error.to_string(),
                ))
            }
        }
    }
}

/// `limit=N` of the query string: 1 to [`MAX_LIMIT`], all of them by
/// default.
fn limit(query: Option<&str>) -> Result<u64, HostError> {
    let Some(value) = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("limit="))
    else {
        return Ok(MAX_LIMIT);
    };
    match value.parse::<u64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(HostError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("limit {value:?} must be a whole number from 1 to {MAX_LIMIT}"),
        )
        .field("limit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(limit(None).unwrap(), MAX_LIMIT);
        assert_eq!(limit(Some("x=1&limit=25")).unwrap(), 25);
        for bad in ["limit=0", "limit=-1", "limit=ten", "limit=1000001"] {
            assert!(limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn dead_letter_queues_follow_the_consumers_settings() {
        let broker = Arc::new(LazyBroker::new(Default::default(), Vec::new()));
        let queues = Queues::new(broker, vec![("work".into(), "graveyard".into())]);
        assert_eq!(queues.dead_letter_of("work"), "graveyard");
        assert_eq!(queues.dead_letter_of("jobs"), "jobs.dead");
    }
}
