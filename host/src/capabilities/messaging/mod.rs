//! The `messaging` capability: `corral:platform/messaging` (confirmed
//! publishing), and the broker the queue trigger consumes from.
//!
//! ```toml
//! [messaging]
//! backend = "amqp"            # or "embedded" (default)
//!
//! [[messaging.exchanges]]
//! name = "events"
//! kind = "topic"
//! bindings = [ { queue = "audit", key = "user.*" } ]
//!
//! [[component]]
//! name = "upload"
//! grants.messaging = { publish = ["transactions"], exchanges = ["events"] }
//! ```
//!
//! A component may publish only to the queues and exchanges its grant lists
//! (anything else is `not-granted`). A grant naming an exchange that
//! `[[messaging.exchanges]]` does not declare refuses the deploy: the
//! mistake is in the configuration, and surfaces when it is checked rather
//! than on the first publish. The broker is started on first use, not at
//! construction: `corral check` builds the capabilities too, and must
//! neither connect to RabbitMQ nor lock the embedded queue file of a
//! running host.

pub mod amqp;
pub mod broker;
pub mod embedded;
pub mod routing;
pub mod settings;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use wasmtime::component::{HasSelf, Linker};

pub use broker::{Broker, Delivery, Message, Outcome, PublishError, Subscribe, Subscription};
pub use settings::{BackendConfig, BindingConfig, ExchangeConfig};

use super::Capability;
use crate::bindings::corral::platform::messaging as wit;
use crate::config::{ComponentConfig, Config};
use crate::runtime::InstanceState;
use settings::Backend;

/// Most messages in one `publish-batch`.
const MAX_BATCH: usize = 10_000;

pub struct Messaging {
    backend: Arc<LazyBroker>,
}

/// The configured broker, started on first use.
pub struct LazyBroker {
    settings: BackendConfig,
    /// Each configured queue trigger's queue and dead-letter queue.
    dead_letters: Vec<(String, String)>,
    broker: Mutex<Option<Arc<dyn Broker>>>,
}

impl LazyBroker {
    /// The broker, starting it if needed. Must run inside the tokio
    /// runtime. An embedded queue that cannot be opened is an error now and
    /// is tried again on the next call.
    pub fn get(&self) -> anyhow::Result<Arc<dyn Broker>> {
        let mut slot = self.broker.lock().unwrap();
        if let Some(broker) = slot.as_ref() {
            return Ok(broker.clone());
        }
        let s = &self.settings;
        let broker: Arc<dyn Broker> = match s.backend {
            Backend::Amqp => {
                let topology =
                    amqp::topology::Topology::new(&s.queue_prefix, self.dead_letters.clone())
                        .with_exchanges(s.exchanges.clone());
                let timeout = Duration::from_millis(s.confirm_timeout_ms);
                Arc::new(amqp::Amqp::start(&s.url, topology, timeout))
            }
            Backend::Embedded => Arc::new(
                embedded::Embedded::open(&s.path, &s.queue_prefix)?
                    .with_exchanges(s.exchanges.clone()),
            ),
        };
        tracing::info!(backend = ?s.backend, "messaging backend started");
        *slot = Some(broker.clone());
        Ok(broker)
    }
}

impl Messaging {
    /// The host's broker, for the queue trigger.
    pub fn broker(&self) -> anyhow::Result<Arc<dyn Broker>> {
        self.backend.get()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Queues the component may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Exchanges (declared in `[[messaging.exchanges]]`) the component may
    /// publish to.
    #[serde(default)]
    pub exchanges: Vec<String>,
}

/// A component's grant, shared by its instances.
pub struct Publisher {
    queues: HashSet<String>,
    exchanges: HashSet<String>,
    backend: Arc<LazyBroker>,
}

/// Where a component publishes.
#[derive(Clone, Copy)]
enum Target<'a> {
    Queue(&'a str),
    Exchange { name: &'a str, routing_key: &'a str },
}

/// The per-instance state.
pub struct MessagingHandle(Arc<Publisher>);

impl Capability for Messaging {
    const NAME: &'static str = "messaging";
    type Grant = Grant;
    type Prepared = Publisher;
    type Instance = MessagingHandle;

    fn new(config: &Config) -> anyhow::Result<Self> {
        let dead_letters = config
            .components
            .iter()
            .filter_map(|c| c.queue.as_ref())
            .map(|q| (q.name.clone(), q.dead_letter_queue()))
            .collect();
        Ok(Self {
            backend: Arc::new(LazyBroker {
                settings: config.messaging.clone(),
                dead_letters,
                broker: Mutex::new(None),
            }),
        })
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<Publisher> {
        if let Some(bad) = grant.publish.iter().find(|q| q.is_empty()) {
            anyhow::bail!(
                "component {:?}: grants.messaging.publish: {bad:?} is not a queue name",
                component.name
            );
        }
        let declared = &self.backend.settings.exchanges;
        if let Some(bad) = grant
            .exchanges
            .iter()
            .find(|e| !declared.iter().any(|d| &d.name == *e))
        {
            anyhow::bail!(
                "component {:?}: grants.messaging.exchanges: {bad:?} is not declared in [[messaging.exchanges]]",
                component.name
            );
        }
        Ok(Publisher {
            queues: grant.publish.into_iter().collect(),
            exchanges: grant.exchanges.into_iter().collect(),
            backend: self.backend.clone(),
        })
    }

    fn instance(prepared: &Arc<Publisher>) -> MessagingHandle {
        MessagingHandle(prepared.clone())
    }

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
        wit::add_to_linker::<_, HasSelf<MessagingHandle>>(linker, |state| {
            state
                .caps
                .messaging
                .as_mut()
                .expect("messaging is linked only for components that have it")
        })?;
        Ok(())
    }
}

impl Publisher {
    async fn publish(&self, target: Target<'_>, messages: Vec<Message>) -> Result<(), wit::Error> {
        match target {
            Target::Queue(queue) if !self.queues.contains(queue) => {
                return Err(wit::Error::NotGranted(format!(
                    "queue {queue:?} is not in this component's grants.messaging.publish"
                )));
            }
            Target::Exchange { name, .. } if !self.exchanges.contains(name) => {
                return Err(wit::Error::NotGranted(format!(
                    "exchange {name:?} is not in this component's grants.messaging.exchanges"
                )));
            }
            _ => {}
        }
        if messages.len() > MAX_BATCH {
            return Err(wit::Error::Invalid(format!(
                "at most {MAX_BATCH} messages per batch"
            )));
        }
        let broker = self
            .backend
            .get()
            .map_err(|e| wit::Error::Unavailable(format!("{e:#}")))?;
        let published = match target {
            Target::Queue(queue) => broker.publish(queue, messages).await,
            Target::Exchange { name, routing_key } => {
                broker
                    .publish_to_exchange(name, routing_key, messages)
                    .await
            }
        };
        published.map_err(|e| match e {
            PublishError::Unavailable(m) => wit::Error::Unavailable(m),
            PublishError::Rejected(m) => wit::Error::Rejected(m),
            PublishError::Invalid(m) => wit::Error::Invalid(m),
            // `rejected` rather than a variant of its own: adding a case to
            // `error` would change the type of `publish` and break every
            // component built against the current contract.
            unroutable @ PublishError::Unroutable { .. } => {
                wit::Error::Rejected(unroutable.to_string())
            }
        })
    }
}

impl wit::Host for MessagingHandle {
    async fn publish(
        &mut self,
        queue: String,
        message: Message,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        Ok(self.0.publish(Target::Queue(&queue), vec![message]).await)
    }

    async fn publish_batch(
        &mut self,
        queue: String,
        messages: Vec<Message>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        Ok(self.0.publish(Target::Queue(&queue), messages).await)
    }

    async fn publish_to_exchange(
        &mut self,
        exchange: String,
        routing_key: String,
        message: Message,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let target = Target::Exchange {
            name: &exchange,
            routing_key: &routing_key,
        };
        Ok(self.0.publish(target, vec![message]).await)
    }

    async fn publish_batch_to_exchange(
        &mut self,
        exchange: String,
        routing_key: String,
        messages: Vec<Message>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let target = Target::Exchange {
            name: &exchange,
            routing_key: &routing_key,
        };
        Ok(self.0.publish(target, messages).await)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;

    #[test]
    fn a_grant_naming_an_undeclared_exchange_refuses_the_deploy() {
        let config = Config::from_toml(
            r#"
            [[messaging.exchanges]]
            name = "events"
            kind = "fanout"
            bindings = [ { queue = "audit" } ]

            [[component]]
            name = "c"
            wasm = "c.wasm"
            routes = ["/c"]
            "#,
            Path::new("/etc/corral"),
            Path::new("corral.toml"),
            &BTreeMap::new(),
        )
        .unwrap();
        let messaging = Messaging::new(&config).unwrap();
        let component = &config.components[0];
        let grant = |exchanges: &[&str]| Grant {
            publish: Vec::new(),
            exchanges: exchanges.iter().map(|e| e.to_string()).collect(),
        };
        let prepared = messaging.prepare(component, grant(&["events"])).unwrap();
        assert!(prepared.exchanges.contains("events"));
        let Err(error) = messaging.prepare(component, grant(&["evnets"])) else {
            panic!("an undeclared exchange was accepted");
        };
        let text = error.to_string();
        assert!(text.contains("grants.messaging.exchanges"), "{text}");
        assert!(text.contains("evnets"), "{text}");
    }
}
