//! The message broker: what the `messaging` capability publishes to and
//! the queue trigger consumes from, whichever backend runs it. Confirmed
//! publishing, and subscriptions whose deliveries are settled explicitly
//! (ack, retry later, dead-letter).
//!
//! Both backends ([`amqp`]: RabbitMQ; [`embedded`]: a redb queue in the
//! state folder) give the same guarantees, so that a component behaves the
//! same on a laptop and in compose:
//!
//! * `publish` returns `Ok` only once the message is durably stored;
//! * a delivery stays owned by its consumer until it is settled; if the
//!   consumer (or the host) dies first, the message is delivered again;
//! * settling never loses a message: a retry or a dead-letter copy is stored
//!   before the original is removed, so a crash in between duplicates it at
//!   worst (consumers recognise duplicates by `message-id`).
//!
//! Queue and exchange names here are the *logical* names components use;
//! each backend adds `queue_prefix` itself.
//!
//! The broker sits below the capabilities and the triggers: it knows
//! nothing of WIT or of components. [`settings`] is its `[messaging]`
//! section, [`routing`] the exchange rules both backends share, and
//! [`LazyBroker`] starts the configured backend on first use.

pub mod amqp;
pub mod embedded;
mod lazy;
pub mod routing;
pub mod settings;

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use lazy::LazyBroker;
pub use settings::{BindingConfig, BrokerSettings, ExchangeConfig};

/// The host-level table the broker reads its settings from.
pub const SECTION: &str = "messaging";

/// One message, as published and as delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    /// Application headers, delivered to the consumer as given.
    pub headers: Vec<(String, String)>,
    /// A stable id: consumers use it to recognise redeliveries.
    pub message_id: Option<String>,
}

/// Why a publish failed, as the guest sees it (`messaging.error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Not stored for sure: the broker was unreachable or did not confirm
    /// in time. Retrying may duplicate.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (negative confirm).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The request itself is malformed (name too long, empty queue...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Published to an exchange, the message matched no binding: nothing
    /// was stored (AMQP `mandatory` returned it). Final: retrying the same
    /// key gives the same answer until the bindings change.
    #[error(
        "unroutable: no queue bound to exchange {exchange:?} matches routing key {routing_key:?}"
    )]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
}

/// A broker backend.
pub trait Broker: Send + Sync + 'static {
    /// Stores `messages` in `queue`, in order, and returns once all of them
    /// are durable. On error, some may have been stored.
    fn publish<'a>(
        &'a self,
        queue: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), PublishError>>;

    /// Stores `messages`, in order, in every queue bound to the configured
    /// exchange `exchange` whose binding matches `routing_key` (see
    /// [`super::routing`]), and returns once all copies are durable. No
    /// matching binding is [`PublishError::Unroutable`]. An exchange the
    /// configuration does not declare is [`PublishError::Invalid`].
    fn publish_to_exchange<'a>(
        &'a self,
        exchange: &'a str,
        routing_key: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), PublishError>>;

    /// Starts consuming `spec.queue`. The subscription survives broker
    /// outages (it re-subscribes by itself) until it is closed.
    fn subscribe(&self, spec: Subscribe) -> Subscription;
}

/// What to consume and how.
#[derive(Debug, Clone)]
pub struct Subscribe {
    /// Logical queue name.
    pub queue: String,
    /// Logical name of the dead-letter queue of `queue`.
    pub dead_letter: String,
    /// Deliveries handed out before earlier ones are settled.
    pub prefetch: u16,
}

/// How a delivery ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed: remove it.
    Ack,
    /// Deliver it again after `delay`, with `attempt + 1`.
    Retry(Duration),
    /// Move it to the dead-letter queue, recording `reason`.
    DeadLetter(String),
}

/// Header carrying the reason on a dead-lettered message.
pub const DEAD_REASON_HEADER: &str = "x-corral-dead-reason";
/// Header carrying the queue a dead-lettered message came from.
pub const DEAD_SOURCE_HEADER: &str = "x-corral-dead-source";

/// Prefix of the headers the host itself writes on messages (attempt count,
/// dead-letter reason and source). Only the host may set them: a component
/// that could would make a fresh message look like a dead letter, or reset
/// its own retry count.
pub const RESERVED_HEADER_PREFIX: &str = "x-corral-";

/// Removes the host's reserved headers from a message a component
/// publishes. Stripped, not refused: a component that forwards a delivered
/// message (a redrive from a dead-letter queue, say) passes on the headers
/// the host put there, and must still be able to publish it; the host sets
/// its own again where they apply.
pub fn strip_reserved_headers(message: &mut Message) {
    message
        .headers
        .retain(|(name, _)| !is_reserved_header(name));
}

fn is_reserved_header(name: &str) -> bool {
    name.len() >= RESERVED_HEADER_PREFIX.len()
        && name[..RESERVED_HEADER_PREFIX.len()].eq_ignore_ascii_case(RESERVED_HEADER_PREFIX)
}

/// One message handed to a consumer, owned until [`Delivery::settle`].
pub struct Delivery {
    /// Logical queue name.
    pub queue: String,
    pub message: Message,
    /// 1 on first delivery, +1 per retry.
    pub attempt: u32,
    settler: Box<dyn Settle>,
}

/// The backend's part of a delivery: how to carry out an outcome.
pub trait Settle: Send + Sync + 'static {
    fn settle(
        self: Box<Self>,
        message: Message,
        attempt: u32,
        outcome: Outcome,
    ) -> BoxFuture<'static, anyhow::Result<()>>;
}

impl Delivery {
    pub fn new(queue: String, message: Message, attempt: u32, settler: Box<dyn Settle>) -> Self {
        Self {
            queue,
            message,
            attempt: attempt.max(1),
            settler,
        }
    }

    /// Carries out `outcome`. An error means the outcome may not have been
    /// applied: the message is then delivered again later (it is never
    /// lost, but it may be handled twice).
    pub async fn settle(self, outcome: Outcome) -> anyhow::Result<()> {
        self.settler
            .settle(self.message, self.attempt, outcome)
            .await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("message_id", &self.message.message_id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// A running consumer: deliveries come out of [`Subscription::next`].
pub struct Subscription {
    deliveries: mpsc::Receiver<Delivery>,
    stop: crate::shutdown::Trigger,
    task: JoinHandle<()>,
}

impl Subscription {
    /// Wraps a backend's consumer task. The task sends deliveries on the
    /// returned channel's sender and ends when `stop` fires.
    pub fn new(
        deliveries: mpsc::Receiver<Delivery>,
        stop: crate::shutdown::Trigger,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            deliveries,
            stop,
            task,
        }
    }

    /// The next delivery; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }

    /// A delivery the backend has already handed over, without waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.deliveries.try_recv().ok()
    }

    /// Stops consuming. Call it once the deliveries taken are settled (a
    /// delivery settled afterwards may fail and be delivered again): every
    /// delivery not settled by then, including those the broker had sent
    /// ahead and nobody took, goes back to the queue.
    pub async fn close(self) {
        self.stop.fire();
        drop(self.deliveries);
        let _ = self.task.await;
    }
}

/// A message id for messages published without one, so that consumers can
/// always recognise a redelivery.
pub fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}
