//! The queue trigger and the messaging capability through the real binary,
//! on both backends: the `queue-probe` component consumes `work` (its body
//! says what to do), another copy consumes the dead-letter queue, and the
//! tests follow every delivery in their log files.

mod cases;
use crate::rabbit;

use std::time::{Duration, Instant};

use crate::common::*;
use crate::proxy::Proxy;

pub const PROBE_LOG: &str = "logs/probe.log";
pub const DEAD_LOG: &str = "logs/dead.log";
pub const BULK_LOG: &str = "logs/bulk.log";
pub const BATCH_LOG: &str = "logs/batch.log";
pub const WAIT: Duration = Duration::from_secs(30);

/// One backend under test; the host config's `[messaging]` section comes
/// from here, so that a restarted host finds the same queues.
pub enum Backend {
    Embedded {
        dir: tempfile::TempDir,
    },
    Amqp {
        prefix: String,
        proxy: Option<Proxy>,
    },
}

impl Backend {
    pub fn embedded() -> Self {
        Self::Embedded {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// RabbitMQ with a fresh queue prefix, reached through a proxy the test
    /// can cut when `via_proxy`.
    pub async fn amqp(via_proxy: bool) -> Self {
        rabbit::require_rabbitmq();
        let proxy = match via_proxy {
            true => Some(Proxy::start(&rabbit::rabbitmq_addr()).await),
            false => None,
        };
        Self::Amqp {
            prefix: rabbit::random_prefix("e2e"),
            proxy,
        }
    }

    pub fn sections(&self) -> String {
        let messaging = match self {
            Self::Embedded { dir } => format!(
                "[messaging]\nbackend = \"embedded\"\npath = {:?}\n",
                dir.path().join("queue").display().to_string()
            ),
            Self::Amqp { prefix, proxy } => {
                let url = proxy.as_ref().map_or_else(rabbit::rabbitmq_url, Proxy::url);
                format!(
                    "[messaging]\nbackend = \"amqp\"\nurl = \"{url}\"\nqueue_prefix = \"{prefix}\"\nconfirm_timeout_ms = 5000\n"
                )
            }
        };
        messaging + EXCHANGES
    }

    pub fn proxy(&self) -> &Proxy {
        match self {
            Self::Amqp {
                proxy: Some(proxy), ..
            } => proxy,
            _ => panic!("only an AMQP backend through the proxy has one"),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Self::Amqp { prefix, .. } = self {
            rabbit::delete_queues_blocking(prefix);
        }
    }
}

/// `events` (topic) routes `work.*` to `work` and `work.bulk` to `bulk`
/// too; `private` (fanout, not granted to anyone) feeds `bulk`.
const EXCHANGES: &str = r#"
[[messaging.exchanges]]
name = "events"
kind = "topic"
bindings = [ { queue = "work", key = "work.*" }, { queue = "bulk", key = "work.bulk" } ]

[[messaging.exchanges]]
name = "private"
kind = "fanout"
bindings = [ { queue = "bulk" } ]
"#;

/// `probe` consumes `work` one message at a time (so its log is in order),
/// `bulk` consumes `bulk` four at a time, `graveyard` consumes `work.dead`;
/// `batcher` (`batch-probe`) consumes `batched` up to 20 messages per call,
/// and `batch-graveyard` its dead letters, logging to the same file as
/// `graveyard`. The probe imports `messaging`, so each copy needs the grant,
/// if empty.
pub fn components() -> String {
    format!(
        r#"
[[component]]
name = "probe"
wasm = "{wasm}"
routes = ["/queue-probe"]
limits = {{ timeout_ms = 5000 }}
queue = {{ name = "work", prefetch = 4, concurrency = 1, max_attempts = 3, retry_delay_ms = 100, max_retry_delay_ms = 200 }}
grants.logging = {{ file = "{PROBE_LOG}" }}
grants.messaging = {{ publish = ["work", "bulk", "batched"], exchanges = ["events"] }}

[[component]]
name = "bulk"
wasm = "{wasm}"
queue = {{ name = "bulk", prefetch = 32, concurrency = 4 }}
grants.logging = {{ file = "{BULK_LOG}" }}
grants.messaging = {{ publish = [] }}

[[component]]
name = "graveyard"
wasm = "{wasm}"
queue = {{ name = "work.dead" }}
grants.logging = {{ file = "{DEAD_LOG}" }}
grants.messaging = {{ publish = [] }}

[[component]]
name = "batcher"
wasm = "{batch_wasm}"
limits = {{ timeout_ms = 5000 }}
queue = {{ name = "batched", prefetch = 64, concurrency = 1, batch_size = 20, batch_wait_ms = 200, max_attempts = 3, retry_delay_ms = 100, max_retry_delay_ms = 200 }}
grants.logging = {{ file = "{BATCH_LOG}" }}

[[component]]
name = "batch-graveyard"
wasm = "{wasm}"
queue = {{ name = "batched.dead" }}
grants.logging = {{ file = "{DEAD_LOG}" }}
grants.messaging = {{ publish = [] }}
"#,
        wasm = component_artifacts::QUEUE_PROBE,
        batch_wasm = component_artifacts::BATCH_PROBE,
    )
}

pub fn start(backend: &Backend) -> Host {
    Host::start_with_sections(&backend.sections(), &components())
}

/// Publishes `count` messages with `body` through the probe's HTTP route.
pub async fn publish(host: &Host, queue: &str, id: &str, body: &str, count: usize) -> Reply {
    let url = host.url(&format!(
        "/queue-probe/publish?queue={queue}&id={id}&count={count}"
    ));
    Http::new().post(&url, body.to_owned()).await
}

/// Proves that no message matching `needle` is left on `queue` (acked,
/// not merely handled): stops `host` gracefully, which hands every
/// unsettled delivery back to the broker, starts a new host on the same
/// backend, publishes a sentinel after them and waits for it to be handled
/// there. A message left unacked would be delivered to the new host ahead
/// of the sentinel (the queues are FIFO); a fixed wait could not see it on
/// RabbitMQ, which redelivers only when the channel closes.
pub async fn assert_nothing_comes_back(b: &Backend, host: Host, queue: &str, needle: &str) {
    host.signal(libc::SIGTERM);
    let mut host = host;
    let status = host
        .wait_exit(Duration::from_secs(20))
        .expect("the host stops in time");
    assert!(status.success(), "{status:?}\n{}", host.output());
    let next = start(b);
    let reply = publish(&next, queue, "sentinel", "ack", 1).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let log = match queue {
        "batched" => BATCH_LOG,
        _ => PROBE_LOG,
    };
    wait_lines(
        &next,
        log,
        &format!("handled queue={queue} id=sentinel "),
        1,
    )
    .await;
    let again = lines(&next, log, needle);
    assert!(again.is_empty(), "settled messages came back: {again:#?}");
}

/// Publishes one message with `body` to `exchange` with `key` through the
/// probe's HTTP route.
pub async fn publish_to_exchange(
    host: &Host,
    exchange: &str,
    key: &str,
    id: &str,
    body: &str,
) -> Reply {
    let url = host.url(&format!(
        "/queue-probe/publish?exchange={exchange}&key={key}&id={id}"
    ));
    Http::new().post(&url, body.to_owned()).await
}

/// Lines of `file` that contain `needle`.
pub fn lines(host: &Host, file: &str, needle: &str) -> Vec<String> {
    std::fs::read_to_string(host.path(file))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Waits until `file` has at least `n` lines containing `needle`.
pub async fn wait_lines(host: &Host, file: &str, needle: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = lines(host, file, needle);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} {needle:?} lines in {file} after {WAIT:?}: {found:#?}\n--- host output:\n{}",
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `cases::$case` once per backend.
macro_rules! both {
    ($case:ident) => {
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn amqp() {
                let backend = Backend::amqp(false).await;
                cases::$case(&backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                cases::$case(&Backend::embedded()).await;
            }
        }
    };
}

both!(handles_and_acks_in_order);
both!(retries_then_dead_letters);
both!(rejects_go_to_the_dead_letter_queue_at_once);
both!(traps_are_retried_then_dead_lettered);
both!(a_retry_can_succeed);
both!(publishing_needs_a_grant);
both!(exchange_publishing_routes_and_needs_a_grant);
both!(graceful_stop_finishes_in_flight_and_leaves_the_rest);
both!(a_killed_host_gets_its_message_again);
both!(throughput);
both!(batches_carry_many_messages_per_call);
both!(a_batch_settles_each_message_by_its_own_answer);
both!(an_outage_pauses_the_queue_and_spends_no_attempts);
both!(redrive_moves_dead_letters_back_to_work);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_connection_drops_lose_nothing() {
    let backend = Backend::amqp(true).await;
    cases::connection_drops_lose_nothing(&backend).await;
}
