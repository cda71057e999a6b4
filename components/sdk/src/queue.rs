//! The queue trigger's export (`corral:platform/queue-service`): a consumer
//! that takes one message per instance. Implement [`QueueHandler`] and
//! export it with [`queue_component!`](crate::queue_component).
//!
//! The handler answers a [`Disposition`], or an [`Error`] that stands for
//! one: `?` turns a backend failure (key-value, blobstore, messaging,
//! config, outbound HTTP) into a retry after [`DEFAULT_RETRY_MS`], and a
//! body that does not decode as JSON into a reject (a poison message goes
//! to the dead-letter queue instead of failing again).
//!
//! ```ignore
//! use corral_sdk::queue::{Delivery, Disposition, Error, QueueHandler};
//!
//! struct Audit;
//! impl QueueHandler for Audit {
//!     fn handle(delivery: Delivery) -> Result<Disposition, Error> {
//!         let event: serde_json::Value = serde_json::from_slice(&delivery.message.body)?;
//!         corral_sdk::kv::open("audit")?.set_json(&event["id"].to_string(), &event)?;
//!         Ok(Disposition::Ack)
//!     }
//! }
//! corral_sdk::queue_component!(Audit);
//! ```

use crate::log;

trigger_bindings!(
    "corral:platform/queue-service",
    "corral_sdk::queue",
    "export_queue"
);

pub use exports::corral::platform::queue_handler::{Delivery, Disposition};

/// What a queue consumer implements: one message per call.
pub trait QueueHandler {
    fn handle(delivery: Delivery) -> Result<Disposition, Error>;
}

/// The delay of [`Error::retry`], and so of every error converted by `?`.
/// The host caps it at the queue's `max_retry_delay_ms`.
pub const DEFAULT_RETRY_MS: u64 = 1_000;

/// A message that could not be handled, and what the queue should do with
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Try again after `after_ms`; after the queue's `max_attempts` the
    /// message goes to the dead-letter queue. The reason is logged (a
    /// disposition has no room for it).
    Retry { after_ms: u64, reason: String },
    /// A poison message: straight to the dead-letter queue with the reason.
    Reject(String),
    /// A backend the handler needs is down: deliver the message again after
    /// `after_ms`, without counting an attempt; the queue pauses meanwhile.
    Unavailable { after_ms: u64, reason: String },
}

impl Error {
    /// Retry after [`DEFAULT_RETRY_MS`].
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::retry_after(DEFAULT_RETRY_MS, reason)
    }

    /// Retry after `after_ms` milliseconds.
    pub fn retry_after(after_ms: u64, reason: impl Into<String>) -> Self {
        Self::Retry {
            after_ms,
            reason: reason.into(),
        }
    }

    /// Dead-letter the message.
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::Reject(reason.into())
    }

    /// A backend is down: postpone without counting an attempt, after
    /// [`DEFAULT_RETRY_MS`] (the host doubles the pause while it lasts).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            after_ms: DEFAULT_RETRY_MS,
            reason: reason.into(),
        }
    }

    /// [`Error::unavailable`] when `unavailable` is true, else
    /// [`Error::retry`]: what a backend's failure stands for.
    fn backend(unavailable: bool, reason: String) -> Self {
        match unavailable {
            true => Self::unavailable(reason),
            false => Self::retry(reason),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Retry { reason, .. }
            | Self::Reject(reason)
            | Self::Unavailable { reason, .. } => reason,
        }
    }

    /// Logs a retry's reason, which the disposition cannot carry.
    pub(crate) fn log_retry(&self, messages: usize) {
        if let Self::Retry { after_ms, reason } | Self::Unavailable { after_ms, reason } = self {
            let what = if messages == 1 {
                "the message".to_owned()
            } else {
                format!("{messages} messages")
            };
            log::warn(
                "queue",
                &format!("{what} will retry in {after_ms} ms: {reason}"),
            );
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Error {}

impl From<Error> for Disposition {
    fn from(error: Error) -> Self {
        match error {
            Error::Retry { after_ms, .. } => Disposition::Retry(after_ms),
            Error::Reject(reason) => Disposition::Reject(reason),
            Error::Unavailable { after_ms, .. } => Disposition::Unavailable(after_ms),
        }
    }
}

/// A body that does not decode will not decode next time either: reject.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::reject(format!("not the expected JSON: {e}"))
    }
}

/// The store is down: postponed, not an attempt. Anything else: retry.
impl From<crate::kv::Error> for Error {
    fn from(e: crate::kv::Error) -> Self {
        Self::backend(e.is_unavailable(), e.to_string())
    }
}

/// The store is down: postponed, not an attempt. Anything else: retry.
impl From<crate::blob::Error> for Error {
    fn from(e: crate::blob::Error) -> Self {
        Self::backend(e.is_unavailable(), e.0)
    }
}

/// The broker is down: postponed, not an attempt. A refused grant or
/// argument is retried, and ends in the dead-letter queue after
/// `max_attempts` like any retry.
impl From<crate::messaging::Error> for Error {
    fn from(e: crate::messaging::Error) -> Self {
        let unavailable = matches!(e, crate::messaging::Error::Unavailable(_));
        Self::backend(unavailable, format!("{}: {}", e.code(), e.detail()))
    }
}

/// Retry: a redeploy with the setting fixes it.
impl From<crate::config::Error> for Error {
    fn from(e: crate::config::Error) -> Self {
        Self::retry(e.to_string())
    }
}

/// Retry: the destination may answer by then.
impl From<crate::client::ClientError> for Error {
    fn from(e: crate::client::ClientError) -> Self {
        Self::retry(e.to_string())
    }
}

/// Runs `H` for one delivery. Used by [`queue_component!`](crate::queue_component).
#[doc(hidden)]
pub fn run<H: QueueHandler>(delivery: Delivery) -> Disposition {
    H::handle(delivery).unwrap_or_else(|error| {
        error.log_retry(1);
        error.into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stand_for_dispositions() {
        let poison = Error::from(serde_json::from_slice::<u8>(b"x").unwrap_err());
        assert!(matches!(
            Disposition::from(poison),
            Disposition::Reject(reason) if reason.starts_with("not the expected JSON: ")
        ));
        let down = Error::from(crate::kv::Error::Other("down".into()));
        assert_eq!(down.to_string(), "down");
        assert!(matches!(
            Disposition::from(down),
            Disposition::Retry(DEFAULT_RETRY_MS)
        ));
        let batch = crate::queue_batch::Disposition::from(Error::retry_after(5, "later"));
        assert!(matches!(batch, crate::queue_batch::Disposition::Retry(5)));
        // An outage postpones instead of spending an attempt.
        let outage = Error::from(crate::kv::Error::Other(
            "unavailable: keyvalue get: redis at 127.0.0.1:6379 is unreachable".into(),
        ));
        assert!(matches!(
            Disposition::from(outage),
            Disposition::Unavailable(DEFAULT_RETRY_MS)
        ));
        let outage = Error::from(crate::blob::Error("unavailable: put: timeout".into()));
        assert!(matches!(
            crate::queue_batch::Disposition::from(outage),
            crate::queue_batch::Disposition::Unavailable(DEFAULT_RETRY_MS)
        ));
        let down = Error::from(crate::messaging::Error::Unavailable("no broker".into()));
        assert!(matches!(down, Error::Unavailable { .. }));
    }
}
