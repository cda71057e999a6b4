//! One access record, and its JSON as the logger stores it.
//!
//! The logger's record fields carry the gateway's view of a request:
//!
//! | field        | value                                                       |
//! |--------------|-------------------------------------------------------------|
//! | `kind`       | `"access"` (the logger then allows an empty `user_id`)      |
//! | `service`    | the component's name; `"gateway"` when no route matched     |
//! | `user_id`    | the verified user ([`super::user`]), else `""`              |
//! | `action`     | method and matched route: `"GET /users"` for `GET /users/7` |
//! | `result`     | `success` below 400, else `failure`                          |
//! | `cause`      | for 5xx (and a response body that failed): what went wrong   |
//! | `timestamp`  | when the request arrived, RFC 3339 UTC with milliseconds     |
//!
//! plus `request_id`, `component` (null when no route matched), `method`,
//! `path`, `status` (499 when the client went away before the response
//! head), `latency_ms`, `bytes_in`, `bytes_out`.
//!
//! `action` names the route, not the path: it is an indexed field, and
//! paths with ids in them would make one index per request; the path is
//! in `path`. Every field is cut to the logger's limits (128 bytes for the
//! indexed names, 4096 for `cause`), so a batch is never refused for one
//! odd request.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// The logger's limit for indexed fields.
const MAX_NAME: usize = 128;
const MAX_CAUSE: usize = 4096;
const MAX_PATH: usize = 2048;
const MAX_METHOD: usize = 32;

/// What the gateway knows about one finished request.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub at: SystemTime,
    pub request_id: String,
    /// The component and the route prefix that matched, if any.
    pub component: Option<String>,
    pub route: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub user_id: Option<String>,
    /// Why a request failed, for 5xx answers or a response body that broke
    /// off.
    pub cause: Option<String>,
}

#[derive(Serialize)]
struct Wire<'a> {
    kind: &'static str,
    service: &'a str,
    user_id: &'a str,
    action: String,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
    timestamp: String,
    request_id: &'a str,
    component: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    status: u16,
    latency_ms: f64,
    bytes_in: u64,
    bytes_out: u64,
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl AccessRecord {
    pub fn failed(&self) -> bool {
        self.status >= 400 || self.cause.is_some()
    }

    /// The record's JSON object, within the logger's limits.
    fn wire(&self) -> Wire<'_> {
        let method = cut(&self.method, MAX_METHOD);
        let route = self.route.as_deref().unwrap_or("(no route)");
        let action = format!("{method} {route}");
        let user_id = self
            .user_id
            .as_deref()
            .filter(|u| !u.chars().any(char::is_control))
            .map_or("", |u| cut(u, MAX_NAME));
        Wire {
            kind: "access",
            service: cut(self.component.as_deref().unwrap_or("gateway"), MAX_NAME),
            user_id,
            action: cut(&action, MAX_NAME).to_owned(),
            result: if self.failed() { "failure" } else { "success" },
            cause: self.cause.as_deref().map(|c| cut(c, MAX_CAUSE)),
            timestamp: chrono::DateTime::<chrono::Utc>::from(self.at)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            request_id: cut(&self.request_id, MAX_NAME),
            component: self.component.as_deref(),
            method,
            path: cut(&self.path, MAX_PATH),
            status: self.status,
            latency_ms: (self.latency.as_micros() as f64) / 1000.0,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
        }
    }
}

/// A batch as one message body: a JSON array of records.
pub fn batch_body(records: &[AccessRecord]) -> Vec<u8> {
    let wires: Vec<Wire<'_>> = records.iter().map(AccessRecord::wire).collect();
    serde_json::to_vec(&wires).expect("records serialise")
}

#[cfg(test)]
pub mod tests {
    use serde_json::{Value, json};

    use super::*;

    pub fn sample(n: u64) -> AccessRecord {
        AccessRecord {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_718_454_896_789),
            request_id: format!("req-{n}"),
            component: Some("users".into()),
            route: Some("/users".into()),
            method: "GET".into(),
            path: format!("/users/{n}"),
            status: 200,
            latency: Duration::from_micros(1_234),
            bytes_in: 0,
            bytes_out: 42,
            user_id: None,
            cause: None,
        }
    }

    fn json_of(record: &AccessRecord) -> Value {
        let body: Value =
            serde_json::from_slice(&batch_body(std::slice::from_ref(record))).unwrap();
        body[0].clone()
    }

    #[test]
    fn a_record_has_the_loggers_fields_and_the_gateways() {
        let r = json_of(&sample(7));
        assert_eq!(
            r,
            json!({"kind": "access", "service": "users", "user_id": "", "action": "GET /users",
                "result": "success", "timestamp": "2024-06-15T12:34:56.789Z", "request_id": "req-7",
                "component": "users", "method": "GET", "path": "/users/7", "status": 200,
                "latency_ms": 1.234, "bytes_in": 0, "bytes_out": 42})
        );
        let mut failed = sample(1);
        failed.status = 503;
        failed.cause = Some("overloaded: every slot busy".into());
        failed.user_id = Some("u-1".into());
        let r = json_of(&failed);
        assert_eq!(r["result"], "failure");
        assert_eq!(r["cause"], "overloaded: every slot busy");
        assert_eq!(r["user_id"], "u-1");
        let mut not_found = sample(2);
        (not_found.component, not_found.route, not_found.status) = (None, None, 404);
        let r = json_of(&not_found);
        assert_eq!(r["service"], "gateway");
        assert_eq!(r["component"], Value::Null);
        assert_eq!(r["action"], "GET (no route)");
        assert_eq!(r["result"], "failure");
        assert!(r.get("cause").is_none());
    }

    #[test]
    fn fields_are_cut_to_the_loggers_limits() {
        let mut r = sample(3);
        r.path = format!("/users/{}", "é".repeat(3000));
        r.route = Some(format!("/{}", "r".repeat(300)));
        r.cause = Some("c".repeat(10_000));
        r.user_id = Some("u".repeat(500));
        r.method = "M".repeat(100);
        let j = json_of(&r);
        assert!(j["path"].as_str().unwrap().len() <= MAX_PATH);
        assert!(j["action"].as_str().unwrap().len() <= MAX_NAME);
        assert_eq!(j["cause"].as_str().unwrap().len(), MAX_CAUSE);
        assert_eq!(j["user_id"].as_str().unwrap().len(), MAX_NAME);
        assert!(serde_json::to_vec(&j).unwrap().len() < 16 * 1024);
        // A user id with a control character is not passed on.
        r.user_id = Some("a\nb".into());
        assert_eq!(json_of(&r)["user_id"], "");
    }
}
