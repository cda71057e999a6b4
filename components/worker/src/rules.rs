//! The fraud rules: each looks at one record (and what the worker has seen
//! recently) and names what is suspicious about it.

use serde::Deserialize;

/// A record as the transactions component queued it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Record {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    pub email: String,
    pub endereco: String,
    pub datatrasancao: String,
}

/// Dates this far ahead of the worker's clock are "in the future"; a little
/// slack absorbs clock skew between machines.
pub const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;

/// Flags raised by the rules that need only the record itself.
pub fn check(record: &Record, now_ms: i64) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if !record.is_active {
        flags.push("inactive_client");
    }
    if !plausible_email(&record.email) {
        flags.push("malformed_email");
    }
    match corral_sdk::time::parse_timestamp(&record.datatrasancao) {
        Ok(ms) if ms > now_ms + FUTURE_SLACK_MS => flags.push("future_date"),
        Ok(_) => {}
        Err(_) => flags.push("unparsable_date"),
    }
    if !plausible_address(&record.endereco) {
        flags.push("incomplete_address");
    }
    flags
}

/// `local@domain.tld`: one '@', a non-empty local part, a dotted domain of
/// letters, digits and hyphens, no spaces.
pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The seed's addresses read "City, State, Number": three parts, the last
/// a number.
pub fn plausible_address(address: &str) -> bool {
    let parts: Vec<&str> = address.split(',').map(str::trim).collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty())
        && parts
            .last()
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}
