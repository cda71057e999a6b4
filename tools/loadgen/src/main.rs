//! A closed-loop HTTP/1.1 load generator for the loopback benchmarks.
//!
//! `connections` keep-alive connections each send one request at a time for
//! `duration`; every latency is recorded (no sampling), so percentiles are
//! exact. Prints one JSON object, so scripts can compare runs.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

#[derive(Parser)]
struct Args {
    /// Target URL (http only).
    url: String,
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Seconds to run, after the warm-up.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up (not measured).
    #[arg(short, long, default_value_t = 1.0)]
    warmup: f64,
    /// Client worker threads.
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
    /// Label put into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    failed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let uri: hyper::Uri = args.url.parse()?;
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("URL needs host:port"))?;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let uri = uri.clone();
        let authority = authority.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            'reconnect: while Instant::now() < end {
                let Ok(stream) = tokio::net::TcpStream::connect(authority.as_str()).await else {
                    tally.failed += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
                else {
                    tally.failed += 1;
                    continue;
                };
                tokio::spawn(conn);
                while Instant::now() < end {
                    let request = hyper::Request::get(uri.clone())
                        .header("host", authority.as_str())
                        .body(Empty::<Bytes>::new())
                        .expect("valid request");
                    let sent = Instant::now();
                    let result = async {
                        sender.ready().await?;
                        let response = sender.send_request(request).await?;
                        let status = response.status();
                        response.into_body().collect().await?;
                        Ok::<_, hyper::Error>(status)
                    }
                    .await;
                    let done = Instant::now();
                    if sent < measure_from {
                        if result.is_err() {
                            continue 'reconnect;
                        }
                        continue;
                    }
                    match result {
                        Ok(status) if status.is_success() => {
                            tally.ok += 1;
                            tally
                                .latencies_us
                                .push((done - sent).as_micros().min(u32::MAX as u128) as u32);
                        }
                        Ok(_) => tally.failed += 1,
                        Err(_) => {
                            tally.failed += 1;
                            continue 'reconnect;
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.ok += t.ok;
        all.failed += t.failed;
        all.latencies_us.extend(t.latencies_us);
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((all.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        all.latencies_us[i] as f64 / 1000.0
    };
    let report = serde_json::json!({
        "label": args.label,
        "url": args.url,
        "connections": args.connections,
        "seconds": args.duration,
        "requests_ok": all.ok,
        "requests_failed": all.failed,
        "rps": (all.ok as f64 / args.duration).round(),
        "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
    });
    println!("{report}");
    Ok(())
}
