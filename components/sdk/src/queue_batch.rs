//! The batched queue trigger's export
//! (`corral:platform/queue-batch-service`): one instance gets many
//! messages. Implement [`QueueBatchHandler`] and export it with
//! [`queue_batch_component!`](crate::queue_batch_component).
//!
//! The handler answers one [`Disposition`] per delivery, in order, or an
//! [`Error`] that stands for the same disposition for every delivery of
//! the batch (see [`crate::queue`] for what `?` makes of the SDK's errors).

trigger_bindings!(
    "corral:platform/queue-batch-service",
    "corral_sdk::queue_batch",
    "export_queue_batch"
);

pub use crate::queue::{DEFAULT_RETRY_MS, Error};
pub use exports::corral::platform::queue_batch_handler::{Delivery, Disposition};

/// What a batch consumer implements: up to the queue's `batch_size`
/// deliveries per call, answered by as many dispositions in the same order.
pub trait QueueBatchHandler {
    fn handle_batch(deliveries: Vec<Delivery>) -> Result<Vec<Disposition>, Error>;
}

impl From<Error> for Disposition {
    fn from(error: Error) -> Self {
        match error {
            Error::Retry { after_ms, .. } => Disposition::Retry(after_ms),
            Error::Reject(reason) => Disposition::Reject(reason),
            Error::Unavailable { after_ms, .. } => Disposition::Unavailable(after_ms),
        }
    }
}

/// Runs `H` for a batch. Used by
/// [`queue_batch_component!`](crate::queue_batch_component).
#[doc(hidden)]
pub fn run<H: QueueBatchHandler>(deliveries: Vec<Delivery>) -> Vec<Disposition> {
    let count = deliveries.len();
    H::handle_batch(deliveries).unwrap_or_else(|error| {
        error.log_retry(count);
        vec![error.into(); count]
    })
}
