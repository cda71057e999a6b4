//! Action records for the log system (the `logger` component): every
//! service logs what it did as
//! `{"service","user_id","action","result","cause"?,"timestamp", ...}`
//! (the seed's shape; other fields are kept as given), published as a JSON
//! array to the `logs` queue (the component's config `log_queue` changes
//! it), which the logger consumes. The component needs
//! `grants.messaging = { publish = ["logs"] }`.
//!
//! ```ignore
//! use corral_sdk::audit::Record;
//! Record::new("user_service", &id, "create_user").outcome_of(&response).send();
//! Record::new("worker", "-", "flag_transaction").failure("amount over limit").send();
//! ```
//!
//! A record that cannot be published is written to the component's own
//! log and the action stands: an action never fails because the log
//! system is down.

use serde_json::{Map, Value};

use crate::http::Response;
use crate::messaging::{self, Message};
use crate::{config, log, time};

/// One action record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record(Map<String, Value>);

impl Record {
    /// A successful `action` of `service` concerning `user_id`, timestamped
    /// now.
    pub fn new(service: &str, user_id: &str, action: &str) -> Self {
        let mut json = Map::new();
        json.insert("service".into(), service.into());
        json.insert("user_id".into(), user_id.into());
        json.insert("action".into(), action.into());
        json.insert("result".into(), "success".into());
        json.insert("timestamp".into(), time::now_rfc3339().into());
        Self(json)
    }

    /// Marks the action failed, for `cause`.
    pub fn failure(mut self, cause: impl Into<String>) -> Self {
        self.0.insert("result".into(), "failure".into());
        self.0.insert("cause".into(), cause.into().into());
        self
    }

    /// Adds a field of the service's own (`event_id`, `status`...).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// The outcome of the action that answered `response`: success below
    /// status 400; otherwise failure, the error message of the platform's
    /// JSON error shape as the cause. Adds `status`.
    pub fn outcome_of(self, response: &Response) -> Self {
        let record = self.with("status", response.status);
        if response.status < 400 {
            return record;
        }
        let cause = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("status {}", response.status));
        record.failure(cause)
    }

    pub fn json(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Publishes the record; a failure goes to the component's own log.
    pub fn send(self) {
        send(&[self]);
    }
}

/// Publishes `records` as one message; a failure goes to the component's
/// own log (the action is not failed because the log system is down).
pub fn send(records: &[Record]) {
    let Some(first) = records.first() else {
        return;
    };
    if let Err((queue, e)) = publish(records) {
        let action = first.0["action"].as_str().unwrap_or_default();
        let what = match records.len() {
            1 => action.to_owned(),
            n => format!("{n} records ({action}...)"),
        };
        log::warn(
            "audit",
            &format!(
                "could not log {what} to queue {queue}: {}: {}",
                e.code(),
                e.detail()
            ),
        );
    }
}

/// Publishes `records` as one message (a JSON array) to the log queue;
/// on failure, the queue's name and the error.
pub fn publish(records: &[Record]) -> Result<(), (String, messaging::Error)> {
    let Some(first) = records.first() else {
        return Ok(());
    };
    let service = first.0["service"].as_str().unwrap_or("service");
    let queue = config::get_or("log_queue", "logs");
    let body: Vec<&Map<String, Value>> = records.iter().map(|r| &r.0).collect();
    let message =
        Message::json(&body).with_id(format!("{service}-{}", crate::id::new(time::now_millis())));
    messaging::publish(&queue, &message).map_err(|e| (queue, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_have_the_seed_shape_and_failures_their_cause() {
        let ok = Record::new("user_service", "U1", "create_user")
            .outcome_of(&Response::json(201, &json!({"id": "U1"})));
        let json = Value::Object(ok.json().clone());
        assert_eq!(json["service"], "user_service");
        assert_eq!(json["user_id"], "U1");
        assert_eq!(json["action"], "create_user");
        assert_eq!(json["result"], "success");
        assert_eq!(json["status"], 201);
        assert!(json.get("cause").is_none());
        assert!(time::parse_timestamp(json["timestamp"].as_str().unwrap()).is_ok());

        let failed = Record::new("user_service", "-", "create_user")
            .outcome_of(&Response::error(409, "conflict", Some("email"), "taken"))
            .with("user", "x");
        let json = Value::Object(failed.json().clone());
        assert_eq!(
            (&json["result"], &json["cause"], &json["status"]),
            (&json!("failure"), &json!("taken"), &json!(409))
        );
        let plain = Record::new("s", "-", "a").outcome_of(&Response::text(502, "bad gateway"));
        assert_eq!(plain.json()["cause"], "status 502");
        assert_eq!(
            Record::new("s", "-", "a").failure("why").json()["cause"],
            "why"
        );
    }
}
