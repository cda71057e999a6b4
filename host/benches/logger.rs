//! Seed 002's `logger` on the release binary: how fast records go in, and
//! how fast a filtered query comes back from a million of them.
//!
//! For each backend (`LOGGER_BACKENDS`, default "embedded,real"; `real` is
//! Redis + RabbitMQ on this machine under a random prefix, deleted
//! afterwards):
//!
//! 1. **Ingest through `POST /logs`**: `LOGGER_RECORDS` records (default
//!    1,000,000) in batches of `LOGGER_BATCH` (1000), `LOGGER_CLIENTS` (4)
//!    requests in flight; records/s from the first request to the last
//!    201. This is also how the million records are stored. The records
//!    are generated from a fixed seed (reproducible): 8 services, 10,000
//!    users, 30 actions, 90% success, timestamps spread over 30 days.
//! 2. **Ingest through the `logs` queue**: `LOGGER_QUEUE_RECORDS` (100,000)
//!    records in messages of 100, published by the `queue-probe` component
//!    (through corral's messaging, to the embedded queue or RabbitMQ),
//!    until `GET /logs/stats` counts them all.
//! 3. **Queries**: `LOGGER_QUERIES` (600) `GET /logs` calls with three
//!    filters each (service+action+result, user+action+result,
//!    service+user+action, in turn; values drawn like the records'),
//!    `limit=50`, one at a time; p50 / p99 / max latency, and how many
//!    index entries the queries read (`scanned`).
//!
//! 4. **The access log's cost**: `GET /hello` req/s with the gateway
//!    access log off, on (to a queue nobody consumes: the gateway's own
//!    cost, target at most 5%) and on with the logger storing every record
//!    from `logs` on the same cores; same run, the three alternating for
//!    `ACCESS_LOG_ROUNDS` (default 2) rounds of `ACCESS_LOG_SECS` (10)
//!    seconds each with `ACCESS_LOG_CLIENTS` (32) closed-loop clients,
//!    after a warm-up; the cost is `1 - on/off` of the best rounds.
//!
//! Run with `cargo bench -p corral --bench logger` (see
//! docs/benchmarks.md). Prints a table on stderr and one JSON object on
//! stdout.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::host::{Host, Http, cpu_seconds, rate, send};
use test_support::{backend_sections, rabbit, redis_keys};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: the same records on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SERVICES: u64 = 8;
const USERS: u64 = 10_000;
const ACTIONS: u64 = 30;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const SPAN_MS: i64 = 30 * 86_400_000;

fn service(n: u64) -> String {
    format!("service-{n}")
}
fn user(n: u64) -> String {
    format!("user-{n}")
}
fn action(n: u64) -> String {
    format!("action-{n}")
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Batch `index` of `size` generated records, as a JSON array.
fn batch(rng: &mut Rng, size: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..size)
        .map(|_| {
            let failure = rng.below(10) == 0;
            let mut record = json!({
                "service": service(rng.below(SERVICES)),
                "user_id": user(rng.below(USERS)),
                "action": action(rng.below(ACTIONS)),
                "result": if failure { "failure" } else { "success" },
                "timestamp": rfc3339(T0 + rng.below(SPAN_MS as u64) as i64),
                "request_id": format!("{:016x}", rng.next()),
            });
            if failure {
                record["cause"] = json!("upstream timed out");
            }
            record
        })
        .collect();
    serde_json::to_vec(&records).unwrap()
}

/// A host with the logger, the queue probe (to publish to `logs`) and
/// hello, on the backends of `sections`.
fn start_host(sections: &str) -> anyhow::Result<Host> {
    Host::start(
        &format!(
            r#"
{sections}


[[component]]
name = "logger"
wasm = "{logger}"
routes = ["/log", "/logs"]
queue = {{ name = "logs", prefetch = 1000, concurrency = 2, batch_size = 500, max_attempts = 5 }}
timer = {{ interval_ms = 60000 }}
limits = {{ memory_mb = 128, timeout_ms = 30000 }}
config = {{ retention_days = "36500" }}
grants.keyvalue = {{ buckets = ["logs"] }}

[[component]]
name = "queue-probe"
wasm = "{probe}"
routes = ["/queue-probe"]
limits = {{ memory_mb = 64, timeout_ms = 30000 }}
grants.messaging = {{ publish = ["logs"] }}

[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]
"#,
            logger = component_artifacts::LOGGER,
            probe = component_artifacts::QUEUE_PROBE,
            hello = component_artifacts::HELLO,
        ),
        &[],
    )
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(name: &str, sections: &str) -> anyhow::Result<Value> {
    let records: usize = env_or("LOGGER_RECORDS", 1_000_000);
    let batch_size: usize = env_or("LOGGER_BATCH", 1000);
    let clients: usize = env_or("LOGGER_CLIENTS", 4);
    let queue_records: usize = env_or("LOGGER_QUEUE_RECORDS", 100_000);
    let queries: usize = env_or("LOGGER_QUERIES", 600);
    let host = start_host(sections)?;
    let client: Http = support::host::http();

    // 1. POST /logs.
    let batches = records.div_ceil(batch_size);
    let mut rng = Rng(0x5eed_0002_af62_7be3);
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|i| batch(&mut rng, batch_size.min(records - i * batch_size)))
        .collect();
    let cpu_before = cpu_seconds(host.pid());
    let started = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(bodies));
    let url = format!("{}/logs", host.url);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    return anyhow::Ok(latencies);
                };
                let sent = Instant::now();
                let (status, reply) = send(&client, "POST", &url, body).await?;
                anyhow::ensure!(
                    status == 201,
                    "POST /logs answered {status}: {}",
                    String::from_utf8_lossy(&reply)
                );
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut post_latencies = Vec::new();
    for task in tasks {
        post_latencies.extend(task.await??);
    }
    let ingest = started.elapsed();
    let ingest_cpu = cpu_seconds(host.pid()) - cpu_before;
    post_latencies.sort();
    let ingest_rate = records as f64 / ingest.as_secs_f64();
    eprintln!(
        "  .. {name}: POST /logs {records} records in {:.1} s: {ingest_rate:.0} records/s (batch p50 {:.1} ms, p99 {:.1} ms; corral {ingest_cpu:.1} cpu s)",
        ingest.as_secs_f64(),
        percentile(&post_latencies, 0.5),
        percentile(&post_latencies, 0.99)
    );

    // 2. The logs queue: messages of 100 records from queue-probe.
    let per_message = 100;
    let messages = queue_records / per_message;
    let mut qrng = Rng(0x0a11_ce5e_ed00_0002);
    let body = {
        // One body, published `messages` times under distinct message ids
        // (so distinct records); its own service to count it by.
        let mut value: Value = serde_json::from_slice(&batch(&mut qrng, per_message))?;
        for record in value.as_array_mut().unwrap() {
            record["service"] = json!("queue-bench");
        }
        serde_json::to_vec(&value)?
    };
    let started = Instant::now();
    let per_call = 100;
    for call in 0..messages.div_ceil(per_call) {
        let count = per_call.min(messages - call * per_call);
        let url = format!(
            "{}/queue-probe/publish?queue=logs&id=bench-{call}&count={count}",
            host.url
        );
        let (status, reply) = send(&client, "POST", &url, body.clone()).await?;
        anyhow::ensure!(
            status == 200,
            "publish answered {status}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    let published = started.elapsed();
    let stats_url = format!(
        "{}/logs/stats?service=queue-bench&from={T0}&to={}&bucket=86400",
        host.url,
        T0 + SPAN_MS
    );
    let stored_all = loop {
        let (status, reply) = send(&client, "GET", &stats_url, Vec::new()).await?;
        anyhow::ensure!(status == 200, "stats answered {status}");
        let stats: Value = serde_json::from_slice(&reply)?;
        let total = stats["total"]["success"].as_u64().unwrap_or(0)
            + stats["total"]["failure"].as_u64().unwrap_or(0);
        if total as usize >= messages * per_message {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "queue ingest: {total} stored after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let queue_rate = (messages * per_message) as f64 / stored_all.as_secs_f64();
    eprintln!(
        "  .. {name}: queue {} records in {:.1} s: {queue_rate:.0} records/s (published in {:.1} s)",
        messages * per_message,
        stored_all.as_secs_f64(),
        published.as_secs_f64()
    );

    // 3. Queries with three filters.
    let mut qr = Rng(0x9e37_79b9_7f4a_7c15);
    let mut latencies = Vec::with_capacity(queries);
    let mut scanned = Vec::with_capacity(queries);
    let mut returned = 0u64;
    let mut by_shape: [Vec<Duration>; 3] = Default::default();
    for i in 0..queries {
        let result = if qr.below(4) == 0 {
            "failure"
        } else {
            "success"
        };
        let query = match i % 3 {
            0 => format!(
                "service={}&action={}&result={result}",
                service(qr.below(SERVICES)),
                action(qr.below(ACTIONS))
            ),
            1 => format!(
                "user_id={}&action={}&result={result}",
                user(qr.below(USERS)),
                action(qr.below(ACTIONS))
            ),
            _ => format!(
                "service={}&user_id={}&action={}",
                service(qr.below(SERVICES)),
                user(qr.below(USERS)),
                action(qr.below(ACTIONS))
            ),
        };
        let url = format!("{}/logs?{query}&limit=50", host.url);
        let sent = Instant::now();
        let (status, reply) = send(&client, "GET", &url, Vec::new()).await?;
        let took = sent.elapsed();
        anyhow::ensure!(
            status == 200,
            "GET /logs answered {status}: {}",
            String::from_utf8_lossy(&reply)
        );
        let page: Value = serde_json::from_slice(&reply)?;
        returned += page["count"].as_u64().unwrap_or(0);
        scanned.push(page["scanned"].as_u64().unwrap_or(0));
        latencies.push(took);
        by_shape[i % 3].push(took);
    }
    latencies.sort();
    scanned.sort();
    let shape_names = [
        "service+action+result",
        "user+action+result",
        "service+user+action",
    ];
    let shapes: serde_json::Map<String, Value> = by_shape
        .iter_mut()
        .zip(shape_names)
        .map(|(l, n)| {
            l.sort();
            (n.to_owned(), json!({"p50_ms": round2(percentile(l, 0.5)), "p99_ms": round2(percentile(l, 0.99))}))
        })
        .collect();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    eprintln!(
        "  .. {name}: {queries} queries with 3 filters over {records}: p50 {p50:.2} ms, p99 {p99:.2} ms, max {:.2} ms; {:.1} records per query; scanned p50 {} p99 {}",
        latencies.last().unwrap().as_secs_f64() * 1000.0,
        returned as f64 / queries as f64,
        scanned[scanned.len() / 2],
        scanned[(scanned.len() - 1) * 99 / 100]
    );
    let disk = dir_size(&host.dir.path().join("state"));
    drop(host);

    // 4. The access log's cost on hello.
    let access_log = access_log_cost(name, sections).await?;
    Ok(json!({
        "access_log": access_log,
        "backends": name,
        "records": records,
        "ingest_post": {
            "records_per_s": ingest_rate.round(),
            "seconds": round2(ingest.as_secs_f64()),
            "batch": batch_size,
            "clients": clients,
            "batch_p50_ms": round2(percentile(&post_latencies, 0.5)),
            "batch_p99_ms": round2(percentile(&post_latencies, 0.99)),
            "corral_cpu_s": round2(ingest_cpu),
        },
        "ingest_queue": {
            "records": messages * per_message,
            "records_per_s": queue_rate.round(),
            "seconds": round2(stored_all.as_secs_f64()),
        },
        "query_3_filters": {
            "queries": queries,
            "limit": 50,
            "p50_ms": round2(p50),
            "p99_ms": round2(p99),
            "max_ms": round2(latencies.last().unwrap().as_secs_f64() * 1000.0),
            "records_per_query": round2(returned as f64 / queries as f64),
            "scanned_p50": scanned[scanned.len() / 2],
            "scanned_p99": scanned[(scanned.len() - 1) * 99 / 100],
            "by_shape": shapes,
        },
        "state_dir_bytes": disk,
    }))
}

/// `GET /hello` for `secs` seconds from `clients` closed-loop clients:
/// requests per second.
async fn hello_rate(client: &Http, url: &str, clients: usize, secs: f64) -> anyhow::Result<f64> {
    let (client, url) = (client.clone(), url.to_owned());
    rate(clients, secs, move |_, _| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let (status, _) = send(&client, "GET", &url, Vec::new()).await?;
            anyhow::ensure!(status == 200, "GET /hello answered {status}");
            Ok(())
        }
    })
    .await
}

/// The access log variants compared, as `[access_log]` bodies: off; on,
/// to a queue nobody consumes (the gateway's own cost: record, buffer,
/// batch, publish); on, to the logger's `logs` (plus storing every record).
const ACCESS_LOG_VARIANTS: [(&str, &str); 3] = [
    ("off", "enabled = false"),
    ("on", "enabled = true\nqueue = \"access-bench\""),
    ("on+logger", "enabled = true"),
];

/// Hello req/s for each of [`ACCESS_LOG_VARIANTS`], rounds alternating,
/// each on a host of its own; the cost of each "on" variant is `1 - on/off`
/// of the best rounds.
async fn access_log_cost(name: &str, sections: &str) -> anyhow::Result<Value> {
    let rounds: usize = env_or("ACCESS_LOG_ROUNDS", 2);
    let secs: f64 = env_or("ACCESS_LOG_SECS", 10.0);
    let clients: usize = env_or("ACCESS_LOG_CLIENTS", 32);
    let client: Http = support::host::http();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); ACCESS_LOG_VARIANTS.len()];
    for _ in 0..rounds {
        for (v, (variant, table)) in ACCESS_LOG_VARIANTS.iter().enumerate() {
            let host = start_host(&format!("{sections}\n[access_log]\n{table}\n"))?;
            let url = format!("{}/hello", host.url);
            hello_rate(&client, &url, clients, 1.0).await?; // warm-up
            let rate = hello_rate(&client, &url, clients, secs).await?;
            eprintln!("  .. {name}: hello, access log {variant}: {rate:.0} req/s");
            rates[v].push(rate);
            drop(host);
        }
    }
    let best: Vec<f64> = rates
        .iter()
        .map(|r| r.iter().cloned().fold(0.0, f64::max))
        .collect();
    let mut out = json!({ "clients": clients, "seconds_per_round": secs });
    for (v, (variant, _)) in ACCESS_LOG_VARIANTS.iter().enumerate() {
        let rounded: Vec<f64> = rates[v].iter().map(|r| r.round()).collect();
        out[format!("{variant}_req_per_s")] = json!(rounded);
        if v > 0 {
            let cost = (1.0 - best[v] / best[0]) * 100.0;
            eprintln!(
                "  .. {name}: access log {variant} costs {cost:.1}% ({:.0} vs {:.0} req/s)",
                best[v], best[0]
            );
            out[format!("{variant}_cost_percent")] = json!(round2(cost));
        }
    }
    Ok(out)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() -> anyhow::Result<()> {
    let backends: Vec<String> = env_or("LOGGER_BACKENDS", "embedded,real".to_string())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut runs = Vec::new();
    for backend in &backends {
        let run = match backend.as_str() {
            "embedded" => runtime.block_on(run("embedded", ""))?,
            "real" => {
                let prefix = rabbit::random_prefix("bench-logger");
                let sections = format!(
                    "{}{}",
                    backend_sections::redis("redis://127.0.0.1:6379", &prefix),
                    backend_sections::amqp(&rabbit::rabbitmq_url(), &prefix)
                );
                let run = runtime.block_on(run("real", &sections));
                rabbit::delete_queues_blocking(&prefix);
                redis_keys::delete_under("redis://127.0.0.1:6379", &prefix);
                run?
            }
            other => anyhow::bail!("unknown backend {other:?} (embedded, real)"),
        };
        runs.push(run);
    }
    eprintln!();
    eprintln!(
        "{:<9} {:>12} {:>12} {:>9} {:>9} {:>9} {:>12}",
        "backends", "POST rec/s", "queue rec/s", "q p50 ms", "q p99 ms", "q max ms", "access log %"
    );
    for r in &runs {
        eprintln!(
            "{:<9} {:>12} {:>12} {:>9} {:>9} {:>9} {:>12}",
            r["backends"].as_str().unwrap(),
            r["ingest_post"]["records_per_s"],
            r["ingest_queue"]["records_per_s"],
            r["query_3_filters"]["p50_ms"],
            r["query_3_filters"]["p99_ms"],
            r["query_3_filters"]["max_ms"],
            r["access_log"]["on_cost_percent"],
        );
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "cpus": cpus, "runs": runs }))?
    );
    Ok(())
}
