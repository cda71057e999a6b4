//! The RabbitMQ backend (AMQP 0-9-1 through lapin, plain TCP).
//!
//! * [`link`]: the host's connections (one for publishing, one for
//!   consuming), reconnected with backoff;
//! * [`topology`]: which queues and exchanges exist and their arguments
//!   (dead-lettering, delay queues, bindings);
//! * [`properties`]: message properties and headers;
//! * [`publish`]: confirmed publishing;
//! * [`consumer`]: subscriptions and how deliveries are settled.

mod acks;
mod consumer;
mod link;
mod properties;
mod publish;
pub mod topology;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::broker::{Broker, Message, PublishError, Subscribe, Subscription};
use publish::{Outgoing, Publisher};
use topology::{Route, Topology};

pub struct Amqp {
    publisher: Arc<Publisher>,
    url: String,
    name: String,
    /// The consumers' connection, opened with the first subscription: a
    /// busy queue's deliveries and acks then travel apart from the
    /// publishes, and RabbitMQ reads each connection in its own process.
    consumers: OnceLock<Arc<link::Links>>,
}

impl Amqp {
    /// Starts connecting to `url` in the background (on the current tokio
    /// runtime); publishes wait up to `confirm_timeout` for the connection.
    pub fn start(url: &str, topology: Topology, confirm_timeout: Duration) -> Self {
        let name = format!(
            "corral {} pid {}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id()
        );
        Self {
            publisher: Arc::new(Publisher {
                links: link::Links::start(url.to_owned(), name.clone()),
                topology,
                confirm_timeout,
            }),
            url: url.to_owned(),
            name,
            consumers: OnceLock::new(),
        }
    }
}

impl Amqp {
    /// Publishes `messages` (nothing to do for none) along `route`.
    async fn send(&self, route: Route, messages: Vec<Message>) -> Result<(), PublishError> {
        let items = messages
            .into_iter()
            .map(|message| {
                let properties = properties::outgoing(&message)?;
                Ok(Outgoing {
                    body: message.body,
                    properties,
                })
            })
            .collect::<Result<Vec<_>, PublishError>>()?;
        if items.is_empty() {
            return Ok(());
        }
        self.publisher.send(&route, &items).await
    }
}

impl Broker for Amqp {
    fn ready(&self, within: Duration) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + within;
            match self.publisher.links.wait(Some(deadline)).await {
                Some(_) => Ok(()),
                None => anyhow::bail!("no connection to RabbitMQ within {} ms", within.as_millis()),
            }
        })
    }

    fn publish<'a>(
        &'a self,
        queue: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let topology = &self.publisher.topology;
            topology.check(queue)?;
            self.send(Route::queue(topology.declarations(queue)), messages)
                .await
        })
    }

    fn publish_to_exchange<'a>(
        &'a self,
        exchange: &'a str,
        routing_key: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let route = self
                .publisher
                .topology
                .exchange_route(exchange, routing_key)?;
            self.send(route, messages).await
        })
    }

    fn subscribe(&self, spec: Subscribe) -> Subscription {
        let links = self.consumers.get_or_init(|| {
            link::Links::start(self.url.clone(), format!("{} consumers", self.name))
        });
        consumer::start(self.publisher.clone(), links.clone(), spec)
    }
}
