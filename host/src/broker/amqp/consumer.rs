//! Consuming a queue on RabbitMQ, across reconnects.
//!
//! Each connection gets its own consumer channel with `basic.qos(prefetch)`
//! and manual acknowledgements. When the connection (or just the channel)
//! dies, every delivery not acknowledged yet goes back to the queue on the
//! broker's side, and this task subscribes again on the next connection:
//! nothing is lost, and what was in flight is delivered again.
//!
//! Settling a delivery follows one rule: store the next copy first, confirm
//! it, then ack the original. A retry is published (confirmed) to the
//! queue's delay queue with `x-corral-attempt + 1`; a dead letter to the
//! dead-letter queue with the reason. If that publish fails, the original is
//! handed back (`nack` + requeue) to be handled again. Acks go out
//! coalesced (see [`super::acks`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Acker, BasicProperties, Channel, Consumer};
use tokio::sync::mpsc;

use super::acks::Acks;
use super::link::{Link, Links};
use super::properties;
use super::publish::{Outgoing, Publisher};
use super::topology::{Route, short};
use crate::broker::{Delivery, Message, Outcome, Settle, Subscribe, Subscription, new_message_id};
use crate::shutdown::Shutdown;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Consumes on `links` (the consumers' connection, apart from the
/// publishers' so that the broker reads the two streams of frames in
/// parallel); retries and dead letters are published with `publisher`.
pub fn start(publisher: Arc<Publisher>, links: Arc<Links>, spec: Subscribe) -> Subscription {
    // Room for everything the prefetch lets out, so that a batch trigger
    // finds what has arrived without waiting on this task.
    let (deliveries, rx) = mpsc::channel(spec.prefetch.max(1).into());
    let (stop, stop_rx) = crate::shutdown::channel();
    let checked = [&spec.queue, &spec.dead_letter]
        .into_iter()
        .try_for_each(|name| publisher.topology.check(name));
    let task = match checked {
        Ok(()) => tokio::spawn(run(publisher, links, spec, deliveries, stop_rx)),
        Err(error) => {
            tracing::error!(queue = %spec.queue, "cannot consume: {error}");
            tokio::spawn(async {})
        }
    };
    Subscription::new(rx, stop, task)
}

async fn run(
    publisher: Arc<Publisher>,
    links: Arc<Links>,
    spec: Subscribe,
    deliveries: mpsc::Sender<Delivery>,
    mut stop: Shutdown,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let link = tokio::select! {
            () = stop.wait() => return,
            link = links.wait(None) => match link {
                Some(link) => link,
                None => return,
            },
        };
        // A connection cut in the middle of the declare/qos/consume calls can
        // leave one of them waiting forever; bound the whole subscribe.
        let opened = match tokio::time::timeout(OPEN_TIMEOUT, open(&publisher, &link, &spec)).await
        {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {OPEN_TIMEOUT:?}")),
        };
        let (channel, mut consumer) = match opened {
            Ok(opened) => {
                backoff = FIRST_BACKOFF;
                opened
            }
            Err(error) => {
                tracing::warn!(queue = %spec.queue, "cannot subscribe: {error}; retrying");
                links.suspect(&link);
                tokio::select! {
                    () = stop.wait() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::info!(queue = %spec.queue, generation = link.generation, prefetch = spec.prefetch, "consuming");
        let acks = Arc::new(Acks::start(spec.queue.clone()));
        let ended = loop {
            let next = tokio::select! {
                () = stop.wait() => {
                    close(&channel, &acks).await;
                    return;
                }
                next = consumer.next() => next,
                () = links.lost(&link) => break "the connection was lost".to_string(),
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => break error.to_string(),
                None => break "the broker ended the subscription".to_string(),
            };
            let delivery = to_delivery(&publisher, &spec, &acks, delivery);
            tokio::select! {
                // An undelivered delivery is dropped here: it goes back to
                // the queue (see `AmqpSettle`'s `Drop`) or with the channel.
                () = stop.wait() => {
                    close(&channel, &acks).await;
                    return;
                }
                sent = deliveries.send(delivery) => if sent.is_err() {
                    close(&channel, &acks).await;
                    return;
                },
                // Its handlers are all busy and the connection died: what
                // is in flight comes back from the broker; subscribe again.
                () = links.lost(&link) => break "the connection was lost".to_string(),
            }
        };
        tracing::warn!(queue = %spec.queue, generation = link.generation, "consumer interrupted ({ended}); subscribing again");
        links.suspect(&link);
        close(&channel, &acks).await;
        tokio::select! {
            () = stop.wait() => return,
            () = tokio::time::sleep(FIRST_BACKOFF) => {}
        }
    }
}

/// How long subscribing (declare, qos, consume) may take before the
/// consumer gives up on this connection and subscribes again.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

async fn open(
    publisher: &Publisher,
    link: &Link,
    spec: &Subscribe,
) -> lapin::Result<(Channel, Consumer)> {
    let topology = &publisher.topology;
    link.declare(&topology.declarations(&spec.queue)).await?;
    let channel = link.connection.create_channel().await?;
    channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("corral-{}-{}", spec.queue, &new_message_id()[..8]);
    let consumer = channel
        .basic_consume(
            short(&topology.real(&spec.queue)),
            short(&tag),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// Sends the acks still pending, then closes the channel, which gives every
/// unacknowledged delivery back to the queue.
async fn close(channel: &Channel, acks: &Acks) {
    acks.finish().await;
    if channel.status().connected() {
        let _ = tokio::time::timeout(Duration::from_secs(5), channel.close(200, "OK".into())).await;
    }
}

fn to_delivery(
    publisher: &Arc<Publisher>,
    spec: &Subscribe,
    acks: &Arc<Acks>,
    delivery: lapin::message::Delivery,
) -> Delivery {
    let (message, attempt) = properties::incoming(&delivery.properties, &delivery.data);
    acks.delivered(delivery.delivery_tag);
    let settler = AmqpSettle {
        publisher: publisher.clone(),
        acks: acks.clone(),
        tag: delivery.delivery_tag,
        acker: delivery.acker,
        properties: delivery.properties,
        queue: spec.queue.clone(),
        dead_letter: spec.dead_letter.clone(),
        settled: false,
    };
    Delivery::new(spec.queue.clone(), message, attempt, Box::new(settler))
}

struct AmqpSettle {
    publisher: Arc<Publisher>,
    /// The channel's acknowledgements, and this delivery's tag on it.
    acks: Arc<Acks>,
    tag: u64,
    acker: Acker,
    properties: BasicProperties,
    queue: String,
    dead_letter: String,
    settled: bool,
}

impl Settle for AmqpSettle {
    fn settle(
        mut self: Box<Self>,
        message: Message,
        attempt: u32,
        outcome: Outcome,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        self.settled = true;
        Box::pin(async move {
            let topology = &self.publisher.topology;
            let copy = match outcome {
                Outcome::Ack => Ok(()),
                Outcome::Retry(delay) | Outcome::Postpone(delay) => {
                    let queue = topology.delay_queue(&self.queue, delay);
                    let next = match outcome {
                        Outcome::Retry(_) => attempt + 1,
                        _ => attempt,
                    };
                    let item = Outgoing {
                        body: message.body,
                        properties: properties::with_attempt(&self.properties, next),
                    };
                    self.publisher
                        .send(&Route::queue(vec![queue]), &[item])
                        .await
                }
                Outcome::DeadLetter(reason) => {
                    let queue = topology.dead_queue(&self.dead_letter);
                    let properties =
                        properties::dead(&self.properties, attempt, &reason, &self.queue);
                    let item = Outgoing {
                        body: message.body,
                        properties,
                    };
                    self.publisher
                        .send(&Route::queue(vec![queue]), &[item])
                        .await
                }
            };
            if let Err(error) = copy {
                self.acks.give_back(self.tag, self.acker.clone());
                anyhow::bail!(
                    "could not store the message's next copy ({error}); it goes back to the queue"
                );
            }
            // Handed to the channel's sender, which acks it soon, with
            // others where it can. Not sent at all (the channel died first),
            // the message is delivered again: at least once, never lost.
            self.acks.ack(self.tag, self.acker.clone());
            Ok(())
        })
    }
}

impl Drop for AmqpSettle {
    /// A delivery dropped without an outcome (its handler task died) goes
    /// back to the queue now rather than when the channel closes.
    fn drop(&mut self) {
        if !self.settled && self.acker.usable() {
            self.acks.give_back(self.tag, self.acker.clone());
        }
    }
}
