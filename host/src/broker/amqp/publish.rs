//! Confirmed publishing, across reconnects.
//!
//! A publish returns `Ok` only after the broker's positive confirm for every
//! message: the broker has then written it to its durable queue. Within
//! `confirm_timeout_ms` a publish rides out an outage: when the connection
//! drops before the confirms come, the messages still unconfirmed are sent
//! again on the next connection (one the broker had stored but not yet
//! confirmed is then stored twice; consumers tell by `message-id`). When the
//! time is up without confirms it says `unavailable` — never `Ok` for a
//! message that may not be stored.
//!
//! Every message is `mandatory`: one the broker cannot route comes back
//! (basic.return, then the ack) instead of vanishing. Published to a queue,
//! that means the queue was deleted behind our back: it is declared again
//! and the message resent. Published to an exchange, it may mean a bound
//! queue was deleted (taking its bindings along), so the exchange and its
//! queues are declared again and the message resent once; returned again,
//! no binding matches the key and the publish is `Unroutable`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Confirmation};
use tokio::time::Instant;

use super::link::{Link, Links};
use super::topology::{Route, Topology, short};
use crate::broker::PublishError;

/// Pause between attempts after a failure, so that a broken channel does
/// not turn into a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A message ready for the wire.
pub struct Outgoing {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

/// Publishes on the host's connection: shared by the capability and the
/// queue trigger's retries and dead-letters.
pub struct Publisher {
    pub links: Arc<Links>,
    pub topology: Topology,
    pub confirm_timeout: Duration,
}

enum Failure {
    /// The broker refused a message: final.
    Nack,
    /// The exchange returned a message: no binding took it.
    Returned(String),
    /// Something that another attempt may fix (connection, channel).
    Retry(String),
}

impl Publisher {
    /// Declares what `route` needs and publishes `items` along it.
    pub async fn send(&self, route: &Route, items: &[Outgoing]) -> Result<(), PublishError> {
        let ms = self.confirm_timeout.as_millis();
        let deadline = Instant::now() + self.confirm_timeout;
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut last_error: Option<String> = None;
        // Whether the exchange and its queues were declared again after a
        // return (see the module docs).
        let mut redeclared = false;
        let because = |e: &Option<String>| {
            e.as_ref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        };
        loop {
            if Instant::now() >= deadline {
                return Err(PublishError::Unavailable(format!(
                    "no confirm from RabbitMQ within {ms} ms{}",
                    because(&last_error)
                )));
            }
            let Some(link) = self.links.wait(Some(deadline)).await else {
                return Err(PublishError::Unavailable(format!(
                    "no connection to RabbitMQ within {ms} ms{}",
                    because(&last_error)
                )));
            };
            let attempt = attempt(&link, route, items, &mut pending);
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(Failure::Nack)) => {
                    return Err(PublishError::Rejected(format!(
                        "RabbitMQ refused the message for {} (negative confirm)",
                        route.describe()
                    )));
                }
                Ok(Err(Failure::Returned(why))) => {
                    let exchange = route.exchange.as_ref().expect("only exchanges return");
                    if redeclared {
                        tracing::debug!(destination = %route.describe(), "unroutable: {why}");
                        return Err(PublishError::Unroutable {
                            exchange: exchange.logical.clone(),
                            routing_key: route.routing_key.clone(),
                        });
                    }
                    redeclared = true;
                    link.forget_exchange(&exchange.name);
                    for queue in &route.queues {
                        link.forget(&queue.name);
                    }
                }
                Ok(Err(Failure::Retry(error))) => {
                    tracing::debug!(destination = %route.describe(), generation = link.generation, "publish attempt failed: {error}");
                    self.links.suspect(&link);
                    last_error = Some(error);
                    tokio::time::sleep_until((Instant::now() + RETRY_PAUSE).min(deadline)).await;
                }
                Err(_) => {
                    return Err(PublishError::Unavailable(format!(
                        "no confirm from RabbitMQ within {ms} ms{}",
                        because(&last_error)
                    )));
                }
            }
        }
    }
}

/// One try on one connection. `pending` keeps the indices of the items not
/// confirmed yet.
async fn attempt(
    link: &Link,
    route: &Route,
    items: &[Outgoing],
    pending: &mut Vec<usize>,
) -> Result<(), Failure> {
    link.declare(&route.queues)
        .await
        .map_err(|e| Failure::Retry(format!("declaring: {e}")))?;
    if let Some(exchange) = &route.exchange {
        link.declare_exchange(exchange)
            .await
            .map_err(|e| Failure::Retry(format!("declaring the exchange: {e}")))?;
    }
    let channel = link
        .publisher()
        .await
        .map_err(|e| Failure::Retry(format!("opening a channel: {e}")))?;
    // `mandatory`: a message nothing takes (the queue vanished, or no
    // binding of the exchange matches) comes back instead of being dropped.
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    // All the publishes at once: each one's frames are queued, in order, at
    // its first poll, and its future then only waits for the connection's
    // I/O loop to write them. Awaiting them one after another made every
    // message wait for a hand-off to that loop (2,500 msg/s at best).
    let sends = pending.iter().map(|&i| {
        let (item, channel) = (&items[i], &channel);
        async move {
            let sent = channel
                .basic_publish(
                    short(route.exchange_name()),
                    short(&route.routing_key),
                    options,
                    &item.body,
                    item.properties.clone(),
                )
                .await;
            (i, sent)
        }
    });
    let mut confirms = Vec::with_capacity(pending.len());
    let mut send_error = None;
    for (i, sent) in join_all(sends).await {
        match sent {
            Ok(confirm) => confirms.push((i, confirm)),
            Err(e) => {
                send_error.get_or_insert_with(|| format!("publishing: {e}"));
            }
        }
    }
    let results = join_all(
        confirms
            .into_iter()
            .map(|(i, c)| async move { (i, c.await) }),
    )
    .await;
    let mut confirmed = HashSet::new();
    let mut nacked = false;
    let mut returned = None;
    let mut problem = send_error;
    for (i, result) in results {
        match result {
            Ok(Confirmation::Ack(None)) => {
                confirmed.insert(i);
            }
            Ok(Confirmation::Ack(Some(message))) if route.exchange.is_some() => {
                returned = Some(message.reply_text.to_string());
            }
            Ok(Confirmation::Ack(Some(message))) => {
                link.forget(&route.routing_key);
                problem = Some(format!(
                    "queue {:?} is gone ({})",
                    route.routing_key, message.reply_text
                ));
            }
            Ok(Confirmation::Nack(_)) => nacked = true,
            Ok(Confirmation::NotRequested) => {
                problem = Some("the channel is not in confirm mode".into())
            }
            Err(e) => problem = Some(format!("waiting for the confirm: {e}")),
        }
    }
    pending.retain(|i| !confirmed.contains(i));
    if nacked {
        Err(Failure::Nack)
    } else if let Some(why) = returned {
        Err(Failure::Returned(why))
    } else if let Some(problem) = problem {
        Err(Failure::Retry(problem))
    } else {
        Ok(())
    }
}
