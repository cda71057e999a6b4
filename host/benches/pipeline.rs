//! Seed 001's transaction pipeline end to end, on the release binary:
//! records/s from the start of the upload (`POST /api/transactions` with a
//! JSON file of `PIPELINE_RECORDS` generated records, 10,000 by default) to
//! the moment `GET /api/transactions/{batch}` reports nothing pending.
//!
//! Backends (`PIPELINE_BACKENDS`, default "embedded,real,rabbitmq-alone"):
//! - `embedded`: the defaults (redb key-value, embedded queue, files);
//! - `real`: Redis and RabbitMQ on this machine and an S3 server on
//!   loopback (`PIPELINE_S3`: `s3s-fs` by default, installed with cargo if
//!   missing; or `moto`, the tests' server), under a random prefix that is
//!   deleted afterwards;
//! - `rabbitmq-alone`: not corral at all, the ceiling the broker sets: the
//!   same messages published and consumed with plain lapin (see
//!   `support/broker_floor.rs`).
//!
//! The host runs `transactions` and `worker` with the shipped `corral.toml`
//! settings (worker: prefetch 400, concurrency 2, batch_size 200;
//! `PIPELINE_PREFETCH`, `PIPELINE_CONCURRENCY`, `PIPELINE_BATCH` to try
//! others). The status is polled every
//! `PIPELINE_POLL_MS` (250); the figure is therefore late by at most one
//! poll. Besides the rate: the upload's own time, and the CPU seconds used
//! by corral and by each backend process during the run, which shows where
//! the time goes.
//!
//! Run with `cargo bench -p corral --bench pipeline` (or
//! `scripts/bench.sh --pipeline`). Prints a table on stderr and one JSON
//! object on stdout.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::broker_floor;
use support::host::{Host, cpu_seconds};
use test_support::{backend_sections, moto, rabbit, records, redis_keys, s3s_fs};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let records: usize = env_or("PIPELINE_RECORDS", 10_000);
    let poll = Duration::from_millis(env_or("PIPELINE_POLL_MS", 250));
    let timeout = Duration::from_secs(env_or("PIPELINE_TIMEOUT_S", 600));
    let backends: Vec<String> = env_or(
        "PIPELINE_BACKENDS",
        "embedded,real,rabbitmq-alone".to_string(),
    )
    .split(',')
    .map(|s| s.trim().to_owned())
    .filter(|s| !s.is_empty())
    .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let file = records::generated(records);
    let mut runs = Vec::new();
    for backend in &backends {
        let run = match backend.as_str() {
            "embedded" => runtime.block_on(run_pipeline(
                "embedded", "", None, &file, records, poll, timeout,
            ))?,
            "real" => {
                let prefix = rabbit::random_prefix("bench-pipeline");
                let s3 = S3Server::start(&env_or("PIPELINE_S3", "s3s-fs".to_string()))?;
                let sections = real_sections(&prefix, &s3);
                let run = runtime.block_on(run_pipeline(
                    "real",
                    &sections,
                    Some(s3.pid()),
                    &file,
                    records,
                    poll,
                    timeout,
                ));
                drop(s3);
                rabbit::delete_queues_blocking(&prefix);
                redis_keys::delete_under("redis://127.0.0.1:6379", &prefix);
                run?
            }
            "rabbitmq-alone" => {
                let queue = format!("{}floor", rabbit::random_prefix("bench-pipeline"));
                let floor = runtime.block_on(broker_floor::measure(
                    &rabbit::rabbitmq_url(),
                    &queue,
                    &file,
                ))?;
                let mut run = timings(floor.messages, floor.total, floor.published);
                run.insert("backends".into(), json!("rabbitmq-alone"));
                run.insert("cpu_seconds".into(), json!({}));
                Value::Object(run)
            }
            other => anyhow::bail!("unknown backend {other:?} (embedded, real, rabbitmq-alone)"),
        };
        runs.push(run);
    }
    eprintln!();
    eprintln!(
        "pipeline: {records} records, upload start -> nothing pending (status polled every {} ms)",
        poll.as_millis()
    );
    eprintln!(
        "{:<10} {:>9} {:>9} {:>9} {:>10}  cpu seconds during the run",
        "backends", "records/s", "total_s", "upload_s", "after_s"
    );
    for r in &runs {
        eprintln!(
            "{:<10} {:>9} {:>9} {:>9} {:>10}  {}",
            r["backends"].as_str().unwrap(),
            r["records_per_s"],
            r["total_s"],
            r["upload_s"],
            r["after_upload_s"],
            r["cpu_seconds"]
        );
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "cpus": cpus,
            "records": records,
            "poll_ms": poll.as_millis() as u64,
            "file_bytes": file.len(),
            "runs": runs,
        }))?
    );
    Ok(())
}

/// The S3 server of the `real` run: `s3s-fs` (default; Rust, what a
/// single-node S3 costs) or `moto` (Python; what the tests use).
enum S3Server {
    S3sFs(s3s_fs::S3sFs),
    Moto(moto::Moto),
}

impl S3Server {
    fn start(kind: &str) -> anyhow::Result<Self> {
        match kind {
            "s3s-fs" => Ok(Self::S3sFs(s3s_fs::S3sFs::start()?)),
            "moto" => Ok(Self::Moto(moto::Moto::start())),
            other => anyhow::bail!("PIPELINE_S3={other:?}: s3s-fs or moto"),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Self::S3sFs(s) => s.pid(),
            Self::Moto(m) => s3_pid(m).unwrap_or(0),
        }
    }
}

/// Redis, RabbitMQ and `s3` as the host's backends, under `prefix`.
fn real_sections(prefix: &str, s3: &S3Server) -> String {
    let s3 = match s3 {
        S3Server::S3sFs(s) => backend_sections::S3 {
            endpoint: &s.endpoint,
            bucket: s3s_fs::BUCKET,
            access_key_id: s3s_fs::ACCESS_KEY,
            secret_access_key: s3s_fs::SECRET_KEY,
        },
        S3Server::Moto(m) => backend_sections::S3 {
            endpoint: &m.endpoint,
            bucket: moto::BUCKET,
            access_key_id: "test",
            secret_access_key: "test",
        },
    };
    format!(
        "{}{}{}",
        backend_sections::redis("redis://127.0.0.1:6379", prefix),
        backend_sections::amqp("amqp://guest:guest@127.0.0.1:5672/%2f", prefix),
        backend_sections::s3(&s3, prefix)
    )
}

/// The pid of the process listening on moto's port (moto may run as
/// `python3 -m moto.server` or through a shim).
fn s3_pid(s3: &moto::Moto) -> Option<u32> {
    let port: u16 = s3.endpoint.rsplit(':').next()?.parse().ok()?;
    let out = Command::new("ss")
        .args(["-Hltnp", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("pid=")? + 4;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Pids of running processes whose command name is `comm` (read only, to
/// report their CPU use).
fn pids_named(comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// The pipeline's components on the backends of `sections`, logging at
/// `info` (the upload's breakdown is read from the output).
fn start_host(sections: &str) -> anyhow::Result<Host> {
    Host::start(
        &format!(
            r#"
[runtime.default_limits]
memory_mb = 128
timeout_ms = 30000

{sections}


[[component]]
name = "transactions"
wasm = "{transactions}"
routes = ["/", "/api/transactions", "/api/clients"]
limits = {{ memory_mb = 128, timeout_ms = 60000 }}
config = {{ max_records = "10000" }}
grants.keyvalue = {{ buckets = ["transactions"] }}
grants.messaging = {{ publish = ["transactions", "logs"] }}
grants.blobstore = {{ containers = ["transactions"] }}
grants.logging = {{ file = "logs/transactions/app.log" }}

[[component]]
name = "worker"
wasm = "{worker}"
queue = {{ name = "transactions", prefetch = {prefetch}, concurrency = {concurrency}, batch_size = {batch}, max_attempts = 5 }}
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.messaging = {{ publish = ["logs"] }}
grants.keyvalue = {{ buckets = ["transactions"] }}
grants.blobstore = {{ containers = ["transactions"] }}
grants.logging = {{ file = "logs/worker/app.log" }}
"#,
            transactions = component_artifacts::TRANSACTIONS,
            prefetch = env_or("PIPELINE_PREFETCH", 400u32),
            concurrency = env_or("PIPELINE_CONCURRENCY", 2u32),
            batch = env_or("PIPELINE_BATCH", 200u32),
            worker = component_artifacts::WORKER,
        ),
        &[("CORRAL_LOG", "info")],
    )
}

async fn run_pipeline(
    name: &str,
    sections: &str,
    s3_pid: Option<u32>,
    file: &[u8],
    records: usize,
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let host = start_host(sections)?;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let send = async |request: http::Request<Full<Bytes>>| -> anyhow::Result<(u16, Bytes)> {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    };
    let mut watched: Vec<(String, u32)> = vec![("corral".into(), host.pid())];
    if name == "real" {
        watched.extend(
            pids_named("redis-server")
                .into_iter()
                .map(|p| ("redis".into(), p)),
        );
        watched.extend(
            pids_named("beam.smp")
                .into_iter()
                .map(|p| ("rabbitmq".into(), p)),
        );
        watched.extend(s3_pid.filter(|p| *p != 0).map(|p| ("s3".into(), p)));
    }
    let cpu_before: Vec<f64> = watched.iter().map(|(_, p)| cpu_seconds(*p)).collect();

    let started = Instant::now();
    let (status, body) = send(
        http::Request::post(format!("{}/api/transactions", host.url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::copy_from_slice(file)))?,
    )
    .await?;
    let upload = started.elapsed();
    anyhow::ensure!(
        status == 202,
        "upload answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let accepted: Value = serde_json::from_slice(&body)?;
    let batch = accepted["batch"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(accepted["records"] == records, "{accepted}");
    let mut polls = 0;
    let last = loop {
        let (status, body) = send(
            http::Request::get(format!(
                "{}/api/transactions/{batch}?records=false",
                host.url
            ))
            .body(Full::default())?,
        )
        .await?;
        polls += 1;
        anyhow::ensure!(status == 200, "status answered {status}");
        let state: Value = serde_json::from_slice(&body)?;
        if state["pending"] == 0 {
            break state;
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "not processed within {timeout:?}: {} of {records} processed",
            state["processed"]
        );
        tokio::time::sleep(poll).await;
    };
    let total = started.elapsed();
    // The upload's own breakdown, as the transactions component logged it.
    let out = host.output();
    if let Some(line) = out.lines().find(|l| l.contains("queued (")) {
        let at = line.find("records=").unwrap_or(0);
        eprintln!("  .. upload steps: {}", &line[at..]);
    }
    let cpu: serde_json::Map<String, Value> = watched
        .iter()
        .zip(&cpu_before)
        .map(|((what, pid), before)| {
            let used = ((cpu_seconds(*pid) - before) * 100.0).round() / 100.0;
            (what.clone(), json!(used))
        })
        .fold(serde_json::Map::new(), |mut map, (k, v)| {
            // Several processes of one kind add up.
            let sum = map.get(&k).and_then(Value::as_f64).unwrap_or(0.0) + v.as_f64().unwrap();
            map.insert(k, json!((sum * 100.0).round() / 100.0));
            map
        });
    drop(host);
    anyhow::ensure!(last["processed"] == records, "{}", last["processed"]);
    eprintln!(
        "  .. pipeline {name}: {records} records in {:.2} s ({:.0} records/s; upload {:.2} s)",
        total.as_secs_f64(),
        records as f64 / total.as_secs_f64(),
        upload.as_secs_f64()
    );
    let mut run = timings(records, total, upload);
    run.insert("backends".into(), json!(name));
    run.insert("processed".into(), last["processed"].clone());
    run.insert("flagged".into(), last["flagged"].clone());
    run.insert("status_polls".into(), json!(polls));
    run.insert("cpu_seconds".into(), Value::Object(cpu));
    Ok(Value::Object(run))
}

/// What every run reports: the rate, the whole time, the upload's time
/// (for `rabbitmq-alone`: until the last publish was confirmed) and what
/// came after it.
fn timings(records: usize, total: Duration, upload: Duration) -> serde_json::Map<String, Value> {
    let round3 = |d: Duration| json!((d.as_secs_f64() * 1000.0).round() / 1000.0);
    let mut run = serde_json::Map::new();
    run.insert("records".into(), json!(records));
    run.insert(
        "records_per_s".into(),
        json!((records as f64 / total.as_secs_f64()).round() as u64),
    );
    run.insert("total_s".into(), round3(total));
    run.insert("upload_s".into(), round3(upload));
    run.insert(
        "after_upload_s".into(),
        round3(total.saturating_sub(upload)),
    );
    run
}
