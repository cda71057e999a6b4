//! The seed's transaction record and its validation.
//!
//! Field names are the seed's, misspelling included (`datatrasancao`): real
//! files use them. Validation collects every problem of every record, so a
//! person fixes a file in one round instead of one error per upload.

use serde::Serialize;
use serde_json::{Map, Value};

/// One accepted record, normalised.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    pub cliente: String,
    pub email: String,
    pub endereco: String,
    /// As written in the file.
    pub datatrasancao: String,
    /// `datatrasancao` as Unix milliseconds.
    pub timestamp_ms: i64,
}

/// What is wrong with one field of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub index: usize,
    #[serde(rename = "_id")]
    pub id: Option<String>,
    pub field: String,
    pub problem: String,
}

pub const MAX_ID_LEN: usize = 128;
pub const MAX_TEXT_LEN: usize = 1024;

/// Validates a whole file: a JSON array of records, at most `max_records`.
pub fn validate(body: &[u8], max_records: usize) -> Result<Vec<Record>, Vec<Problem>> {
    let whole = |field: &str, problem: String| {
        vec![Problem {
            index: 0,
            id: None,
            field: field.to_owned(),
            problem,
        }]
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|e| whole("body", format!("not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(whole("body", "must be a JSON array of records".into()));
    };
    if items.is_empty() {
        return Err(whole("body", "the array has no records".into()));
    }
    if items.len() > max_records {
        return Err(whole(
            "body",
            format!("{} records; at most {max_records} per upload", items.len()),
        ));
    }
    let mut records = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match check(index, item) {
            Ok(record) => records.push(record),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if problems.is_empty() {
        Ok(records)
    } else {
        Err(problems)
    }
}

fn check(index: usize, item: &Value) -> Result<Record, Vec<Problem>> {
    let Value::Object(fields) = item else {
        return Err(vec![Problem {
            index,
            id: None,
            field: "record".into(),
            problem: "must be a JSON object".into(),
        }]);
    };
    // Named in every problem of the record: cut to the longest valid id,
    // so that one huge `_id` cannot multiply the size of the answer.
    let id = fields
        .get("_id")
        .and_then(Value::as_str)
        .map(|id| id.chars().take(MAX_ID_LEN).collect::<String>());
    let mut problems = Vec::new();
    let mut report = |field: &str, problem: String| {
        problems.push(Problem {
            index,
            id: id.clone(),
            field: field.to_owned(),
            problem,
        })
    };
    let record_id = text(fields, "_id", MAX_ID_LEN, &mut report);
    if let Some(id) = &record_id
        && !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        report(
            "_id",
            "may only hold letters, digits, '-', '_' and '.'".into(),
        );
    }
    let is_active = match fields.get("isActive") {
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            report("isActive", "must be true or false".into());
            None
        }
        None => {
            report("isActive", "is missing".into());
            None
        }
    };
    let cliente = text(fields, "cliente", MAX_TEXT_LEN, &mut report);
    // A malformed address is not an upload error: flagging it is the
    // worker's fraud rule. It must still be a string.
    let email = text(fields, "email", MAX_TEXT_LEN, &mut report);
    let endereco = text(fields, "endereco", MAX_TEXT_LEN, &mut report);
    let date = text(fields, "datatrasancao", 64, &mut report);
    let timestamp_ms = date
        .as_deref()
        .and_then(|d| match corral_sdk::time::parse_timestamp(d) {
            Ok(ms) => Some(ms),
            Err(problem) => {
                report("datatrasancao", problem);
                None
            }
        });
    match (
        record_id,
        is_active,
        cliente,
        email,
        endereco,
        date,
        timestamp_ms,
    ) {
        (
            Some(id),
            Some(is_active),
            Some(cliente),
            Some(email),
            Some(endereco),
            Some(datatrasancao),
            Some(timestamp_ms),
        ) if problems.is_empty() => Ok(Record {
            id,
            is_active,
            cliente,
            email,
            endereco,
            datatrasancao,
            timestamp_ms,
        }),
        _ => Err(problems),
    }
}

/// A required, non-empty string field of at most `max` bytes.
fn text(
    fields: &Map<String, Value>,
    name: &str,
    max: usize,
    report: &mut impl FnMut(&str, String),
) -> Option<String> {
    match fields.get(name) {
        None | Some(Value::Null) => report(name, "is missing".into()),
        Some(Value::String(s)) if s.trim().is_empty() => report(name, "is empty".into()),
        Some(Value::String(s)) if s.len() > max => {
            report(name, format!("is longer than {max} bytes"))
        }
        Some(Value::String(s)) => return Some(s.clone()),
        Some(_) => report(name, "must be a string".into()),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_id_is_cut_in_every_problem_it_names() {
        let id = "x".repeat(100_000);
        let body = serde_json::json!([{ "_id": id, "isActive": "yes" }]).to_string();
        let problems = validate(body.as_bytes(), 10).unwrap_err();
        assert!(problems.len() >= 2, "{}", problems.len());
        for problem in &problems {
            assert_eq!(problem.id.as_deref().map(str::len), Some(MAX_ID_LEN));
        }
        assert!(problems.iter().any(|p| p.field == "_id"));
    }
}
