//! The configured broker, started on first use.
//!
//! Not at construction: `corral check` builds the platform too, and must
//! neither connect to RabbitMQ nor lock the embedded queue file of a
//! running host. A host whose broker cannot start yet still serves its
//! other components; publishers get `unavailable` and the queue trigger
//! tries again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::settings::{Backend, BrokerSettings};
use super::{Broker, amqp, embedded};

pub struct LazyBroker {
    settings: BrokerSettings,
    /// Each consumed queue's logical name and its dead-letter queue's: every
    /// host must declare a queue with the same arguments, whether it
    /// publishes to it or consumes it, so the broker learns them up front.
    dead_letters: Vec<(String, String)>,
    broker: Mutex<Option<Arc<dyn Broker>>>,
}

impl LazyBroker {
    pub fn new(settings: BrokerSettings, dead_letters: Vec<(String, String)>) -> Self {
        Self {
            settings,
            dead_letters,
            broker: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &BrokerSettings {
        &self.settings
    }

    /// The broker, starting it if needed. Must run inside the tokio
    /// runtime. An embedded queue that cannot be opened is an error now and
    /// is tried again on the next call.
    pub fn get(&self) -> anyhow::Result<Arc<dyn Broker>> {
        let mut slot = self.broker.lock().unwrap_or_else(|p| p.into_inner());
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
