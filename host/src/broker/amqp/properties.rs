//! Between a component's `message` and AMQP's message properties.
//!
//! Messages are persistent (`delivery-mode 2`, so a durable queue keeps them
//! across a broker restart) and always carry a `message-id`. The attempt
//! number travels in the `x-corral-attempt` header, which the host owns: it
//! is stripped from what a component publishes and from what it receives
//! (the delivery's `attempt` field says it), as are RabbitMQ's own
//! dead-lettering bookkeeping headers (`x-death`...).

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};

use super::topology::string;
use crate::broker::{
    DEAD_REASON_HEADER, DEAD_SOURCE_HEADER, Message, PublishError, new_message_id,
};

pub const ATTEMPT_HEADER: &str = "x-corral-attempt";
const PERSISTENT: u8 = 2;
/// Longest dead-letter reason kept in the header.
const MAX_REASON: usize = 4096;

/// Headers that belong to the host or the broker, not to the application.
fn is_internal(name: &str) -> bool {
    name == ATTEMPT_HEADER
        || name == "x-death"
        || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
}

/// The properties of a message a component publishes (attempt 1).
pub fn outgoing(message: &Message) -> Result<BasicProperties, PublishError> {
    let mut headers = FieldTable::default();
    for (name, value) in &message.headers {
        if is_internal(name) {
            continue;
        }
        let key = ShortString::try_new(name.as_str())
            .map_err(|_| PublishError::Invalid(format!("header name {name:?} is too long")))?;
        headers.insert(key, string(value));
    }
    let id = message.message_id.clone().unwrap_or_else(new_message_id);
    let id = ShortString::try_new(id)
        .map_err(|_| PublishError::Invalid("message-id is longer than 255 bytes".into()))?;
    let mut properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(id)
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
        .with_headers(headers);
    if let Some(content_type) = &message.content_type {
        let content_type = ShortString::try_new(content_type.as_str())
            .map_err(|_| PublishError::Invalid("content-type is longer than 255 bytes".into()))?;
        properties = properties.with_content_type(content_type);
    }
    Ok(properties)
}

/// A delivered message as the component sees it, and its attempt number.
pub fn incoming(properties: &BasicProperties, body: &[u8]) -> (Message, u32) {
    let mut attempt = 1;
    let mut headers = Vec::new();
    if let Some(table) = properties.headers() {
        for (name, value) in table.inner() {
            let name = name.as_str();
            if name == ATTEMPT_HEADER {
                attempt = as_u32(value).unwrap_or(1).max(1);
            }
            if is_internal(name) {
                continue;
            }
            if let Some(text) = as_text(value) {
                headers.push((name.to_owned(), text));
            }
        }
    }
    let message = Message {
        body: body.to_vec(),
        content_type: properties.content_type().as_ref().map(|s| s.to_string()),
        headers,
        message_id: properties.message_id().as_ref().map(|s| s.to_string()),
    };
    (message, attempt)
}

/// `properties` with the attempt header set to `attempt`.
pub fn with_attempt(properties: &BasicProperties, attempt: u32) -> BasicProperties {
    with_headers(
        properties,
        &[(ATTEMPT_HEADER, AMQPValue::LongLongInt(attempt.into()))],
    )
}

/// `properties` for the dead-letter copy: the reason, where it came from and
/// the attempt it died at.
pub fn dead(
    properties: &BasicProperties,
    attempt: u32,
    reason: &str,
    source: &str,
) -> BasicProperties {
    let reason: String = reason.chars().take(MAX_REASON).collect();
    with_headers(
        properties,
        &[
            (ATTEMPT_HEADER, AMQPValue::LongLongInt(attempt.into())),
            (DEAD_REASON_HEADER, string(&reason)),
            (DEAD_SOURCE_HEADER, string(source)),
        ],
    )
}

fn with_headers(properties: &BasicProperties, set: &[(&str, AMQPValue)]) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(table) = properties.headers() {
        for (name, value) in table.inner() {
            // The broker's `x-death` history is dropped: it would otherwise
            // follow the message around every retry.
            if !is_internal(name.as_str()) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    for (name, value) in set {
        headers.insert((*name).into(), value.clone());
    }
    properties.clone().with_headers(headers)
}

fn as_u32(value: &AMQPValue) -> Option<u32> {
    let n: i128 = match value {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.parse().ok()?,
        _ => return None,
    };
    u32::try_from(n).ok()
}

/// Headers reach components as text; numbers and booleans (other clients
/// send those) are written out, nested tables and arrays are left out.
fn as_text(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Timestamp(t) => t.to_string(),
        AMQPValue::Float(f) => f.to_string(),
        AMQPValue::Double(d) => d.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            body: b"hi".to_vec(),
            content_type: Some("text/plain".into()),
            headers: vec![
                ("k".into(), "v".into()),
                (ATTEMPT_HEADER.into(), "9".into()),
            ],
            message_id: Some("id-1".into()),
        }
    }

    #[test]
    fn a_message_survives_the_round_trip_without_host_headers() {
        let properties = outgoing(&message()).unwrap();
        assert_eq!(properties.delivery_mode(), &Some(PERSISTENT));
        let (back, attempt) = incoming(&properties, b"hi");
        assert_eq!(attempt, 1, "a component cannot set its own attempt");
        assert_eq!(back.headers, vec![("k".to_string(), "v".to_string())]);
        assert_eq!(back.message_id.as_deref(), Some("id-1"));
        assert_eq!(back.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn retries_carry_the_attempt_and_dead_letters_the_reason() {
        let properties = outgoing(&message()).unwrap();
        let (_, attempt) = incoming(&with_attempt(&properties, 3), b"");
        assert_eq!(attempt, 3);
        let (dead, attempt) = incoming(&dead(&properties, 4, "bad input", "jobs"), b"");
        assert_eq!(attempt, 4);
        assert!(
            dead.headers
                .contains(&(DEAD_REASON_HEADER.into(), "bad input".into()))
        );
        assert!(
            dead.headers
                .contains(&(DEAD_SOURCE_HEADER.into(), "jobs".into()))
        );
    }

    #[test]
    fn missing_ids_are_generated_and_long_names_refused() {
        let mut m = message();
        m.message_id = None;
        let properties = outgoing(&m).unwrap();
        assert_eq!(properties.message_id().as_ref().unwrap().as_str().len(), 32);
        m.headers = vec![("h".repeat(300), "v".into())];
        assert!(matches!(outgoing(&m), Err(PublishError::Invalid(_))));
    }
}
