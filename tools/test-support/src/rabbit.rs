//! The test RabbitMQ: where it is, whether it is there, and cleaning up
//! after a test (shared by the `messaging` and `e2e` test crates and the
//! benches).

use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

/// Where the test RabbitMQ listens (`CORRAL_TEST_AMQP_ADDR`).
pub fn rabbitmq_addr() -> String {
    std::env::var("CORRAL_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".into())
}

/// The AMQP URL of the test RabbitMQ (guest/guest, default vhost).
pub fn rabbitmq_url() -> String {
    format!("amqp://guest:guest@{}/%2f", rabbitmq_addr())
}

/// Panics, naming the address, unless RabbitMQ is reachable: the tests
/// that need it fail rather than pass without having run (start it with
/// `rabbitmq-server -detached`, as `.ci/run` does).
pub fn require_rabbitmq() {
    let reachable = std::net::TcpStream::connect_timeout(
        &rabbitmq_addr()
            .parse()
            .expect("CORRAL_TEST_AMQP_ADDR is host:port"),
        Duration::from_secs(1),
    )
    .is_ok();
    assert!(
        reachable,
        "RabbitMQ is required but not reachable at {} (start it: rabbitmq-server -detached)",
        rabbitmq_addr()
    );
}

/// A random queue prefix, so that tests sharing the broker never meet.
pub fn random_prefix(kind: &str) -> String {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).unwrap();
    format!("corral-{kind}-{}-", hex::encode(bytes))
}

/// Deletes every queue and exchange whose name starts with `prefix` (the
/// host prefixes both with `queue_prefix`). Blocking: runs on
/// its own thread and runtime, so that it works from `Drop` (also during a
/// panic, inside a test's runtime).
pub fn delete_queues_blocking(prefix: &str) {
    let prefix = prefix.to_owned();
    let cleanup = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(delete_queues(&prefix));
    });
    let _ = cleanup.join();
}

async fn delete_queues(prefix: &str) {
    let names = listed_with_prefix("list_queues", prefix);
    let exchanges = listed_with_prefix("list_exchanges", prefix);
    let Ok(connection) = lapin::Connection::connect(&rabbitmq_url(), Default::default()).await
    else {
        return;
    };
    for name in names {
        let Ok(channel) = connection.create_channel().await else {
            return;
        };
        let _ = channel
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for name in exchanges {
        let Ok(channel) = connection.create_channel().await else {
            return;
        };
        let _ = channel
            .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

/// Queue (`list_queues`) or exchange (`list_exchanges`) names starting with
/// `prefix`, from `rabbitmqctl` (the delay queues' names depend on the
/// delays used, so listing is simplest).
fn listed_with_prefix(command: &str, prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("rabbitmqctl")
        .args([command, "-q", "--no-table-headers", "name"])
        .output();
    let Ok(out) = out else {
        eprintln!("rabbitmqctl not available: test queues and exchanges {prefix}* are left behind");
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}
