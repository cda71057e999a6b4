//! `batch-probe`: a test component for the batched queue trigger (it
//! exports `queue-batch-handler`). Each message's body says what to answer
//! for it:
//!
//! | body             | disposition                                       |
//! |------------------|---------------------------------------------------|
//! | `ack` (or other) | `ack`                                             |
//! | `retry`          | `retry(100)`                                      |
//! | `reject:REASON`  | `reject(REASON)`                                  |
//! | `trap`           | the whole call panics (every message is retried)  |
//! | `short`          | the call answers one disposition too few          |
//!
//! It logs one line per call (`batch size=N ids=A,B,...`) and one per
//! message (`handled queue=Q id=ID attempt=N body=B -> D`), so a test can
//! see how messages were grouped and follow each delivery.

use corral_sdk::log;
use corral_sdk::queue_batch::{Delivery, Disposition, Error, QueueBatchHandler};

struct Probe;

impl QueueBatchHandler for Probe {
    fn handle_batch(deliveries: Vec<Delivery>) -> Result<Vec<Disposition>, Error> {
        let ids: Vec<&str> = deliveries
            .iter()
            .map(|d| d.message.message_id.as_deref().unwrap_or("-"))
            .collect();
        log::info(
            "batch",
            &format!("batch size={} ids={}", deliveries.len(), ids.join(",")),
        );
        let mut dispositions = Vec::with_capacity(deliveries.len());
        let (mut trap, mut short) = (false, false);
        for (delivery, id) in deliveries.iter().zip(&ids) {
            let body = delivery.message.body_text();
            let (disposition, label) = match body.split_once(':').unwrap_or((body.as_str(), "")) {
                ("retry", _) => (Disposition::Retry(100), "retry"),
                ("reject", reason) => (Disposition::Reject(reason.to_owned()), "reject"),
                ("trap", _) => {
                    trap = true;
                    (Disposition::Ack, "trap")
                }
                ("short", _) => {
                    short = true;
                    (Disposition::Ack, "short")
                }
                _ => (Disposition::Ack, "ack"),
            };
            log::info(
                "handled",
                &format!(
                    "handled queue={} id={id} attempt={} body={body} -> {label}",
                    delivery.queue, delivery.attempt
                ),
            );
            dispositions.push(disposition);
        }
        if trap {
            panic!("a message asked for a trap");
        }
        if short {
            dispositions.pop();
        }
        Ok(dispositions)
    }
}

corral_sdk::queue_batch_component!(Probe);
