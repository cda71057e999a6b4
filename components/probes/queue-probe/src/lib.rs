//! `queue-probe`: a test component for the queue trigger and the messaging
//! capability. What it does with a message is written in the body:
//!
//! | body             | disposition                                         |
//! |------------------|-----------------------------------------------------|
//! | `ack` (or other) | `ack`                                               |
//! | `retry`          | `retry(100)`                                        |
//! | `retry-until:N`  | `retry(100)` before attempt N, then `ack`           |
//! | `reject:REASON`  | `reject(REASON)`                                    |
//! | `trap`           | panics (the host retries with back-off)             |
//! | `slow:MS`        | waits MS milliseconds, then `ack`                   |
//! | `forward:QUEUE`  | publishes a copy to QUEUE, then `ack`               |
//! | `down-until:MS`  | `unavailable(100)` until the Unix time MS, then `ack` |
//! | `reject-before:MS` | `reject` until the Unix time MS, then `ack`       |
//!
//! Every message is logged when it starts (`started queue=Q id=ID
//! attempt=N`) and before its disposition is carried out (`handled queue=Q
//! id=ID attempt=N body=B -> D`, plus `reason=...` for a dead letter), so a
//! test can follow each delivery in the log file.
//!
//! `POST /queue-probe/publish?queue=Q&id=ID[&count=N]` publishes the request
//! body (N copies with ids `ID-0`..`ID-(N-1)`, in one batch) through the
//! component's messaging grant. With `exchange=E&key=K` instead of
//! `queue=Q`, it publishes to exchange E with routing key K.

use corral_sdk::http::{self, Handler, Request, Response};
use corral_sdk::log;
use corral_sdk::messaging::{self, Message};
use corral_sdk::queue::{self, Delivery, Disposition, QueueHandler};

struct Probe;

fn sleep_ms(ms: u64) {
    corral_sdk::wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
}

impl QueueHandler for Probe {
    fn handle(delivery: Delivery) -> Result<Disposition, queue::Error> {
        let message = &delivery.message;
        let body = message.body_text();
        let id = message.message_id.as_deref().unwrap_or("-");
        log::info(
            "started",
            &format!(
                "started queue={} id={id} attempt={}",
                delivery.queue, delivery.attempt
            ),
        );
        let (disposition, label) = match body.split_once(':').unwrap_or((body.as_str(), "")) {
            ("retry", _) => (Disposition::Retry(100), "retry".to_owned()),
            ("retry-until", n) if delivery.attempt < n.parse().unwrap_or(1) => {
                (Disposition::Retry(100), "retry".to_owned())
            }
            ("reject", reason) => (Disposition::Reject(reason.to_owned()), "reject".to_owned()),
            ("trap", _) => (Disposition::Ack, "trap".to_owned()),
            ("slow", ms) => {
                sleep_ms(ms.parse().unwrap_or(1000));
                (Disposition::Ack, "ack".to_owned())
            }
            ("down-until", ms)
                if corral_sdk::time::now_millis() < ms.parse::<i64>().unwrap_or(0) =>
            {
                (Disposition::Unavailable(100), "unavailable".to_owned())
            }
            ("reject-before", ms)
                if corral_sdk::time::now_millis() < ms.parse::<i64>().unwrap_or(0) =>
            {
                (Disposition::Reject("not yet".into()), "reject".to_owned())
            }
            ("forward", queue) => match messaging::publish(queue, message) {
                Ok(()) => (Disposition::Ack, format!("forwarded to {queue}")),
                Err(error) => (Disposition::Retry(100), format!("forward failed: {error}")),
            },
            _ => (Disposition::Ack, "ack".to_owned()),
        };
        let reason = message
            .header("x-corral-dead-reason")
            .map(|r| format!(" reason={r}"))
            .unwrap_or_default();
        log::info(
            "handled",
            &format!(
                "handled queue={} id={id} attempt={} body={body} -> {label}{reason}",
                delivery.queue, delivery.attempt,
            ),
        );
        if label == "trap" {
            panic!("the message asked for a trap");
        }
        Ok(disposition)
    }
}

impl Handler for Probe {
    fn handle(request: Request) -> Result<Response, http::Error> {
        if request.method != "POST" || request.path != "/queue-probe/publish" {
            return Err(http::Error::not_found(&request.path));
        }
        let exchange = request.query_param("exchange");
        let queue = request.query_param("queue");
        if exchange.is_none() && queue.is_none() {
            return Err(
                http::Error::bad_request("invalid", "queue or exchange is required")
                    .with_field("queue"),
            );
        }
        let key = request.query_param("key").unwrap_or_default();
        let id = request.query_param("id").unwrap_or_else(|| "m".into());
        let count: usize = request
            .query_param("count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let message = |id: String| {
            Message::new(request.body.clone())
                .with_content_type("text/plain")
                .with_id(id)
                .with_header("sent-by", "queue-probe")
        };
        let batch: Vec<Message> = match count {
            1 => vec![message(id)],
            _ => (0..count).map(|i| message(format!("{id}-{i}"))).collect(),
        };
        let queue = queue.unwrap_or_default();
        match (&exchange, batch.as_slice()) {
            (Some(exchange), [one]) => messaging::publish_to_exchange(exchange, &key, one),
            (Some(exchange), many) => messaging::publish_batch_to_exchange(exchange, &key, many),
            (None, [one]) => messaging::publish(&queue, one),
            (None, many) => messaging::publish_batch(&queue, many),
        }?;
        Ok(Response::json(
            200,
            &serde_json::json!({ "published": count }),
        ))
    }
}

corral_sdk::queue_component!(Probe);
corral_sdk::http_component!(Probe);
