//! One broker backend under test: RabbitMQ (through a cuttable proxy, with
//! a random queue prefix so that runs never see each other's queues) or
//! the embedded queue (in a temporary folder). Both know the same
//! exchanges ([`exchanges`]).

use std::sync::Arc;
use std::time::Duration;

use corral::broker::amqp::Amqp;
use corral::broker::amqp::topology::Topology;
use corral::broker::embedded::Embedded;
use corral::broker::routing::ExchangeKind;
use corral::broker::{
    BindingConfig, Broker, Delivery, ExchangeConfig, Message, PublishError, Subscribe, Subscription,
};

use crate::proxy::Proxy;
use crate::rabbit::{delete_queues_blocking, rabbitmq_addr, random_prefix};

pub enum Kind {
    Amqp { proxy: Proxy },
    Embedded { dir: tempfile::TempDir },
}

pub struct Fixture {
    broker: Option<Arc<dyn Broker>>,
    pub prefix: String,
    pub kind: Kind,
}

/// Host logs in test output, filtered by `CORRAL_TEST_LOG` (e.g. `info`).
fn init_logs() {
    if let Ok(filter) = std::env::var("CORRAL_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

impl Fixture {
    /// `confirm_timeout` bounds how long a publish waits for the broker.
    pub async fn amqp(confirm_timeout: Duration) -> Self {
        init_logs();
        let proxy = Proxy::start(&rabbitmq_addr()).await;
        let prefix = random_prefix("test");
        let broker = Arc::new(Amqp::start(
            &proxy.url(),
            Topology::new(&prefix, []).with_exchanges(exchanges()),
            confirm_timeout,
        ));
        Self {
            broker: Some(broker),
            prefix,
            kind: Kind::Amqp { proxy },
        }
    }

    pub async fn embedded() -> Self {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let broker = Arc::new(
            Embedded::open(dir.path(), "")
                .unwrap()
                .with_exchanges(exchanges()),
        );
        Self {
            broker: Some(broker),
            prefix: String::new(),
            kind: Kind::Embedded { dir },
        }
    }

    pub fn proxy(&self) -> &Proxy {
        match &self.kind {
            Kind::Amqp { proxy } => proxy,
            Kind::Embedded { .. } => panic!("the embedded backend has no connection"),
        }
    }

    /// Embedded only: closes the queue file and opens it again, as a host
    /// restart would. Everything holding the old broker must be dropped.
    pub async fn reopen(&mut self) {
        let Kind::Embedded { dir } = &self.kind else {
            panic!("embedded only")
        };
        let path = dir.path().to_owned();
        drop(self.broker.take());
        // Background tasks may hold the store for a moment longer.
        let mut tries = 0;
        self.broker = loop {
            match Embedded::open(&path, "") {
                Ok(broker) => break Some(Arc::new(broker.with_exchanges(exchanges()))),
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("reopening the queue file: {error:#}"),
            }
        };
    }

    pub fn broker(&self) -> &Arc<dyn Broker> {
        self.broker.as_ref().expect("open")
    }

    pub async fn publish(&self, queue: &str, messages: Vec<Message>) -> Result<(), PublishError> {
        self.broker().publish(queue, messages).await
    }

    pub async fn publish_to(
        &self,
        exchange: &str,
        routing_key: &str,
        messages: Vec<Message>,
    ) -> Result<(), PublishError> {
        self.broker()
            .publish_to_exchange(exchange, routing_key, messages)
            .await
    }

    pub fn subscribe(&self, queue: &str, prefetch: u16) -> Subscription {
        self.broker().subscribe(Subscribe {
            queue: queue.into(),
            dead_letter: format!("{queue}.dead"),
            prefetch,
        })
    }
}

impl Drop for Fixture {
    /// Deletes the test's queues and exchanges on RabbitMQ, even after a
    /// failed assertion.
    fn drop(&mut self) {
        if let Kind::Amqp { .. } = &self.kind {
            drop(self.broker.take());
            delete_queues_blocking(&self.prefix);
        }
    }
}

/// The exchanges both backends are configured with (as
/// `[[messaging.exchanges]]` would declare them):
///
/// * `events` (topic): `audit` ← `user.*`, `mail` ← `user.created`;
/// * `everyone` (fanout): `fan-a`, `fan-b`;
/// * `exact` (direct): `direct-a` ← `a`, `direct-b` ← `b`.
pub fn exchanges() -> Vec<ExchangeConfig> {
    let exchange = |name: &str, kind, bindings: &[(&str, &str)]| ExchangeConfig {
        name: name.into(),
        kind,
        bindings: bindings
            .iter()
            .map(|(queue, key)| BindingConfig {
                queue: (*queue).into(),
                key: (*key).into(),
            })
            .collect(),
    };
    vec![
        exchange(
            "events",
            ExchangeKind::Topic,
            &[("audit", "user.*"), ("mail", "user.created")],
        ),
        exchange(
            "everyone",
            ExchangeKind::Fanout,
            &[("fan-a", ""), ("fan-b", "")],
        ),
        exchange(
            "exact",
            ExchangeKind::Direct,
            &[("direct-a", "a"), ("direct-b", "b")],
        ),
    ]
}

pub fn message(body: &str, id: &str) -> Message {
    Message {
        body: body.as_bytes().to_vec(),
        content_type: Some("text/plain".into()),
        headers: vec![("origin".into(), "test".into())],
        message_id: Some(id.into()),
    }
}

/// The next delivery, or a panic after `within`.
pub async fn next(subscription: &mut Subscription, within: Duration) -> Delivery {
    tokio::time::timeout(within, subscription.next())
        .await
        .unwrap_or_else(|_| panic!("no delivery within {within:?}"))
        .expect("the subscription ended")
}

/// Asserts that nothing arrives for `quiet`.
pub async fn nothing(subscription: &mut Subscription, quiet: Duration) {
    if let Ok(Some(d)) = tokio::time::timeout(quiet, subscription.next()).await {
        panic!("unexpected delivery {d:?}");
    }
}
