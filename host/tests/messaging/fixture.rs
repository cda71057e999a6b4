//! One broker backend under test: RabbitMQ (through a cuttable proxy, with
//! a random queue prefix so that runs never see each other's queues) or
//! the embedded queue (in a temporary folder).

use std::sync::Arc;
use std::time::Duration;

use corral::capabilities::messaging::amqp::Amqp;
use corral::capabilities::messaging::amqp::topology::Topology;
use corral::capabilities::messaging::broker::new_message_id;
use corral::capabilities::messaging::embedded::Embedded;
use corral::capabilities::messaging::{
    Broker, Delivery, Message, PublishError, Subscribe, Subscription,
};
use lapin::options::QueueDeleteOptions;

use crate::proxy::Proxy;

/// Where the test RabbitMQ listens (`CORRAL_TEST_AMQP_ADDR`).
pub fn rabbitmq_addr() -> String {
    std::env::var("CORRAL_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".into())
}

/// Whether RabbitMQ is reachable; the AMQP tests are skipped (loudly)
/// without it, unless `CORRAL_TEST_REQUIRE_RABBITMQ` is set.
pub fn rabbitmq_available() -> bool {
    let reachable = std::net::TcpStream::connect_timeout(
        &rabbitmq_addr().parse().expect("CORRAL_TEST_AMQP_ADDR is host:port"),
        Duration::from_secs(1),
    )
    .is_ok();
    if !reachable {
        assert!(
            std::env::var_os("CORRAL_TEST_REQUIRE_RABBITMQ").is_none(),
            "RabbitMQ is required but not reachable at {}",
            rabbitmq_addr()
        );
        eprintln!("SKIPPED: no RabbitMQ at {}", rabbitmq_addr());
    }
    reachable
}

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
        let prefix = format!("corral-test-{}-", &new_message_id()[..10]);
        let broker = Arc::new(Amqp::start(&proxy.url(), Topology::new(&prefix, []), confirm_timeout));
        Self {
            broker: Some(broker),
            prefix,
            kind: Kind::Amqp { proxy },
        }
    }

    pub async fn embedded() -> Self {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let broker = Arc::new(Embedded::open(dir.path(), "").unwrap());
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
        let Kind::Embedded { dir } = &self.kind else { panic!("embedded only") };
        let path = dir.path().to_owned();
        drop(self.broker.take());
        // Background tasks may hold the store for a moment longer.
        let mut tries = 0;
        self.broker = loop {
            match Embedded::open(&path, "") {
                Ok(broker) => break Some(Arc::new(broker)),
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

    pub fn subscribe(&self, queue: &str, prefetch: u16) -> Subscription {
        self.broker().subscribe(Subscribe {
            queue: queue.into(),
            dead_letter: format!("{queue}.dead"),
            prefetch,
        })
    }

    /// Ends the test (the queues are deleted when the fixture drops, even
    /// after a failed assertion).
    pub async fn finish(self) {}
}

impl Drop for Fixture {
    /// Deletes the test's queues on RabbitMQ (every queue with its prefix).
    /// Runs on its own thread and runtime: it may run during a panic, inside
    /// the test's runtime.
    fn drop(&mut self) {
        let Kind::Amqp { .. } = &self.kind else { return };
        drop(self.broker.take());
        let prefix = self.prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(delete_queues(&prefix));
        });
        let _ = cleanup.join();
    }
}

async fn delete_queues(prefix: &str) {
    let names = queues_with_prefix(prefix);
    let url = format!("amqp://guest:guest@{}/%2f", rabbitmq_addr());
    let Ok(connection) = lapin::Connection::connect(&url, Default::default()).await else { return };
    for name in names {
        let Ok(channel) = connection.create_channel().await else { return };
        let _ = channel
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

/// Queue names starting with `prefix`, from `rabbitmqctl` (the delay queues'
/// names depend on the delays used, so listing is simplest).
fn queues_with_prefix(prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "--no-table-headers", "name"])
        .output();
    let Ok(out) = out else {
        eprintln!("rabbitmqctl not available: test queues {prefix}* are left behind");
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
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
