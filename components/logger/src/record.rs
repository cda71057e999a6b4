//! A log record: what a producer may send, how it is checked, and what is
//! stored.
//!
//! `{"service", "user_id", "action", "result", "cause"?, "timestamp"?}`
//! plus any other fields (kept as given). `service`, `user_id` and `action`
//! are non-blank strings of at most [`MAX_NAME`] bytes (`user_id` may be
//! empty on gateway access records, `"kind": "access"`); `result` is
//! `success` or `failure`; `cause` is a string (or null) of at most
//! [`MAX_CAUSE`] bytes; `timestamp` is RFC 3339 or the seed-001 form
//! (`2024-03-11T12:00:00 +00:00`), filled in when absent, and stored as
//! RFC 3339 UTC with milliseconds. The logger assigns `id`: a sender may
//! not. A stored record is at most [`MAX_RECORD`] bytes of JSON.

use corral_sdk::time;
use serde_json::{Map, Value};

use crate::id::Id;

/// Longest `service`, `user_id`, `action` (and `kind`), in bytes: they name
/// indexes, so they stay short.
pub const MAX_NAME: usize = 128;
pub const MAX_CAUSE: usize = 4096;
/// Longest stored record, in bytes of JSON.
pub const MAX_RECORD: usize = 16 * 1024;
/// Latest accepted timestamp: the end of year 9999.
const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

pub const RESULTS: [&str; 2] = ["success", "failure"];

/// Why a record (or a query) was refused: an error code (`invalid`,
/// `missing_field`, `read_only_field`, `invalid_json`: the users service's
/// codes), the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::coded("invalid", field, message)
    }

    pub fn coded(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem inside element `index` of a batch: `[3].service`.
    pub fn at(self, index: usize) -> Self {
        let field = if self.field.is_empty() {
            format!("[{index}]")
        } else {
            format!("[{index}].{}", self.field)
        };
        Self {
            code: self.code,
            field,
            message: format!("record {index}: {}", self.message),
        }
    }
}

/// A checked record, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Id,
    pub service: String,
    pub user_id: String,
    pub action: String,
    pub result: String,
    /// Unix milliseconds of `timestamp`.
    pub at_ms: i64,
    /// The stored JSON object (with `id` and the normalised `timestamp`).
    pub json: Map<String, Value>,
}

impl Record {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).expect("a JSON map serialises")
    }

    /// The record's values of the four indexed fields, in
    /// [`crate::store::FILTERS`] order.
    pub fn fields(&self) -> [&str; 4] {
        [&self.service, &self.user_id, &self.action, &self.result]
    }
}

/// How a record gets its id: from fresh randomness (a direct write), or
/// from where it came from (a queue message), so that a redelivery gets
/// the same ids again.
pub enum IdSource<'a> {
    Random,
    Derived {
        message_id: &'a str,
        position: usize,
    },
}

/// Checks `value` and makes it a [`Record`]; `now_ms` fills in a missing
/// timestamp.
pub fn check(value: Value, now_ms: i64, source: IdSource<'_>) -> Result<Record, Problem> {
    let Value::Object(mut json) = value else {
        return Err(Problem::new(
            "",
            format!("a log record is a JSON object, not {}", kind_of(&value)),
        ));
    };
    if json.contains_key("id") {
        return Err(Problem::coded(
            "read_only_field",
            "id",
            "id is assigned by the logger; leave it out",
        ));
    }
    let access = match json.get("kind") {
        None | Some(Value::Null) => false,
        Some(Value::String(kind)) if kind.len() <= MAX_NAME => kind == "access",
        Some(Value::String(_)) => {
            return Err(Problem::new(
                "kind",
                format!("kind is longer than {MAX_NAME} bytes"),
            ));
        }
        Some(other) => {
            return Err(Problem::new(
                "kind",
                format!("kind must be a string, not {}", kind_of(other)),
            ));
        }
    };
    let service = name(&json, "service", false)?;
    let user_id = name(&json, "user_id", access)?;
    let action = name(&json, "action", false)?;
    let result = match json.get("result") {
        Some(Value::String(r)) if RESULTS.contains(&r.as_str()) => r.clone(),
        None | Some(Value::Null) => {
            return Err(Problem::coded(
                "missing_field",
                "result",
                "result is required: \"success\" or \"failure\"",
            ));
        }
        Some(other) => {
            return Err(Problem::new(
                "result",
                format!("result must be \"success\" or \"failure\", not {other}"),
            ));
        }
    };
    match json.get("cause") {
        None | Some(Value::Null) => {}
        Some(Value::String(c)) if c.len() <= MAX_CAUSE => {}
        Some(Value::String(_)) => {
            return Err(Problem::new(
                "cause",
                format!("cause is longer than {MAX_CAUSE} bytes"),
            ));
        }
        Some(other) => {
            return Err(Problem::new(
                "cause",
                format!("cause must be a string, not {}", kind_of(other)),
            ));
        }
    }
    let at_ms = match json.get("timestamp") {
        None | Some(Value::Null) => now_ms,
        Some(Value::String(text)) => parse_time(text).map_err(|m| Problem::new("timestamp", m))?,
        Some(other) => {
            return Err(Problem::new(
                "timestamp",
                format!(
                    "timestamp must be a string (RFC 3339), not {}",
                    kind_of(other)
                ),
            ));
        }
    };
    let id = match source {
        IdSource::Random => Id::random(at_ms),
        IdSource::Derived {
            message_id,
            position,
        } => Id::derived(at_ms, message_id, position),
    };
    json.insert(
        "timestamp".into(),
        Value::String(time::format_unix_millis(at_ms)),
    );
    json.insert("id".into(), Value::String(id.to_string()));
    let record = Record {
        id,
        service,
        user_id,
        action,
        result,
        at_ms,
        json,
    };
    let size = record.to_bytes().len();
    if size > MAX_RECORD {
        return Err(Problem::new(
            "",
            format!("the record is {size} bytes of JSON; the limit is {MAX_RECORD}"),
        ));
    }
    Ok(record)
}

/// A timestamp (RFC 3339 or the seed-001 form) in Unix milliseconds,
/// between 1970 and the end of 9999.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let ms = time::parse_timestamp(text)?;
    if !(0..=MAX_TIMESTAMP_MS).contains(&ms) {
        return Err(format!("{text:?} is outside 1970-01-01 to 9999-12-31"));
    }
    Ok(ms)
}

/// A required name field: a non-blank string (blank allowed when
/// `may_be_empty`) of at most [`MAX_NAME`] bytes.
fn name(json: &Map<String, Value>, field: &str, may_be_empty: bool) -> Result<String, Problem> {
    match json.get(field) {
        Some(Value::String(text)) => {
            if text.trim().is_empty() && !(may_be_empty && text.is_empty()) {
                let note = if field == "user_id" {
                    " (only gateway access records, \"kind\": \"access\", may leave it empty)"
                } else {
                    ""
                };
                return Err(Problem::new(
                    field,
                    format!("{field} must not be empty{note}"),
                ));
            }
            if text.len() > MAX_NAME {
                return Err(Problem::new(
                    field,
                    format!(
                        "{field} is {} bytes long; the limit is {MAX_NAME}",
                        text.len()
                    ),
                ));
            }
            if text.chars().any(char::is_control) {
                return Err(Problem::new(
                    field,
                    format!("{field} contains a control character"),
                ));
            }
            Ok(text.clone())
        }
        None | Some(Value::Null) => Err(Problem::coded(
            "missing_field",
            field,
            format!("{field} is required"),
        )),
        Some(other) => Err(Problem::new(
            field,
            format!("{field} must be a string, not {}", kind_of(other)),
        )),
    }
}

pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_718_454_896_789; // 2024-06-15T12:34:56.789Z

    fn ok(value: Value) -> Record {
        check(value, NOW, IdSource::Random).unwrap()
    }

    fn problem(value: Value) -> Problem {
        check(value, NOW, IdSource::Random).unwrap_err()
    }

    #[test]
    fn the_seed_record_is_stored_with_an_id_and_its_timestamp() {
        let r = ok(
            json!({"service": "user_service", "user_id": "1", "action": "create_user",
            "result": "success", "timestamp": "2024-06-15T12:34:56.789Z"}),
        );
        assert_eq!(r.at_ms, NOW);
        assert_eq!(r.json["timestamp"], "2024-06-15T12:34:56.789Z");
        assert_eq!(r.json["id"], r.id.to_string());
        assert_eq!(r.fields(), ["user_service", "1", "create_user", "success"]);
        // Seed-001 form, another offset: normalised to UTC.
        let r = ok(
            json!({"service": "s", "user_id": "u", "action": "a", "result": "failure",
            "cause": "boom", "timestamp": "2024-06-15T14:34:56 +02:00", "extra": {"n": 1}}),
        );
        assert_eq!(r.json["timestamp"], "2024-06-15T12:34:56.000Z");
        assert_eq!(r.json["extra"]["n"], 1);
        // Filled in when absent.
        let r = ok(json!({"service": "s", "user_id": "u", "action": "a", "result": "success"}));
        assert_eq!(r.at_ms, NOW);
    }

    #[test]
    fn every_problem_names_its_field() {
        let base = json!({"service": "s", "user_id": "u", "action": "a", "result": "success"});
        let with = |field: &str, value: Value| {
            let mut v = base.clone();
            v[field] = value;
            problem(v)
        };
        let without = |field: &str| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(field);
            problem(v)
        };
        for field in ["service", "user_id", "action", "result"] {
            assert_eq!(without(field).field, field);
            assert_eq!(without(field).code, "missing_field");
            assert_eq!(with(field, json!(7)).field, field);
        }
        assert!(
            with("service", json!("  "))
                .message
                .contains("must not be empty")
        );
        assert!(
            with("action", json!("x".repeat(129)))
                .message
                .contains("limit is 128")
        );
        assert!(
            with("result", json!("ok"))
                .message
                .contains("\"success\" or \"failure\"")
        );
        assert_eq!(with("cause", json!(1)).field, "cause");
        assert_eq!(with("cause", json!("c".repeat(5000))).field, "cause");
        assert_eq!(with("timestamp", json!("yesterday")).field, "timestamp");
        assert_eq!(
            with("timestamp", json!("1960-01-01T00:00:00Z")).field,
            "timestamp"
        );
        assert_eq!(with("id", json!("mine")).field, "id");
        assert_eq!(with("id", json!("mine")).code, "read_only_field");
        assert_eq!(with("big", json!("x".repeat(17_000))).field, "");
        assert_eq!(problem(json!([1])).field, "");
        assert_eq!(with("service", json!(1)).at(3).field, "[3].service");
        assert_eq!(problem(json!("x")).at(2).field, "[2]");
    }

    #[test]
    fn only_access_records_may_leave_the_user_empty() {
        let access = json!({"service": "users", "user_id": "", "action": "http_request",
            "result": "success", "kind": "access", "status": 200});
        assert_eq!(ok(access).user_id, "");
        let plain = json!({"service": "users", "user_id": "", "action": "x", "result": "success"});
        assert!(problem(plain).message.contains("kind"));
    }
}
