//! Capability costs: what going through a component adds on top of calling
//! the same backend natively, in the same run, on the same server.
//!
//! - `kv`: key-value `get`/`set` on Redis. The component side is
//!   `components/probes/bench-probe` called in-process (no sockets, no HTTP
//!   parsing: a `wasi:http` request built in memory, as `runtime.rs` does),
//!   each request running `KV_PER_REQUEST` operations in a row through the
//!   `wasi:keyvalue` host import, so instantiation and the request are
//!   spread over many operations. The guest times every operation with the
//!   monotonic clock. The native side runs the same commands on the same
//!   keys with redis-rs through one multiplexed `ConnectionManager`, the
//!   connection type the host uses, with the same number of concurrent
//!   callers.
//! - `messaging`: messages consumed and acknowledged from RabbitMQ. The
//!   component side is the queue trigger (`corral::triggers::queue::run`)
//!   with bench-probe's no-op `queue-handler` (acks at once): a fresh
//!   instance per message, settled by the host. The native side is a lapin
//!   consumer with the same prefetch and manual acks. Both consume
//!   `MSG_COUNT` identical messages published beforehand (not timed) by the
//!   host's publisher.
//!
//! Run with `cargo bench -p corral --bench capabilities [-- kv|messaging]`
//! (or `scripts/bench.sh --capabilities`). Needs Redis and RabbitMQ
//! (`BENCH_REDIS_URL`, `BENCH_AMQP_URL`); every key and queue lives under a
//! random prefix and is deleted at the end. Prints a table on stderr and one
//! JSON object on stdout.
//!
//! Settings (environment): `BENCH_ROUNDS` (3; best round reported),
//! `KV_OPS` (20000 per run), `KV_PER_REQUEST` (1000), `KV_CONCURRENCY`
//! ("1,16"), `KV_KEYS` (1000), `KV_VALUE_BYTES` (100), `MSG_COUNT` (20000
//! per run), `MSG_PREFETCH` (32), `MSG_CONCURRENCY` ("4,32"),
//! `BENCH_MAX_SECONDS` (60, per run).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use support::in_process;
use test_support::{backend_sections, rabbit, redis_keys};

use corral::broker::Message;
use corral::config::Config;
use corral::platform::Platform;
use corral::runtime::deployment::Deployment;
use corral::runtime::{Registry, engine};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

struct Settings {
    rounds: usize,
    max_run: Duration,
    redis_url: String,
    amqp_url: String,
    kv_ops: usize,
    kv_per_request: usize,
    kv_concurrency: Vec<usize>,
    kv_keys: usize,
    kv_value_bytes: usize,
    msg_count: usize,
    msg_prefetch: u16,
    msg_concurrency: Vec<usize>,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            rounds: env_or("BENCH_ROUNDS", 3usize).max(1),
            max_run: Duration::from_secs(env_or("BENCH_MAX_SECONDS", 60)),
            redis_url: env_or("BENCH_REDIS_URL", "redis://127.0.0.1:6379".to_string()),
            amqp_url: env_or(
                "BENCH_AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
            ),
            kv_ops: env_or("KV_OPS", 20_000usize).max(1),
            kv_per_request: env_or("KV_PER_REQUEST", 1_000usize).max(1),
            kv_concurrency: env_list("KV_CONCURRENCY", "1,16"),
            kv_keys: env_or("KV_KEYS", 1_000usize).max(1),
            kv_value_bytes: env_or("KV_VALUE_BYTES", 100usize),
            msg_count: env_or("MSG_COUNT", 20_000usize).max(1),
            msg_prefetch: env_or("MSG_PREFETCH", 32u16).max(1),
            msg_concurrency: env_list("MSG_CONCURRENCY", "4,32"),
        }
    }
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; the rest selects what to run.
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let settings = Settings::from_env();
    let prefix = rabbit::random_prefix("bench");
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("corral.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
[runtime]
state_dir = "state"
max_instances = 256
{redis}{amqp}
[[component]]
name = "bench-probe"
wasm = "{wasm}"
routes = ["/bench"]
queue = {{ name = "bench", prefetch = {prefetch} }}
limits = {{ memory_mb = 64, timeout_ms = 60000 }}
grants.keyvalue = {{ buckets = ["bench"] }}
"#,
            redis = backend_sections::redis(&settings.redis_url, &prefix),
            amqp = backend_sections::amqp(&settings.amqp_url, &prefix),
            wasm = component_artifacts::BENCH_PROBE,
            prefetch = settings.msg_prefetch,
        ),
    )?;
    let config = Config::load(&config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let engine = engine::build(&config.runtime)?;
        let platform = Platform::start(&config, engine).await?;
        let registry = platform.registry.clone();
        let mut report = serde_json::Map::new();
        if wants("kv") {
            report.insert("kv".into(), kv(&settings, &registry, &prefix).await?);
        }
        if wants("messaging") {
            report.insert(
                "messaging".into(),
                messaging(&settings, &platform, &prefix).await?,
            );
        }
        anyhow::Ok(Value::Object(report))
    });
    // Clean up whatever happened.
    redis_keys::delete_under(&settings.redis_url, &prefix);
    rabbit::delete_queues_blocking(&prefix);
    let report = result?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = json!({
        "cpus": cpus,
        "prefix": prefix,
        "rounds": settings.rounds,
        "results": report,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

// ------------------------------------------------------------ key-value

/// One measured run: operations, wall time, every operation's duration.
struct Run {
    ops: usize,
    errors: usize,
    wall: Duration,
    ns: Vec<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn json(mut self) -> Value {
        self.ns.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.ns.len() - 1) as f64 * p).round() as usize;
            (self.ns[i] as f64 / 100.0).round() / 10.0
        };
        let mean = self.ns.iter().sum::<u64>() as f64 / self.ns.len() as f64;
        json!({
            "ops": self.ops,
            "errors": self.errors,
            "seconds": (self.wall.as_secs_f64() * 1000.0).round() / 1000.0,
            "ops_per_s": self.rate().round() as u64,
            "latency_us": {
                "mean": (mean / 100.0).round() / 10.0,
                "p50": pct(0.5),
                "p99": pct(0.99),
                "max": pct(1.0),
            },
        })
    }
}

async fn kv(settings: &Settings, registry: &Registry, prefix: &str) -> anyhow::Result<Value> {
    let deployment = registry.current("bench-probe").expect("configured");
    // Built the way the host builds its own (`keyvalue/redis.rs`): lazily,
    // from a task on a runtime worker, same settings.
    let client = redis::Client::open(settings.redis_url.as_str())?;
    let native = tokio::spawn(async move {
        redis::aio::ConnectionManager::new_lazy_with_config(
            client,
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(5)))
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500)),
        )
    })
    .await??;
    // Warm-up (and every key present for `get`): one pass over the keys
    // each way.
    let warm = settings.kv_keys.max(1_000);
    kv_component(settings, &deployment, "set", 1, warm).await?;
    kv_native(settings, &native, prefix, "set", 1, warm).await?;
    kv_component(settings, &deployment, "get", 1, warm).await?;

    let mut results = Vec::new();
    for op in ["set", "get"] {
        for &concurrency in &settings.kv_concurrency {
            let (mut best_native, mut best_component): (Option<Run>, Option<Run>) = (None, None);
            let (mut all_native, mut all_component) = (Vec::new(), Vec::new());
            for round in 1..=settings.rounds {
                let n =
                    kv_native(settings, &native, prefix, op, concurrency, settings.kv_ops).await?;
                let c =
                    kv_component(settings, &deployment, op, concurrency, settings.kv_ops).await?;
                eprintln!(
                    "  .. kv {op} concurrency {concurrency} round {round}: native {:.0} ops/s, component {:.0} ops/s",
                    n.rate(),
                    c.rate()
                );
                all_native.push(n.rate().round() as u64);
                all_component.push(c.rate().round() as u64);
                if best_native.as_ref().is_none_or(|b| n.rate() > b.rate()) {
                    best_native = Some(n);
                }
                if best_component.as_ref().is_none_or(|b| c.rate() > b.rate()) {
                    best_component = Some(c);
                }
            }
            let (n, c) = (best_native.unwrap(), best_component.unwrap());
            let ratio = (c.rate() / n.rate() * 100.0).round() / 100.0;
            results.push(json!({
                "op": op,
                "concurrency": concurrency,
                "native": n.json(),
                "component": c.json(),
                "ratio_ops_per_s": ratio,
                "native_ops_per_s_all_rounds": all_native,
                "component_ops_per_s_all_rounds": all_component,
            }));
        }
    }
    eprintln!();
    eprintln!(
        "key-value on Redis, {} ops per run ({} per component request), best of {} rounds; latency per op in us",
        settings.kv_ops, settings.kv_per_request, settings.rounds
    );
    eprintln!(
        "{:<4} {:>4} {:>11} {:>11} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "op", "conc", "native/s", "comp/s", "ratio", "nat_p50", "cmp_p50", "nat_p99", "cmp_p99"
    );
    for r in &results {
        eprintln!(
            "{:<4} {:>4} {:>11} {:>11} {:>6} {:>8} {:>8} {:>8} {:>8}",
            r["op"].as_str().unwrap(),
            r["concurrency"],
            r["native"]["ops_per_s"],
            r["component"]["ops_per_s"],
            r["ratio_ops_per_s"],
            r["native"]["latency_us"]["p50"],
            r["component"]["latency_us"]["p50"],
            r["native"]["latency_us"]["p99"],
            r["component"]["latency_us"]["p99"],
        );
    }
    eprintln!();
    Ok(json!({
        "backend": "redis",
        "ops_per_run": settings.kv_ops,
        "ops_per_component_request": settings.kv_per_request,
        "keys": settings.kv_keys,
        "value_bytes": settings.kv_value_bytes,
        "component_side": "components/probes/bench-probe called in-process (wasi:http request built in memory, no sockets); each request runs ops_per_component_request operations through the wasi:keyvalue import; latency timed in the guest per operation, throughput = ops / wall time including instantiation and requests",
        "native_side": "redis-rs ConnectionManager (one multiplexed connection, like the host), same keys and values, same concurrency",
        "runs": results,
    }))
}

/// `total` operations split over `concurrency` callers, each a series of
/// in-process requests of at most `KV_PER_REQUEST` operations.
async fn kv_component(
    settings: &Settings,
    deployment: &Arc<Deployment>,
    op: &str,
    concurrency: usize,
    total: usize,
) -> anyhow::Result<Run> {
    let per_task = total.div_ceil(concurrency);
    let deadline = Instant::now() + settings.max_run;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let deployment = deployment.clone();
        let (per_request, keys, size) = (
            settings.kv_per_request,
            settings.kv_keys,
            settings.kv_value_bytes,
        );
        let op = op.to_owned();
        tasks.spawn(async move {
            let (mut ns, mut errors, mut done) = (Vec::with_capacity(per_task), 0usize, 0usize);
            while done < per_task && Instant::now() < deadline {
                let n = per_request.min(per_task - done);
                let uri = format!(
                    "http://localhost/bench/kv?op={op}&n={n}&keys={keys}&size={size}&start={}",
                    task * per_task + done
                );
                let body = call_http(&deployment, &uri).await?;
                let reply: Value = serde_json::from_slice(&body)?;
                anyhow::ensure!(reply["ops"] == n, "bench-probe answered {reply}");
                errors += reply["errors"].as_u64().unwrap_or(0) as usize;
                ns.extend(
                    reply["ns"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_u64),
                );
                done += n;
            }
            anyhow::Ok((ns, errors))
        });
    }
    let (mut ns, mut errors) = (Vec::with_capacity(total), 0);
    while let Some(done) = tasks.join_next().await {
        let (task_ns, task_errors) = done??;
        ns.extend(task_ns);
        errors += task_errors;
    }
    let wall = started.elapsed();
    anyhow::ensure!(
        errors == 0,
        "{errors} key-value operations failed in the component"
    );
    Ok(Run {
        ops: ns.len(),
        errors,
        wall,
        ns,
    })
}

async fn kv_native(
    settings: &Settings,
    connection: &redis::aio::ConnectionManager,
    prefix: &str,
    op: &str,
    concurrency: usize,
    total: usize,
) -> anyhow::Result<Run> {
    let per_task = total.div_ceil(concurrency);
    let deadline = Instant::now() + settings.max_run;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let mut connection = connection.clone();
        let keys = settings.kv_keys;
        let value = vec![b'v'; settings.kv_value_bytes];
        let (op, prefix) = (op.to_owned(), prefix.to_owned());
        tasks.spawn(async move {
            let mut ns = Vec::with_capacity(per_task);
            let mut errors = 0usize;
            for i in 0..per_task {
                if i % 64 == 0 && Instant::now() >= deadline {
                    break;
                }
                let key = format!("{prefix}bench:k{}", (task * per_task + i) % keys);
                let before = Instant::now();
                let ok = if op == "set" {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&value)
                        .exec_async(&mut connection)
                        .await
                        .is_ok()
                } else {
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async::<Option<Vec<u8>>>(&mut connection)
                        .await
                        .is_ok()
                };
                ns.push(before.elapsed().as_nanos() as u64);
                errors += usize::from(!ok);
            }
            (ns, errors)
        });
    }
    let (mut ns, mut errors) = (Vec::with_capacity(total), 0);
    while let Some(done) = tasks.join_next().await {
        let (task_ns, task_errors) = done?;
        ns.extend(task_ns);
        errors += task_errors;
    }
    let wall = started.elapsed();
    anyhow::ensure!(errors == 0, "{errors} native Redis operations failed");
    Ok(Run {
        ops: ns.len(),
        errors,
        wall,
        ns,
    })
}

/// One request through bench-probe's `wasi:http` handler, in-process.
async fn call_http(deployment: &Arc<Deployment>, uri: &str) -> anyhow::Result<Bytes> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, body) = in_process::get(deployment, uri, deadline).await?;
    anyhow::ensure!(status == 200, "bench-probe answered {status}");
    Ok(body)
}

// ------------------------------------------------------------ messaging

struct Consumed {
    acked: usize,
    wall: Duration,
}

impl Consumed {
    fn rate(&self) -> f64 {
        self.acked as f64 / self.wall.as_secs_f64()
    }
}

async fn messaging(
    settings: &Settings,
    platform: &Platform,
    prefix: &str,
) -> anyhow::Result<Value> {
    let registry = &platform.registry;
    let broker = platform.broker.get()?;
    let connection =
        lapin::Connection::connect(&settings.amqp_url, lapin::ConnectionProperties::default())
            .await?;
    let control = connection.create_channel().await?;
    let base = platform
        .plan
        .queue("bench-probe")
        .cloned()
        .expect("bench-probe has a queue trigger");

    let fill = async |queue: &str| -> anyhow::Result<()> {
        let real = format!("{prefix}{queue}");
        // Declared by the first publish (with corral's arguments); purge
        // what a previous run left (prefetched messages given back). A
        // passive declare of a missing queue closes its channel: use a
        // throwaway one.
        let probe = connection.create_channel().await?;
        if probe
            .queue_declare(
                real.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .is_ok()
        {
            probe
                .queue_purge(real.as_str().into(), QueuePurgeOptions::default())
                .await?;
            let _ = probe.close(200, "OK".into()).await;
        }
        let mut i = 0;
        while i < settings.msg_count {
            let batch: Vec<Message> = (i..(i + 1_000).min(settings.msg_count))
                .map(|n| Message {
                    body: format!(r#"{{"n":{n},"payload":"{}"}}"#, "x".repeat(80)).into_bytes(),
                    content_type: Some("application/json".into()),
                    headers: vec![("batch".into(), "bench".into())],
                    message_id: Some(format!("bench:{n}")),
                })
                .collect();
            i += batch.len();
            broker
                .publish(queue, batch)
                .await
                .map_err(|e| anyhow::anyhow!("publishing to {queue}: {e}"))?;
        }
        Ok(())
    };
    let ready = async |queue: &str| -> anyhow::Result<u32> {
        let real = format!("{prefix}{queue}");
        let declared = control
            .queue_declare(
                real.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(declared.message_count())
    };

    // Native: a lapin consumer, prefetch and manual acks, until every
    // message is acknowledged.
    let native_run = async || -> anyhow::Result<Consumed> {
        fill("native").await?;
        anyhow::ensure!(ready("native").await? as usize == settings.msg_count);
        let started = Instant::now();
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(settings.msg_prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                format!("{prefix}native").as_str().into(),
                "bench-native".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let deadline = started + settings.max_run;
        let mut acked = 0;
        while acked < settings.msg_count {
            let next = tokio::time::timeout_at(deadline.into(), consumer.next()).await;
            let Ok(Some(delivery)) = next else { break };
            delivery?.ack(BasicAckOptions::default()).await?;
            acked += 1;
        }
        let wall = started.elapsed();
        let _ = channel.close(200, "OK".into()).await;
        Ok(Consumed { acked, wall })
    };

    // The queue trigger with bench-probe's no-op handler. When the queue
    // has nothing ready left (at most `prefetch` deliveries still on their
    // way), the trigger is stopped: it finishes and settles what it took
    // and gives the rest back; acked = published - what is in the queue
    // after. The time includes that stop.
    let component_run = async |concurrency: usize| -> anyhow::Result<Consumed> {
        fill("bench").await?;
        anyhow::ensure!(ready("bench").await? as usize == settings.msg_count);
        let mut queue_config = base.clone();
        queue_config.concurrency = concurrency as u32;
        let (stop, shutdown) = corral::shutdown::channel();
        let started = Instant::now();
        let trigger = tokio::spawn(corral::triggers::queue::run(
            registry.clone(),
            platform.broker.clone(),
            "bench-probe".into(),
            queue_config,
            shutdown,
        ));
        let deadline = started + settings.max_run;
        while ready("bench").await? > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.fire();
        trigger.await?;
        let wall = started.elapsed();
        let left = ready("bench").await? as usize;
        Ok(Consumed {
            acked: settings.msg_count - left,
            wall,
        })
    };

    let mut results = Vec::new();
    let mut natives: Vec<Consumed> = Vec::new();
    let mut components: Vec<Vec<Consumed>> = settings
        .msg_concurrency
        .iter()
        .map(|_| Vec::new())
        .collect();
    for round in 1..=settings.rounds {
        let n = native_run().await?;
        eprintln!(
            "  .. messaging round {round}: native {:.0} msg/s ({} in {:.2} s)",
            n.rate(),
            n.acked,
            n.wall.as_secs_f64()
        );
        natives.push(n);
        for (i, &concurrency) in settings.msg_concurrency.iter().enumerate() {
            let c = component_run(concurrency).await?;
            eprintln!(
                "  .. messaging round {round}: component (concurrency {concurrency}) {:.0} msg/s ({} in {:.2} s)",
                c.rate(),
                c.acked,
                c.wall.as_secs_f64()
            );
            components[i].push(c);
        }
    }
    let best = |runs: &[Consumed]| -> Value {
        let b = runs
            .iter()
            .max_by(|a, b| a.rate().total_cmp(&b.rate()))
            .unwrap();
        json!({
            "acked": b.acked,
            "seconds": (b.wall.as_secs_f64() * 1000.0).round() / 1000.0,
            "msgs_per_s": b.rate().round() as u64,
            "msgs_per_s_all_rounds": runs.iter().map(|r| r.rate().round() as u64).collect::<Vec<_>>(),
        })
    };
    let native_best = natives.iter().map(Consumed::rate).fold(0.0f64, f64::max);
    eprintln!();
    eprintln!(
        "messaging on RabbitMQ, {} messages per run, prefetch {}, best of {} rounds",
        settings.msg_count, settings.msg_prefetch, settings.rounds
    );
    eprintln!("{:<34} {:>10} {:>6}", "consumer", "msg/s", "ratio");
    eprintln!(
        "{:<34} {:>10.0} {:>6}",
        "native lapin (manual ack)", native_best, "1.00"
    );
    for (i, &concurrency) in settings.msg_concurrency.iter().enumerate() {
        let component_best = components[i]
            .iter()
            .map(Consumed::rate)
            .fold(0.0f64, f64::max);
        let ratio = (component_best / native_best * 100.0).round() / 100.0;
        eprintln!(
            "{:<34} {:>10.0} {:>6.2}",
            format!("queue trigger, concurrency {concurrency}"),
            component_best,
            ratio
        );
        results.push(json!({
            "concurrency": concurrency,
            "component": best(&components[i]),
            "ratio_msgs_per_s": ratio,
        }));
    }
    eprintln!();
    let _ = connection.close(200, "OK".into()).await;
    Ok(json!({
        "backend": "amqp (RabbitMQ)",
        "messages_per_run": settings.msg_count,
        "prefetch": settings.msg_prefetch,
        "native_side": "lapin consumer on its own connection, basic.qos(prefetch), manual ack of each delivery in turn; timed from basic.consume to the last ack",
        "component_side": "corral::triggers::queue::run with components/probes/bench-probe (queue-handler answers ack at once; fresh instance per message; host settles); timed from start until the queue had nothing ready, plus the trigger's stop; acked = published - left in the queue",
        "native": best(&natives),
        "queue_trigger": results,
    }))
}
