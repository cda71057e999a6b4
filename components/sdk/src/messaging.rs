//! Publishing to queues and exchanges through `corral:platform/messaging`.
//!
//! Every publish is confirmed: `Ok` means the broker (RabbitMQ, or the
//! host's embedded queue) has stored the message durably. A component may
//! publish only to the queues its `grants.messaging.publish` lists, and to
//! the exchanges its `grants.messaging.exchanges` lists (exchanges and
//! their bindings are declared in the host's `[[messaging.exchanges]]`).
//!
//! ```ignore
//! use corral_sdk::messaging::{self, Message};
//! messaging::publish("transactions", &Message::json(&event).with_id("batch-7"))?;
//! messaging::publish_to_exchange("events", "user.created", &Message::json(&user))?;
//! ```

use serde::Serialize;

use crate::bindings::corral::platform::messaging as wit;
pub use crate::bindings::corral::platform::messaging::{Error, Message};

impl Message {
    /// A message with `body` and nothing else (the host assigns an id).
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            content_type: None,
            headers: Vec::new(),
            message_id: None,
        }
    }

    /// A UTF-8 text message (`text/plain`).
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(body.into().into_bytes()).with_content_type("text/plain; charset=utf-8")
    }

    /// `value` as a JSON message (`application/json`).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("serialisable value");
        Self::new(body).with_content_type("application/json")
    }

    /// Sets the id consumers use to recognise redeliveries.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Publishes `message` to `queue`; returns once the broker confirmed it.
pub fn publish(queue: &str, message: &Message) -> Result<(), Error> {
    wit::publish(queue, message)
}

/// Publishes `messages` to `queue`, confirmed together.
pub fn publish_batch(queue: &str, messages: &[Message]) -> Result<(), Error> {
    wit::publish_batch(queue, messages)
}

/// Publishes `message` to `exchange` with `routing_key`: every bound queue
/// whose binding matches gets a copy. A key no binding matches is
/// `Error::Rejected` (see [`Error::is_unroutable`]), never a silent drop.
pub fn publish_to_exchange(
    exchange: &str,
    routing_key: &str,
    message: &Message,
) -> Result<(), Error> {
    wit::publish_to_exchange(exchange, routing_key, message)
}

/// Publishes `messages` to `exchange` with `routing_key`, confirmed together.
pub fn publish_batch_to_exchange(
    exchange: &str,
    routing_key: &str,
    messages: &[Message],
) -> Result<(), Error> {
    wit::publish_batch_to_exchange(exchange, routing_key, messages)
}

impl Error {
    /// Whether a publish to an exchange was refused because no binding
    /// matched its routing key.
    pub fn is_unroutable(&self) -> bool {
        matches!(self, Error::Rejected(m) if m.starts_with("unroutable:"))
    }

    /// A stable code for error bodies: `not_granted`, `unavailable`,
    /// `rejected`, `invalid`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotGranted(_) => "not_granted",
            Error::Unavailable(_) => "unavailable",
            Error::Rejected(_) => "rejected",
            Error::Invalid(_) => "invalid",
        }
    }

    /// The HTTP status that fits when a request failed because of this.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotGranted(_) => 403,
            Error::Unavailable(_) => 503,
            Error::Rejected(_) => 502,
            Error::Invalid(_) => 400,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Error::NotGranted(m)
            | Error::Unavailable(m)
            | Error::Rejected(m)
            | Error::Invalid(m) => m,
        }
    }
}
