//! An event: what a client may send, how it is checked, what is stored.
//!
//! Client fields: `title` (required, 1-200 characters), `description`
//! (up to 5000, default ""), `starts_at` and `ends_at` (required,
//! RFC 3339 or the seed-001 form; `ends_at` not before `starts_at`; stored
//! as RFC 3339 UTC), `location` (up to 500, default ""), `capacity`
//! (optional positive integer). Server fields: `id`, `created_at`,
//! `updated_at`, `version` (1, then +1 per update; the ETag). The server
//! fields are refused on create; an update may carry them back (as `GET`
//! gave them) and they are ignored, except an `id` other than the event's.
//! Any other field is an error.

use corral_sdk::time;
use serde_json::{Map, Value, json};

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 5000;
pub const MAX_LOCATION: usize = 500;
pub const MAX_CAPACITY: u64 = 10_000_000;
const SERVER_FIELDS: [&str; 4] = ["id", "created_at", "updated_at", "version"];
const CLIENT_FIELDS: [&str; 6] = [
    "title",
    "description",
    "starts_at",
    "ends_at",
    "location",
    "capacity",
];

/// Why a body was refused: an error code (the users service's codes:
/// `missing_field`, `unknown_field`, `read_only_field`, `invalid`), the
/// field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

pub fn problem(field: &str, message: impl Into<String>) -> Problem {
    coded("invalid", field, message)
}

pub fn coded(code: &'static str, field: &str, message: impl Into<String>) -> Problem {
    Problem {
        code,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The client's fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub title: String,
    pub description: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub location: String,
    pub capacity: Option<u64>,
}

/// Checks a request body; `id` is the event's when it exists already (a
/// body naming another id is refused), `None` on create (a body naming
/// any id is refused).
pub fn check(body: &Value, id: Option<&str>) -> Result<Fields, Problem> {
    let Value::Object(map) = body else {
        return Err(problem("body", "an event is a JSON object"));
    };
    for key in map.keys() {
        if !CLIENT_FIELDS.contains(&key.as_str()) && !SERVER_FIELDS.contains(&key.as_str()) {
            return Err(coded(
                "unknown_field",
                key,
                format!(
                    "unknown field {key:?}; an event has {}",
                    CLIENT_FIELDS.join(", ")
                ),
            ));
        }
    }
    match id {
        // Create: the server sets these.
        None => {
            if let Some(field) = SERVER_FIELDS.iter().find(|f| map.contains_key(**f)) {
                return Err(coded(
                    "read_only_field",
                    field,
                    format!("{field} is set by the server; leave it out"),
                ));
            }
        }
        // Update: sent back as GET gave them, ignored; but not another id.
        Some(id) => match map.get("id") {
            None | Some(Value::Null) => {}
            Some(Value::String(given)) if given == id => {}
            Some(given) => {
                return Err(problem(
                    "id",
                    format!("id {given} in the body is not the event's id {id:?}"),
                ));
            }
        },
    }
    let title = text(map, "title", MAX_TITLE, true)?;
    let description = text(map, "description", MAX_DESCRIPTION, false)?;
    let location = text(map, "location", MAX_LOCATION, false)?;
    let starts_at_ms = timestamp(map, "starts_at")?;
    let ends_at_ms = timestamp(map, "ends_at")?;
    if ends_at_ms < starts_at_ms {
        return Err(problem("ends_at", "ends_at is before starts_at"));
    }
    let capacity = match map.get("capacity") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(c) if (1..=MAX_CAPACITY).contains(&c) => Some(c),
            _ => {
                return Err(problem(
                    "capacity",
                    format!("capacity is a whole number from 1 to {MAX_CAPACITY}, not {n}"),
                ));
            }
        },
        Some(other) => {
            return Err(problem(
                "capacity",
                format!("capacity is a positive whole number, not {other}"),
            ));
        }
    };
    Ok(Fields {
        title,
        description,
        starts_at_ms,
        ends_at_ms,
        location,
        capacity,
    })
}

fn text(
    map: &Map<String, Value>,
    field: &str,
    max: usize,
    required: bool,
) -> Result<String, Problem> {
    match map.get(field) {
        None | Some(Value::Null) if required => Err(coded(
            "missing_field",
            field,
            format!("{field} is required"),
        )),
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => {
            if required && s.trim().is_empty() {
                return Err(problem(field, format!("{field} must not be empty")));
            }
            let chars = s.chars().count();
            if chars > max {
                return Err(problem(
                    field,
                    format!("{field} is {chars} characters long; the limit is {max}"),
                ));
            }
            Ok(s.clone())
        }
        Some(_) => Err(problem(field, format!("{field} must be a string"))),
    }
}

fn timestamp(map: &Map<String, Value>, field: &str) -> Result<i64, Problem> {
    match map.get(field) {
        None | Some(Value::Null) => Err(coded(
            "missing_field",
            field,
            format!("{field} is required (RFC 3339, e.g. 2025-03-01T18:00:00Z)"),
        )),
        Some(Value::String(s)) => {
            let ms = time::parse_timestamp(s).map_err(|m| problem(field, m))?;
            // Index scores are within +-2^53 ms; keep to years 0001-9999.
            if !(-62_135_596_800_000..=253_402_300_799_999).contains(&ms) {
                return Err(problem(
                    field,
                    format!("{field} is outside the years 1 to 9999"),
                ));
            }
            Ok(ms)
        }
        Some(_) => Err(problem(
            field,
            format!("{field} must be a string (RFC 3339)"),
        )),
    }
}

impl Fields {
    /// The stored event.
    pub fn to_json(&self, id: &str, created_at: &str, updated_at: &str, version: u64) -> Value {
        json!({
            "id": id,
            "title": self.title,
            "description": self.description,
            "starts_at": time::format_unix_millis(self.starts_at_ms),
            "ends_at": time::format_unix_millis(self.ends_at_ms),
            "location": self.location,
            "capacity": self.capacity,
            "created_at": created_at,
            "updated_at": updated_at,
            "version": version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({"title": "Launch", "starts_at": "2025-03-01T18:00:00Z", "ends_at": "2025-03-01T20:00:00 +00:00",
               "location": "Hall A", "capacity": 100})
    }

    fn err(v: Value) -> Problem {
        check(&v, None).unwrap_err()
    }

    #[test]
    fn a_good_event_is_normalised() {
        let f = check(&body(), None).unwrap();
        assert_eq!(f.capacity, Some(100));
        let json = f.to_json("ID", "c", "u", 1);
        assert_eq!(json["ends_at"], "2025-03-01T20:00:00.000Z");
        assert_eq!(json["description"], "");
        let mut back = json.clone();
        back["title"] = "Launch 2".into();
        assert_eq!(check(&back, Some("ID")).unwrap().title, "Launch 2");
    }

    #[test]
    fn problems_name_their_field() {
        let with = |k: &str, v: Value| {
            let mut b = body();
            b[k] = v;
            err(b)
        };
        assert_eq!(with("title", json!(" ")).field, "title");
        assert_eq!(with("title", json!("t".repeat(201))).field, "title");
        assert_eq!(with("starts_at", json!("soon")).field, "starts_at");
        assert_eq!(
            with("ends_at", json!("2025-03-01T17:00:00Z")).message,
            "ends_at is before starts_at"
        );
        assert_eq!(with("capacity", json!(0)).field, "capacity");
        assert_eq!(with("capacity", json!(1.5)).field, "capacity");
        assert_eq!(with("capacity", json!("10")).field, "capacity");
        assert_eq!(with("colour", json!("red")).code, "unknown_field");
        assert_eq!(with("id", json!("x")).code, "read_only_field");
        assert_eq!(with("version", json!(3)).field, "version");
        assert_eq!(with("location", json!(5)).field, "location");
        let mut b = body();
        b.as_object_mut().unwrap().remove("ends_at");
        let e = err(b);
        assert_eq!((e.code, e.field.as_str()), ("missing_field", "ends_at"));
        let mut b = body();
        b["id"] = "other".into();
        assert_eq!(check(&b, Some("mine")).unwrap_err().field, "id");
        assert_eq!(err(json!([1])).field, "body");
    }
}
