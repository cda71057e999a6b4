//! `logger`: seed 002's log system. Stores log records durably and finds
//! them again, newest first, by service, user, action, result and time.
//!
//! | method | path                 | does                                              |
//! |--------|----------------------|---------------------------------------------------|
//! | POST   | `/log`               | store one record; 201 with it (and its `id`)      |
//! | POST   | `/logs`              | store an array of records, all or none; 201       |
//! | GET    | `/logs`              | query: `service`, `user_id`, `action`, `result`, `from`, `to`, `limit`, `cursor` |
//! | GET    | `/logs/{id}`         | one record                                        |
//! | GET    | `/logs/stats`        | records per time bucket and result (the chart)    |
//! | GET    | `/logs/`             | the log viewer page                               |
//!
//! It also consumes the `logs` queue (queue trigger, `queue-batch-handler`):
//! each message is a JSON array of records, stored with the same code; a
//! redelivered message is not stored twice. And on its timer it removes
//! records older than `retention_days`.
//!
//! Configuration (`[component.config]`): `bucket` (default `logs`),
//! `retention_days` (default 30), `max_batch` (records per `POST /logs`,
//! default and at most 1000).
//!
//! Storage layout and query plan: see `store.rs`.

mod api;
mod id;
mod record;
mod store;

use std::time::Duration;

use corral_sdk::http::{Handler, Request, Response};
use corral_sdk::queue_batch::{self, Delivery, Disposition, QueueBatchHandler};
use corral_sdk::timer::{self, TimerHandler};
use corral_sdk::{config, log, time};
use serde_json::Value;

use record::{IdSource, Problem, Record, check};
use store::{Claim, Store};

const PAGE: &str = include_str!("page.html");

/// How long a stored message is remembered, to drop its redeliveries.
const SEEN_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long a batch may hold a message it is storing (the claim of a batch
/// that crashed expires then): twice the time limit of `corral.toml`.
const PENDING_FOR: Duration = Duration::from_secs(60);
/// When another batch is storing the same message, ask again after this:
/// by then it is stored, or its claim has expired within two retries.
const BUSY_RETRY_MS: u64 = 30_000;
/// Retention removes at most this many chunks of 500 records per tick.
const EXPIRE_CHUNKS_PER_TICK: usize = 40;

fn bucket() -> String {
    config::get_or("bucket", "logs")
}

fn open() -> Result<Store, corral_sdk::kv::Error> {
    Store::open(&bucket())
}

struct Logger;

impl Handler for Logger {
    fn handle(request: Request) -> Result<Response, corral_sdk::http::Error> {
        Ok(api::route(&request))
    }
}

/// The records of one queue message (a JSON array of records, or one
/// record), all checked; ids derived from the message id.
fn records_of(body: &[u8], message_id: &str, now_ms: i64) -> Result<Vec<Record>, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::new("body", format!("the message is not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        other => {
            return Err(Problem::new(
                "body",
                format!(
                    "a message is a JSON array of records, not {}",
                    record::kind_of(&other)
                ),
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(position, item)| {
            let source = IdSource::Derived {
                message_id,
                position,
            };
            check(item, now_ms, source).map_err(|p| p.at(position))
        })
        .collect()
}

impl QueueBatchHandler for Logger {
    fn handle_batch(deliveries: Vec<Delivery>) -> Result<Vec<Disposition>, queue_batch::Error> {
        Ok(handle_batch(&deliveries))
    }
}

/// The dispositions of a batch of deliveries of the `logs` queue (each one
/// its own: a bad message is rejected alone).
fn handle_batch(deliveries: &[Delivery]) -> Vec<Disposition> {
    let now = time::now_millis();
    // A store that is down postpones without spending an attempt (the host
    // pauses the queue); any other failure retries.
    let retry = |attempt: u32, e: &corral_sdk::kv::Error| match e.is_unavailable() {
        true => Disposition::Unavailable(1_000),
        false => Disposition::Retry(1_000 * u64::from(attempt.min(30))),
    };
    let retry_all = |e: &corral_sdk::kv::Error| {
        log::warn(
            "queue",
            &format!("{} messages will retry: {e}", deliveries.len()),
        );
        deliveries.iter().map(|d| retry(d.attempt, e)).collect()
    };
    let ids: Vec<String> = deliveries
        .iter()
        .map(|d| match &d.message.message_id {
            Some(id) if !id.is_empty() => id.clone(),
            // Without an id, the body stands for the message.
            _ => format!(
                "body-{:016x}",
                id::fnv64(&d.message.body, 0xcbf2_9ce4_8422_2325)
            ),
        })
        .collect();
    let store = match open() {
        Ok(store) => store,
        Err(e) => return retry_all(&e),
    };
    // Deliveries of one message in this batch: the first claims it.
    let mut first = std::collections::HashSet::new();
    let unique: Vec<bool> = ids.iter().map(|id| first.insert(id.as_str())).collect();
    let claims = match store.claim(&ids, PENDING_FOR) {
        Ok(claims) => claims,
        Err(e) => return retry_all(&e),
    };
    let mut dispositions = vec![Disposition::Ack; deliveries.len()];
    let mut records = Vec::new();
    let mut taken = Vec::new();
    let mut repeated = 0;
    for (n, delivery) in deliveries.iter().enumerate() {
        match (claims[n], unique[n]) {
            (Claim::Ours, true) => {}
            // A redelivery of a stored message, or a second copy here.
            (Claim::Done, _) | (_, false) => {
                repeated += 1;
                continue;
            }
            // Another batch is storing it: ask again in a while.
            (Claim::Busy, true) => {
                dispositions[n] = Disposition::Retry(BUSY_RETRY_MS);
                continue;
            }
        }
        match records_of(&delivery.message.body, &ids[n], now) {
            Ok(found) => {
                records.extend(found);
                taken.push(n);
            }
            Err(problem) => {
                let reason = format!("{}: {}", problem.field, problem.message);
                log::warn("queue", &format!("rejecting message {}: {reason}", ids[n]));
                dispositions[n] = Disposition::Reject(reason);
            }
        }
    }
    let claimed: Vec<String> = (0..deliveries.len())
        .filter(|&n| claims[n] == Claim::Ours && unique[n])
        .map(|n| ids[n].clone())
        .collect();
    let stored_ids: Vec<String> = taken.iter().map(|&n| ids[n].clone()).collect();
    match store.write(&records) {
        Ok(()) => {
            // Rejected messages are done too: their claims go with them.
            if let Err(e) = store.finish(&claimed, SEEN_FOR) {
                log::warn(
                    "queue",
                    &format!(
                        "stored, but could not mark {} messages done: {e}",
                        claimed.len()
                    ),
                );
            }
            log::debug(
                "queue",
                &format!(
                    "stored {} records from {} messages ({repeated} repeated)",
                    records.len(),
                    stored_ids.len(),
                ),
            );
        }
        Err(e) => {
            log::warn(
                "queue",
                &format!("{} messages will retry: {e}", taken.len()),
            );
            if let Err(e) = store.release(&claimed) {
                log::warn(
                    "queue",
                    &format!("could not release claims (they expire): {e}"),
                );
            }
            for n in taken {
                dispositions[n] = retry(deliveries[n].attempt, &e);
            }
        }
    }
    dispositions
}

/// `retention_days` from the config: a whole number of days, at least 1.
fn retention_days() -> Result<i64, String> {
    let text = config::get_or("retention_days", "30");
    match text.trim().parse::<i64>() {
        Ok(days) if (1..=36_500).contains(&days) => Ok(days),
        _ => Err(format!(
            "config retention_days = {text:?}: a whole number of days from 1 to 36500"
        )),
    }
}

impl TimerHandler for Logger {
    fn tick(_scheduled_at_ms: u64) -> Result<(), timer::Error> {
        let days = retention_days().map_err(timer::Error::new)?;
        let cutoff = time::now_millis() - days * 86_400_000;
        let store = open().map_err(|e| timer::Error::new(e.to_string()))?;
        let (removed, more) = store
            .expire(cutoff, EXPIRE_CHUNKS_PER_TICK)
            .map_err(|e| timer::Error::new(format!("retention: {e}")))?;
        if removed > 0 {
            log::info(
                "retention",
                &format!(
                    "removed {removed} records older than {days} days (before {}){}",
                    time::format_unix_millis(cutoff),
                    if more {
                        "; more left for the next tick"
                    } else {
                        ""
                    }
                ),
            );
        }
        Ok(())
    }
}

corral_sdk::http_component!(Logger);
corral_sdk::queue_batch_component!(Logger);
corral_sdk::timer_component!(Logger);
