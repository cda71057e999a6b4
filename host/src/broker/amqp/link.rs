//! A connection to RabbitMQ, kept alive by a supervisor task. The host has
//! two: one its publishers share, one its consumers share (see `super`).
//!
//! Components never see a connection: the host owns it, and channels on it.
//! When the connection drops (broker restart, network cut, a missed
//! heartbeat) the supervisor notices, withdraws it, and reconnects with
//! exponential backoff; publishers and consumers wait for the next
//! [`Link`] through [`Links::wait`]. lapin's own auto-recovery is not used:
//! replaying channels and consumers behind our back would hide exactly the
//! moments at which deliveries must be considered lost and redelivered.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind, Event};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::topology::{ExchangeDecl, QueueDecl, short};
use crate::broker::routing::ExchangeKind;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Shortest pause between attempts while publishers are waiting.
const DEMAND_BACKOFF: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the supervisor double-checks the connection's state, in case
/// an error was not reported as an event.
const STATUS_CHECK: Duration = Duration::from_secs(1);

/// One established connection.
pub struct Link {
    /// Counts connections since start, for logs.
    pub generation: u64,
    pub connection: Connection,
    /// The confirm-mode channel publishes go through, opened on first use
    /// and replaced when the broker closes it.
    publisher: tokio::sync::Mutex<Option<Channel>>,
    /// Queues (by name) and exchanges (by [`exchange_key`]) already
    /// declared on this connection.
    declared: Mutex<HashSet<String>>,
    broken: Notify,
}

impl Link {
    /// The publishing channel, in confirm mode.
    pub async fn publisher(&self) -> lapin::Result<Channel> {
        let mut slot = self.publisher.lock().await;
        if let Some(channel) = slot.as_ref()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *slot = Some(channel.clone());
        Ok(channel)
    }

    /// Declares `queues` (durable) unless already done on this connection.
    ///
    /// A queue that exists with other arguments (made by another tool, or
    /// by an older corral) is used as it is, with a warning: refusing to
    /// publish to it would be worse.
    pub async fn declare(&self, queues: &[QueueDecl]) -> lapin::Result<()> {
        for queue in queues {
            if !queue.every_time && self.declared.lock().contains(&queue.name) {
                continue;
            }
            let channel = self.connection.create_channel().await?;
            let declared = channel
                .queue_declare(
                    short(&queue.name),
                    QueueDeclareOptions::durable(),
                    queue.arguments.clone(),
                )
                .await;
            match declared {
                Ok(_) => {
                    let _ = channel.close(200, "OK".into()).await;
                }
                Err(error) if is_precondition_failed(&error) => {
                    tracing::warn!(
                        queue = %queue.name,
                        "the queue exists with other arguments than corral's; using it as it is: {error}"
                    );
                    let channel = self.connection.create_channel().await?;
                    let options = QueueDeclareOptions::durable().passive();
                    channel
                        .queue_declare(short(&queue.name), options, FieldTable::default())
                        .await?;
                    let _ = channel.close(200, "OK".into()).await;
                }
                Err(error) => return Err(error),
            }
            self.declared.lock().insert(queue.name.clone());
        }
        Ok(())
    }

    /// Declares `exchange` (durable) and binds its queues, unless already
    /// done on this connection. The queues must be declared already.
    ///
    /// An exchange that exists with another kind is used as it is, with a
    /// warning, like a queue with other arguments.
    pub async fn declare_exchange(&self, exchange: &ExchangeDecl) -> lapin::Result<()> {
        let key = exchange_key(&exchange.name);
        if self.declared.lock().contains(&key) {
            return Ok(());
        }
        let kind = match exchange.kind {
            ExchangeKind::Direct => lapin::ExchangeKind::Direct,
            ExchangeKind::Topic => lapin::ExchangeKind::Topic,
            ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
        };
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let channel = self.connection.create_channel().await?;
        let declared = channel
            .exchange_declare(
                short(&exchange.name),
                kind.clone(),
                durable,
                FieldTable::default(),
            )
            .await;
        let channel = match declared {
            Ok(()) => channel,
            Err(error) if is_precondition_failed(&error) => {
                tracing::warn!(
                    exchange = %exchange.name,
                    "the exchange exists with another kind than configured; using it as it is: {error}"
                );
                // The failed declaration closed the channel.
                let channel = self.connection.create_channel().await?;
                let passive = ExchangeDeclareOptions {
                    passive: true,
                    ..durable
                };
                channel
                    .exchange_declare(short(&exchange.name), kind, passive, FieldTable::default())
                    .await?;
                channel
            }
            Err(error) => return Err(error),
        };
        for (queue, binding_key) in &exchange.bindings {
            channel
                .queue_bind(
                    short(queue),
                    short(&exchange.name),
                    short(binding_key),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let _ = channel.close(200, "OK".into()).await;
        self.declared.lock().insert(key);
        Ok(())
    }

    /// Forgets a declaration, after the queue turned out to be missing.
    pub fn forget(&self, queue: &str) {
        self.declared.lock().remove(queue);
    }

    /// Forgets an exchange's declaration, so that its bindings are made
    /// again (a bound queue deleted by hand takes its bindings with it).
    pub fn forget_exchange(&self, exchange: &str) {
        self.declared.lock().remove(&exchange_key(exchange));
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }
}

/// The `declared` entry of an exchange: apart from queue names, since a
/// queue and an exchange may well share a name.
fn exchange_key(exchange: &str) -> String {
    format!("exchange\0{exchange}")
}

fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ProtocolError(e)
            if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
    )
}

/// The current link, if any, and the task that keeps one up.
pub struct Links {
    current: watch::Sender<Option<Arc<Link>>>,
    /// Publishes waiting for a link: during an outage the supervisor then
    /// tries again soon instead of sleeping out a long backoff while a
    /// publish is running out of time.
    demand: Demand,
    /// Dropped with `Links`: tells the supervisor to close and stop.
    _alive: watch::Sender<()>,
}

impl Links {
    /// Starts the supervisor (on the current tokio runtime), which connects
    /// to `url` at once and then keeps the connection up.
    pub fn start(url: String, name: String) -> Arc<Self> {
        let (alive, alive_rx) = watch::channel(());
        let demand = Demand::default();
        let links = Arc::new(Self {
            current: watch::channel(None).0,
            demand: demand.clone(),
            _alive: alive,
        });
        tokio::spawn(supervise(
            Arc::downgrade(&links),
            url,
            name,
            alive_rx,
            demand,
        ));
        links
    }

    /// The current link, waiting for one until `deadline` (forever with
    /// `None`). `None` if there is none by then.
    pub async fn wait(&self, deadline: Option<Instant>) -> Option<Arc<Link>> {
        let mut rx = self.current.subscribe();
        // Only publishes (which have a deadline) hurry the reconnection;
        // consumers wait with the normal backoff.
        let _waiting = deadline.map(|_| {
            self.demand.waiting.fetch_add(1, Ordering::SeqCst);
            self.demand.wanted.notify_one();
            scopeguard(&self.demand.waiting)
        });
        let ready = rx.wait_for(|link| link.as_ref().is_some_and(|l| l.is_connected()));
        let link = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, ready).await.ok()?.ok()?,
            None => ready.await.ok()?,
        };
        link.clone()
    }

    /// Resolves once `link` is no longer the current link (the supervisor
    /// withdrew it, or replaced it). A consumer waits on this next to its
    /// delivery stream: lapin does not always end a consumer's stream when
    /// its connection dies, and a consumer left on a dead connection would
    /// wait forever while everything else moved on to the next one.
    pub async fn lost(&self, link: &Link) {
        let mut rx = self.current.subscribe();
        let _ = rx
            .wait_for(|current| {
                !current
                    .as_ref()
                    .is_some_and(|c| c.generation == link.generation && c.is_connected())
            })
            .await;
    }

    /// Reports that `link` failed an operation in a way that suggests the
    /// connection is gone; the supervisor checks and reconnects.
    pub fn suspect(&self, link: &Link) {
        if !link.is_connected() {
            link.broken.notify_one();
        }
    }
}

async fn supervise(
    links: Weak<Links>,
    url: String,
    name: String,
    mut alive: watch::Receiver<()>,
    demand: Demand,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut generation = 0;
    let mut failures = 0u32;
    loop {
        let properties = ConnectionProperties::default().with_connection_name(name.clone().into());
        let connected = tokio::select! {
            _ = alive.changed() => return,
            c = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(&url, properties)) => c,
        };
        let connection = match connected {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                failures += 1;
                // The first failure and every 20th: a long outage should
                // not flood the log.
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(failures, "cannot connect to RabbitMQ: {error}");
                } else {
                    tracing::debug!(failures, "cannot connect to RabbitMQ: {error}");
                }
                if pause(&mut alive, &mut backoff, &demand).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                failures += 1;
                tracing::warn!(failures, "connecting to RabbitMQ timed out");
                if pause(&mut alive, &mut backoff, &demand).await {
                    return;
                }
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        failures = 0;
        generation += 1;
        let mut events = connection.events_listener();
        let link = Arc::new(Link {
            generation,
            connection,
            publisher: tokio::sync::Mutex::new(None),
            declared: Mutex::new(HashSet::new()),
            broken: Notify::new(),
        });
        let Some(strong) = links.upgrade() else {
            return;
        };
        strong.current.send_replace(Some(link.clone()));
        drop(strong);
        tracing::info!(generation, "connected to RabbitMQ");

        let why = loop {
            tokio::select! {
                _ = alive.changed() => {
                    let _ = link.connection.close(200, "host stopping".into()).await;
                    return;
                }
                event = events.next() => match event {
                    Some(Event::Error(error)) => break error.to_string(),
                    Some(Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(generation, "RabbitMQ blocked publishing: {reason}");
                    }
                    Some(Event::ConnectionUnblocked) => {
                        tracing::info!(generation, "RabbitMQ unblocked publishing");
                    }
                    Some(_) => {}
                    None => break "the connection ended".to_string(),
                },
                () = link.broken.notified() => {
                    if !link.is_connected() {
                        break "an operation found the connection closed".to_string();
                    }
                }
                () = tokio::time::sleep(STATUS_CHECK) => {
                    if !link.is_connected() {
                        let status = link.connection.status();
                        break format!(
                            "the connection is no longer up (errored: {}, closed: {})",
                            status.errored(),
                            status.closed()
                        );
                    }
                }
            }
        };
        if let Some(strong) = links.upgrade() {
            strong.current.send_replace(None);
        }
        tracing::warn!(
            generation,
            "lost the RabbitMQ connection ({why}); reconnecting"
        );
        // Make sure the old connection is really gone (it may be half-open).
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            link.connection.close(320, "reconnecting".into()),
        )
        .await;
    }
}

/// Whether anyone is waiting for a connection.
#[derive(Default, Clone)]
struct Demand {
    wanted: Arc<Notify>,
    waiting: Arc<AtomicUsize>,
}

/// Decrements a waiter count when dropped.
struct Waiting<'a>(&'a AtomicUsize);

fn scopeguard(count: &AtomicUsize) -> Waiting<'_> {
    Waiting(count)
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sleeps for `backoff` and doubles it; `true` if the links were dropped
/// meanwhile. While someone waits for the connection (a publish running
/// out of time), the pause is at most [`DEMAND_BACKOFF`].
async fn pause(alive: &mut watch::Receiver<()>, backoff: &mut Duration, demand: &Demand) -> bool {
    let started = Instant::now();
    let demanded = async {
        while demand.waiting.load(Ordering::SeqCst) == 0 {
            demand.wanted.notified().await;
        }
        tokio::time::sleep_until(started + DEMAND_BACKOFF).await;
    };
    let stopped = tokio::select! {
        _ = alive.changed() => true,
        () = tokio::time::sleep(*backoff) => false,
        () = demanded => false,
    };
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    stopped
}
