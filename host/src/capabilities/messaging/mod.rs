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
//! than on the first publish.
//!
//! The broker itself, and its `[messaging]` settings, live in
//! [`crate::broker`], shared with the queue trigger; this capability is the
//! grant and the WIT host on top of it.

mod host;

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::Linker;

use super::{Capability, CapabilityView, HostContext, NoSettings};
use crate::bindings::corral::platform::messaging as wit;
use crate::broker::{LazyBroker, Message, PublishError};
use crate::config::ComponentConfig;

/// Most messages in one `publish-batch`.
const MAX_BATCH: usize = 10_000;

pub struct Messaging {
    broker: Arc<LazyBroker>,
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
    broker: Arc<LazyBroker>,
}

/// Where a component publishes.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Queue(&'a str),
    Exchange { name: &'a str, routing_key: &'a str },
}

/// The per-instance state.
pub struct MessagingHandle(pub(crate) Arc<Publisher>);

impl Capability for Messaging {
    const NAME: &'static str = "messaging";
    /// `[messaging]` belongs to the broker, which the queue trigger shares.
    const SECTION: Option<&'static str> = None;
    type Settings = NoSettings;
    type Grant = Grant;
    type Prepared = Publisher;
    type Instance = MessagingHandle;

    fn new(_settings: NoSettings, host: &HostContext<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            broker: host.broker.clone(),
        })
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<Publisher> {
        if let Some(bad) = grant.publish.iter().find(|q| q.is_empty()) {
            anyhow::bail!(
                "component {:?}: grants.messaging.publish: {bad:?} is not a queue name",
                component.name
            );
        }
        let declared = &self.broker.settings().exchanges;
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
            broker: self.broker.clone(),
        })
    }

    fn instance(prepared: &Arc<Publisher>) -> MessagingHandle {
        MessagingHandle(prepared.clone())
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }
}

impl Publisher {
    pub(crate) async fn publish(
        &self,
        target: Target<'_>,
        mut messages: Vec<Message>,
    ) -> Result<(), wit::Error> {
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
        messages
            .iter_mut()
            .for_each(crate::broker::strip_reserved_headers);
        let broker = self
            .broker
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_grant_naming_an_undeclared_exchange_refuses_the_deploy() {
        let config = Config::for_tests(
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
            &[],
        )
        .unwrap();
        let broker = Arc::new(LazyBroker::new(
            config.section(crate::broker::SECTION).unwrap(),
            Vec::new(),
        ));
        let host = HostContext {
            config: &config,
            broker: &broker,
        };
        let messaging = Messaging::new(NoSettings::default(), &host).unwrap();
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

    /// A component cannot make its message look like a dead letter or
    /// reset its attempt count: the host's `x-corral-*` headers are
    /// removed, in any case, and its own headers go through.
    #[tokio::test]
    async fn reserved_headers_are_stripped_from_published_messages() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(
            r#"
            [[component]]
            name = "c"
            wasm = "c.wasm"
            routes = ["/c"]
            "#,
            &[],
        )
        .unwrap();
        let mut settings: crate::broker::BrokerSettings =
            config.section(crate::broker::SECTION).unwrap();
        settings.path = dir.path().join("queue");
        let broker = Arc::new(LazyBroker::new(settings, Vec::new()));
        let host = HostContext {
            config: &config,
            broker: &broker,
        };
        let messaging = Messaging::new(NoSettings::default(), &host).unwrap();
        let grant = Grant {
            publish: vec!["jobs".into()],
            exchanges: Vec::new(),
        };
        let prepared = messaging.prepare(&config.components[0], grant).unwrap();
        let message = Message {
            body: b"{}".to_vec(),
            content_type: Some("application/json".into()),
            headers: vec![
                ("X-Corral-Dead-Reason".into(), "forged".into()),
                ("x-corral-attempt".into(), "0".into()),
                ("x-trace".into(), "kept".into()),
            ],
            message_id: Some("m1".into()),
        };
        prepared
            .publish(Target::Queue("jobs"), vec![message])
            .await
            .unwrap();
        let mut subscription = broker.get().unwrap().subscribe(crate::broker::Subscribe {
            queue: "jobs".into(),
            dead_letter: "jobs.dead".into(),
            prefetch: 1,
        });
        let delivery =
            tokio::time::timeout(std::time::Duration::from_secs(10), subscription.next())
                .await
                .expect("the message arrives")
                .expect("the subscription is open");
        let names: Vec<&str> = delivery
            .message
            .headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.to_ascii_lowercase().starts_with("x-corral-dead")),
            "{names:?}"
        );
        assert!(names.contains(&"x-trace"), "{names:?}");
        assert_eq!(delivery.attempt, 1);
    }
}
