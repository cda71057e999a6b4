//! `worker`: seed 001's worker. Consumes the `transactions` queue in batches
//! (queue trigger, `queue-batch-handler`: one instance per batch of
//! messages), runs the fraud rules on each record, records the results
//! durably, and only then lets the host acknowledge the messages.
//!
//! A batch costs a handful of round trips, whatever its size:
//!
//! 1. `seen:<_id>` for every record in one `set-many-if-absent` (TTL
//!    `repeat_window_ms`, default 60 s, holding the message id), then one
//!    `get-many` for the ids already seen: a holder other than this message
//!    means the same `_id` came again within the window (`repeated_id`); a
//!    redelivery of the same message is not a repeat.
//! 2. One object per upload batch in the message batch,
//!    `results/<batch>/<first index>-<hash of the indices>.json`, holding
//!    each record's result with the client's whole record. Its name depends
//!    only on which records it holds, so a redelivered message batch
//!    rewrites the same object; a record regrouped differently on
//!    redelivery lands in a second object with the same content.
//! 3. `result:<batch>:<index>` for every record in one `set-many` (the API
//!    and the page read them), naming the object that holds the record.
//!    Written last, so a result the API shows is always complete.
//!
//! A backend error answers `retry` for every record of the batch (each
//! write is an overwrite, so redoing them is harmless); a message that is
//! not a record event answers `reject` (dead-letter queue) on its own.

mod rules;

use std::collections::BTreeMap;
use std::time::Duration;

use corral_sdk::queue_batch::{Delivery, Disposition, Error, QueueBatchHandler};
use corral_sdk::{audit, blob, config, kv, log, time};
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

/// A well-formed event with where it came from.
struct Item<'a> {
    /// Position in the message batch (and in the dispositions).
    position: usize,
    event: Event,
    delivery: &'a Delivery,
}

struct Worker;

const RETRY_MS: u64 = 1_000;

impl QueueBatchHandler for Worker {
    /// Always `Ok`: a failure gets a disposition per message (retry for the
    /// records, each after its own delay, reject for a malformed message).
    fn handle_batch(deliveries: Vec<Delivery>) -> Result<Vec<Disposition>, Error> {
        let mut dispositions = vec![Disposition::Ack; deliveries.len()];
        let mut items = Vec::with_capacity(deliveries.len());
        for (position, delivery) in deliveries.iter().enumerate() {
            match parse(&delivery.message.body) {
                Ok(event) => items.push(Item {
                    position,
                    event,
                    delivery,
                }),
                Err(e) => {
                    log::warn(
                        "worker",
                        &format!("rejecting a message that is not a record event: {e}"),
                    );
                    dispositions[position] =
                        Disposition::Reject(format!("not a transaction event: {e}"));
                    let id = delivery.message.message_id.as_deref().unwrap_or("-");
                    audit::send(&[audit::Record::new(SERVICE, "-", "reject_message")
                        .failure(format!("not a transaction event: {e}"))
                        .with("message_id", id)]);
                }
            }
        }
        if items.is_empty() {
            return Ok(dispositions);
        }
        let groups = by_upload_batch(&items);
        if let Err(problem) = process(&items, &groups) {
            let attempt = items.iter().map(|i| i.delivery.attempt).max().unwrap_or(1);
            audit::send(&[audit::Record::new(SERVICE, "-", "process_batch")
                .failure(problem.to_string())
                .with("records", items.len())
                .with("attempt", attempt)]);
            for (batch, members) in &groups {
                log::warn(
                    "worker",
                    &format!(
                        "batch={batch} attempt={attempt} {} records will retry: {problem}",
                        members.len()
                    ),
                );
            }
            for item in &items {
                dispositions[item.position] = match problem {
                    // A store is down: the records wait for it, without
                    // spending attempts (the host pauses the queue).
                    Error::Unavailable { .. } => Disposition::Unavailable(RETRY_MS),
                    _ => Disposition::Retry(RETRY_MS * u64::from(item.delivery.attempt.min(30))),
                };
            }
        }
        Ok(dispositions)
    }
}

fn parse(body: &[u8]) -> Result<Event, serde_json::Error> {
    let mut event: Event = serde_json::from_slice(body)?;
    event.record = serde_json::from_value(event.raw_record.clone())?;
    Ok(event)
}

/// The positions in `items` of each upload batch's records: one result
/// object per upload batch.
fn by_upload_batch<'a>(items: &'a [Item<'_>]) -> BTreeMap<&'a str, Vec<usize>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (n, item) in items.iter().enumerate() {
        groups.entry(&item.event.batch).or_default().push(n);
    }
    groups
}

/// Stores every result; an error (its reason logged) retries the records.
fn process(items: &[Item<'_>], groups: &BTreeMap<&str, Vec<usize>>) -> Result<(), Error> {
    let bucket = kv::open(&config::get_or("bucket", "transactions"))?;
    let now = time::now_millis();
    let mut flags: Vec<Vec<&'static str>> = items
        .iter()
        .map(|i| rules::check(&i.event.record, now))
        .collect();
    for (position, repeated) in repeats(&bucket, items)?.into_iter().enumerate() {
        if repeated {
            flags[position].push("repeated_id");
        }
    }

    let container = blob::open_or_create(&config::get_or("container", "transactions"))?;
    let mut keys = Vec::with_capacity(items.len());
    for (batch, members) in groups {
        let object = object_name(batch, members.iter().map(|&n| items[n].event.index));
        let mut results = Vec::with_capacity(members.len());
        let mut contents = Vec::with_capacity(members.len());
        for &n in members {
            let event = &items[n].event;
            let result = json!({
                "_id": event.record.id,
                "batch": event.batch,
                "index": event.index,
                "flags": flags[n],
                "status": if flags[n].is_empty() { "ok" } else { "flagged" },
                "processed_at": time::format_unix_millis(now),
                "object": object,
            });
            contents.push(json!({ "result": result, "record": event.raw_record }));
            results.push((
                format!("result:{}:{}", event.batch, event.index),
                serde_json::to_vec(&result).expect("serializable"),
            ));
        }
        let body = serde_json::to_vec(&json!({ "results": contents })).expect("serializable");
        container.put(&object, &body)?;
        keys.extend(results);
        log_group(batch, &object, members, items, &flags);
    }
    bucket.set_many(&keys)?;
    audit_processed(items, &flags);
    Ok(())
}

/// The service's name in the log system.
const SERVICE: &str = "worker_service";

/// One log record per transaction handled (`process_transaction`, or
/// `flag_transaction` with its flags), all in one message to the log
/// queue. A log system that is down costs a warning, not the work.
fn audit_processed(items: &[Item<'_>], flags: &[Vec<&'static str>]) {
    let records: Vec<audit::Record> = items
        .iter()
        .zip(flags)
        .map(|(item, flags)| {
            let action = match flags.is_empty() {
                true => "process_transaction",
                false => "flag_transaction",
            };
            audit::Record::new(SERVICE, &item.event.record.id, action)
                .with("batch", item.event.batch.clone())
                .with("index", item.event.index)
                .with("flags", flags.clone())
        })
        .collect();
    audit::send(&records);
}

/// Whether each item's `_id` was seen within the repeat window by another
/// message: two round trips for the whole batch.
fn repeats(bucket: &kv::Bucket, items: &[Item<'_>]) -> Result<Vec<bool>, kv::Error> {
    let window = config::get("repeat_window_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    // `seen:<_id>` holds the id of the message that set it.
    let entries: Vec<(String, Vec<u8>)> = items
        .iter()
        .map(|i| {
            let message_id = i
                .delivery
                .message
                .message_id
                .clone()
                .unwrap_or_else(|| format!("{}:{}", i.event.batch, i.event.index));
            (
                format!("seen:{}", i.event.record.id),
                message_id.into_bytes(),
            )
        })
        .collect();
    let first = bucket.set_many_if_absent(&entries, Some(Duration::from_millis(window)))?;
    let taken: Vec<usize> = (0..items.len()).filter(|&n| !first[n]).collect();
    let mut repeated = vec![false; items.len()];
    if taken.is_empty() {
        return Ok(repeated);
    }
    let keys: Vec<String> = taken.iter().map(|&n| entries[n].0.clone()).collect();
    let holders = bucket.get_many(&keys)?;
    for (&n, holder) in taken.iter().zip(holders) {
        repeated[n] = holder.as_deref() != Some(entries[n].1.as_slice());
    }
    Ok(repeated)
}

/// `results/<batch>/<first index>-<hash>.json`, the hash (FNV-1a) over the
/// sorted indices: the same records always give the same name.
fn object_name(batch: &str, indices: impl Iterator<Item = u64>) -> String {
    let mut indices: Vec<u64> = indices.collect();
    indices.sort_unstable();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for index in &indices {
        for byte in index.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("results/{batch}/{}-{hash:016x}.json", indices[0])
}

/// One log line per upload batch in the message batch: how many records,
/// and each flagged one with its flags.
fn log_group(
    batch: &str,
    object: &str,
    members: &[usize],
    items: &[Item<'_>],
    flags: &[Vec<&'static str>],
) {
    let flagged: Vec<String> = members
        .iter()
        .filter(|&&n| !flags[n].is_empty())
        .map(|&n| {
            let event = &items[n].event;
            format!("{}:{}:{}", event.index, event.record.id, flags[n].join("+"))
        })
        .collect();
    let retried = members
        .iter()
        .filter(|&&n| items[n].delivery.attempt > 1)
        .count();
    log::info(
        "worker",
        &format!(
            "batch={batch} processed={} flagged={} redelivered={retried} object={object}{}",
            members.len(),
            flagged.len(),
            if flagged.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flagged.join(" "))
            }
        ),
    );
}

corral_sdk::queue_batch_component!(Worker);
