//! Every action logged to the log system: one record per request, published
//! as a JSON array of one to the `logs` queue (config `log_queue`), per the
//! shared log-record contract. A publish failure is written to this
//! component's own log and the request goes on: the action is not failed
//! because the log is down.

use corral_sdk::http::Response;
use corral_sdk::messaging::{self, Message};
use corral_sdk::{config, log, time};
use serde_json::json;

pub const SERVICE: &str = "event_service";

/// Logs `action` by `user`, successful below status 400; the cause of a
/// failure is the error message of the response.
pub fn record(user: &str, action: &str, event_id: Option<&str>, response: &Response) {
    if action.is_empty() {
        return;
    }
    let success = response.status < 400;
    let cause = (!success).then(|| {
        serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("status {}", response.status))
    });
    let mut record = json!({
        "service": SERVICE,
        "user_id": user,
        "action": action,
        "result": if success { "success" } else { "failure" },
        "timestamp": time::now_rfc3339(),
        "status": response.status,
    });
    if let Some(cause) = cause {
        record["cause"] = cause.into();
    }
    if let Some(id) = event_id {
        record["event_id"] = id.into();
    }
    let queue = config::get_or("log_queue", "logs");
    let message = Message::json(&[record])
        .with_id(format!("{SERVICE}-{}", crate::id::new(time::now_millis())));
    if let Err(e) = messaging::publish(&queue, &message) {
        log::warn(
            "audit",
            &format!(
                "could not log {action} to queue {queue}: {}: {}",
                e.code(),
                e.detail()
            ),
        );
    }
}
