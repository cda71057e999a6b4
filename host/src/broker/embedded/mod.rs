//! The embedded backend: a durable queue in one redb file under
//! `messaging.path`, for running without a broker (a laptop, tests).
//!
//! Same promises as RabbitMQ: a publish returns once the message is synced
//! to disk; consumers get messages in arrival order; a message is removed
//! only when settled, so anything in flight when the host dies is delivered
//! again after the restart; retries wait in a delayed table and then join
//! the end of their queue; dead messages move to the dead-letter queue with
//! the reason in a header.
//!
//! Exchanges are a routing step in front of the queues: a publish to an
//! exchange appends the message to every matching bound queue (see
//! [`super::routing`]) in one transaction, so that either every queue has
//! it or none does.
//!
//! * [`store`]: the file and its single group-committing writer;
//! * [`claims`]: in-flight bookkeeping (memory only, on purpose);
//! * [`consumer`]: subscriptions and settling;
//! * [`record`]: the stored layout.

mod claims;
mod consumer;
mod message_store;
mod record;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::broker::routing::check_routing_key;
use crate::broker::settings::ExchangeConfig;
use crate::broker::{Broker, Message, PublishError, Subscribe, Subscription, new_message_id};
use consumer::now_ms;
use message_store::{MessageStore, Write};
use record::Record;

/// Longest queue name accepted.
const MAX_NAME: usize = 255;
/// How long the delay task sleeps when nothing is delayed (it is woken
/// early when a retry is scheduled).
const IDLE_PLAN: Duration = Duration::from_secs(3600);

pub struct Embedded {
    store: Arc<MessageStore>,
    prefix: String,
    /// The configured exchanges, by logical name.
    exchanges: HashMap<String, ExchangeConfig>,
}

impl Embedded {
    /// Opens the queue in `dir` and starts its delay task (on the current
    /// tokio runtime).
    pub fn open(dir: &Path, prefix: &str) -> anyhow::Result<Self> {
        let store = MessageStore::open(dir)?;
        tokio::spawn(promote_due(Arc::downgrade(&store)));
        Ok(Self {
            store,
            prefix: prefix.to_owned(),
            exchanges: HashMap::new(),
        })
    }

    /// Routes `publish_to_exchange` through `exchanges` (nothing to store:
    /// the bindings are configuration, and a queue exists once it has a
    /// message).
    pub fn with_exchanges(mut self, exchanges: impl IntoIterator<Item = ExchangeConfig>) -> Self {
        self.exchanges = exchanges.into_iter().map(|e| (e.name.clone(), e)).collect();
        self
    }

    fn stored(&self, logical: &str) -> String {
        format!("{}{logical}", self.prefix)
    }

    /// Messages in `queue` (ready or in flight).
    pub fn depth(&self, queue: &str) -> anyhow::Result<usize> {
        self.store.depth(&self.stored(queue))
    }
}

impl Embedded {
    /// Appends `messages` to each of `queues` (logical names, already
    /// checked) in one durable transaction.
    async fn append(&self, queues: &[&str], messages: Vec<Message>) -> Result<(), PublishError> {
        if messages.is_empty() {
            return Ok(());
        }
        let records = messages
            .into_iter()
            .map(|mut message| {
                message.message_id.get_or_insert_with(new_message_id);
                message
                    .headers
                    .retain(|(name, _)| name != "x-corral-attempt");
                Record {
                    message,
                    attempt: 1,
                }
            })
            .collect();
        let write = Write::Append {
            queues: queues.iter().map(|q| self.stored(q)).collect(),
            records,
        };
        self.store
            .write(write)
            .await
            .map(drop)
            .map_err(|e| PublishError::Unavailable(e.to_string()))
    }
}

fn check_queue(queue: &str) -> Result<(), PublishError> {
    if queue.is_empty() || queue.len() > MAX_NAME {
        return Err(PublishError::Invalid(format!(
            "a queue name must have 1 to {MAX_NAME} bytes"
        )));
    }
    Ok(())
}

impl Broker for Embedded {
    fn publish<'a>(
        &'a self,
        queue: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            check_queue(queue)?;
            self.append(&[queue], messages).await
        })
    }

    fn publish_to_exchange<'a>(
        &'a self,
        exchange: &'a str,
        routing_key: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let Some(config) = self.exchanges.get(exchange) else {
                return Err(PublishError::Invalid(format!(
                    "exchange {exchange:?} is not declared in [[messaging.exchanges]]"
                )));
            };
            check_routing_key(routing_key)?;
            // As on RabbitMQ, where nothing is sent: no message, no error.
            if messages.is_empty() {
                return Ok(());
            }
            let queues = config.route(routing_key);
            for queue in &queues {
                check_queue(queue)?;
            }
            if queues.is_empty() {
                return Err(PublishError::Unroutable {
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.to_owned(),
                });
            }
            self.append(&queues, messages).await
        })
    }

    fn subscribe(&self, spec: Subscribe) -> Subscription {
        let logical = spec.queue.clone();
        let spec = Subscribe {
            queue: self.stored(&spec.queue),
            dead_letter: self.stored(&spec.dead_letter),
            prefetch: spec.prefetch,
        };
        consumer::start(self.store.clone(), spec, logical)
    }
}

/// Moves due retries back into their queues, sleeping until the next one is
/// due (or a new one is scheduled). Ends with the store.
async fn promote_due(store: Weak<MessageStore>) {
    loop {
        let Some(strong) = store.upgrade() else {
            return;
        };
        let wake = strong.delay_wake.clone();
        let now = now_ms();
        let next = match strong.write(Write::Promote { now_ms: now }).await {
            Ok(next) => next,
            Err(error) => {
                tracing::error!("moving due retries: {error}");
                Some(now + 1000)
            }
        };
        drop(strong);
        let wait = next.map_or(IDLE_PLAN, |due| {
            Duration::from_millis(due.saturating_sub(now))
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}
