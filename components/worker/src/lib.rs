//! `worker`: seed 001's worker. Consumes the `transactions` queue (queue
//! trigger), runs the fraud rules on each record, records the result
//! durably, and only then lets the host acknowledge the message.
//!
//! - Result: object `results/<batch>/<index>.json` in the blobstore (the
//!   result with the client's whole record), then `result:<batch>:<index>`
//!   in the key-value bucket (the API and the page read it) — both written
//!   before `ack`, the key last, so a result the API shows is always
//!   complete. One object per record, not one per client: a client that
//!   appears twice keeps both results. Three round trips per record in all
//!   (set-if-absent, the object, the key); a redelivery redoes them, which
//!   is harmless since every write is an overwrite of the same content.
//! - The same `_id` seen again within `repeat_window_ms` (default 60 s) is
//!   flagged `repeated_id`: `seen:<_id>` is set-if-absent with that TTL,
//!   holding the message id, so a redelivery of the same message is not
//!   mistaken for a repeat.
//! - A backend error answers `retry`, so the host redelivers later; a
//!   message that is not a record answers `reject` (dead-letter queue).

mod rules;

use corral_sdk::bindings::corral::platform::keyvalue_ext;
use corral_sdk::bindings::wasi::keyvalue::store;
use corral_sdk::queue::{Delivery, Disposition, QueueHandler};
use corral_sdk::{blob, config, log, time};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Event {
    batch: String,
    index: u64,
    #[serde(rename = "record")]
    raw_record: serde_json::Value,
    #[serde(skip)]
    record: rules::Record,
}

struct Worker;

const RETRY_MS: u64 = 1_000;

fn kv_error(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no such bucket".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(m) => m,
    }
}

impl QueueHandler for Worker {
    fn handle(delivery: Delivery) -> Disposition {
        let event = serde_json::from_slice::<Event>(&delivery.message.body).and_then(|mut e| {
            e.record = serde_json::from_value(e.raw_record.clone())?;
            Ok(e)
        });
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                log::warn(
                    "worker",
                    &format!("rejecting a message that is not a record event: {e}"),
                );
                return Disposition::Reject(format!("not a transaction event: {e}"));
            }
        };
        match process(&event, &delivery) {
            Ok(flags) => {
                log::info(
                    "worker",
                    &format!(
                        "batch={} index={} _id={} attempt={} flags={:?}",
                        event.batch, event.index, event.record.id, delivery.attempt, flags
                    ),
                );
                Disposition::Ack
            }
            Err(problem) => {
                log::warn(
                    "worker",
                    &format!(
                        "batch={} index={} attempt={} will retry: {problem}",
                        event.batch, event.index, delivery.attempt
                    ),
                );
                Disposition::Retry(RETRY_MS * u64::from(delivery.attempt.min(30)))
            }
        }
    }
}

fn process(event: &Event, delivery: &Delivery) -> Result<Vec<&'static str>, String> {
    let bucket = store::open(&config::get_or("bucket", "transactions")).map_err(kv_error)?;
    let result_key = format!("result:{}:{}", event.batch, event.index);
    let now = time::now_millis();
    let mut flags = rules::check(&event.record, now);
    let message_id = delivery
        .message
        .message_id
        .clone()
        .unwrap_or_else(|| format!("{}:{}", event.batch, event.index));
    let window = config::get("repeat_window_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let seen_key = format!("seen:{}", event.record.id);
    let first =
        keyvalue_ext::set_if_absent(&bucket, &seen_key, message_id.as_bytes(), Some(window))
            .map_err(kv_error)?;
    if !first {
        let holder = bucket.get(&seen_key).map_err(kv_error)?;
        if holder.as_deref() != Some(message_id.as_bytes()) {
            flags.push("repeated_id");
        }
    }
    let result = json!({
        "_id": event.record.id,
        "batch": event.batch,
        "index": event.index,
        "flags": flags,
        "status": if flags.is_empty() { "ok" } else { "flagged" },
        "processed_at": time::format_unix_millis(now),
    });
    let object = json!({ "result": result, "record": event.raw_record });
    let container =
        blob::open_or_create(&config::get_or("container", "transactions")).map_err(|e| e.0)?;
    container
        .put(
            &format!("results/{}/{}.json", event.batch, event.index),
            &serde_json::to_vec(&object).expect("serializable"),
        )
        .map_err(|e| e.0)?;
    let result = serde_json::to_vec(&result).expect("serializable");
    bucket.set(&result_key, &result).map_err(kv_error)?;
    Ok(flags)
}

corral_sdk::queue_component!(Worker);
