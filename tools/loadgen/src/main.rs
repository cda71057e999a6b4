//! A closed-loop HTTP/1.1 load generator for the loopback benchmarks.
//!
//! `connections` keep-alive connections each send one request at a time
//! (fixed concurrency) for `duration` seconds after a warm-up, or until
//! `max-requests` measured requests have been sent, whichever comes first.
//! Every latency is recorded (no sampling), so percentiles are exact.
//!
//! Bounded: each request has a timeout (counted as an error, the connection
//! is replaced), and the whole run is cut off `timeout` seconds after the
//! measurement window closes, whatever the server does.
//!
//! Prints one JSON object, so scripts can compare runs:
//! `rps` (2xx responses per second of the measured window), `latency_ms`
//! (`p50`, `p90`, `p99`, `max`, `mean`, of 2xx responses), `non_2xx`
//! (responses with another status), `errors` (connect/IO failures and
//! timeouts) and `requests_failed` (their sum).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

#[derive(Parser)]
#[command(about = "Closed-loop HTTP/1.1 load generator; prints one JSON report")]
struct Args {
    /// Target URL (http only).
    url: String,
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Seconds to measure, after the warm-up.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up (sent but not measured).
    #[arg(short, long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop once this many measured requests were sent (0: no cap).
    #[arg(short = 'n', long, default_value_t = 0)]
    max_requests: u64,
    /// Seconds a single request may take before it counts as an error.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
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
    non_2xx: u64,
    errors: u64,
    /// When the last measured request completed.
    last_done: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        self.last_done = self.last_done.max(other.last_done);
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.duration > 0.0, "--duration must be positive");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let uri: hyper::Uri = args.url.parse()?;
    anyhow::ensure!(
        uri.scheme_str().unwrap_or("http") == "http",
        "only http:// URLs are supported"
    );
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("URL needs host:port"))?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    // Measured requests sent so far, for --max-requests.
    let sent_total = Arc::new(AtomicU64::new(0));
    let max_requests = args.max_requests;
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let uri = uri.clone();
        let authority = authority.clone();
        let sent_total = sent_total.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            // Claims one measured request slot; false once the cap is hit.
            let may_send = |now: Instant| {
                now < end
                    && (max_requests == 0
                        || now < measure_from
                        || sent_total.fetch_add(1, Ordering::Relaxed) < max_requests)
            };
            'reconnect: while Instant::now() < end {
                let connect = tokio::time::timeout(
                    timeout,
                    tokio::net::TcpStream::connect(authority.as_str()),
                );
                let Ok(Ok(stream)) = connect.await else {
                    if Instant::now() >= measure_from {
                        tally.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
                else {
                    tally.errors += 1;
                    continue;
                };
                let conn = tokio::spawn(conn);
                loop {
                    let sent = Instant::now();
                    if !may_send(sent) {
                        conn.abort();
                        break 'reconnect;
                    }
                    let request = hyper::Request::get(uri.clone())
                        .header("host", authority.as_str())
                        .body(Empty::<Bytes>::new())
                        .expect("valid request");
                    let result = tokio::time::timeout(timeout, async {
                        sender.ready().await?;
                        let response = sender.send_request(request).await?;
                        let status = response.status();
                        response.into_body().collect().await?;
                        Ok::<_, hyper::Error>(status)
                    })
                    .await;
                    let done = Instant::now();
                    let measured = sent >= measure_from;
                    match result {
                        Ok(Ok(status)) if measured => {
                            tally.last_done = Some(done);
                            if status.is_success() {
                                tally.ok += 1;
                                tally
                                    .latencies_us
                                    .push((done - sent).as_micros().min(u32::MAX as u128) as u32);
                            } else {
                                tally.non_2xx += 1;
                            }
                        }
                        Ok(Ok(_)) => {}
                        // An IO error or a timeout: this connection is done.
                        Ok(Err(_)) | Err(_) => {
                            if measured {
                                tally.errors += 1;
                                tally.last_done = Some(done);
                            }
                            conn.abort();
                            continue 'reconnect;
                        }
                    }
                    if sender.is_closed() {
                        // The server closed the connection (Connection: close).
                        continue 'reconnect;
                    }
                }
            }
            tally
        }));
    }
    // Hard bound: whatever the server does, the run ends `timeout` after
    // the measurement window.
    let hard_stop = tokio::time::Instant::from_std(end + timeout + Duration::from_secs(1));
    let mut all = Tally::default();
    let mut aborted = 0;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(hard_stop, task).await {
            Ok(tally) => all.merge(tally?),
            Err(_) => {
                abort.abort();
                aborted += 1;
            }
        }
    }
    all.latencies_us.sort_unstable();
    let lat = &all.latencies_us;
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i] as f64 / 1000.0
    };
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|&us| us as f64).sum::<f64>() / lat.len() as f64 / 1000.0
    };
    // The measured window: from the end of the warm-up to the last measured
    // completion (earlier than `end` when --max-requests stopped the run).
    let window = all
        .last_done
        .map(|last| last.min(end).saturating_duration_since(measure_from))
        .unwrap_or(Duration::from_secs_f64(args.duration))
        .as_secs_f64()
        .max(1e-3);
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let report = serde_json::json!({
        "label": args.label,
        "url": args.url,
        "connections": args.connections,
        "client_threads": args.threads.max(1),
        "seconds": round3(window),
        "requests_ok": all.ok,
        "non_2xx": all.non_2xx,
        "errors": all.errors,
        "requests_failed": all.non_2xx + all.errors,
        "connections_cut_off": aborted,
        "client_cpu_seconds": process_cpu_seconds().map(round3),
        "rps": (all.ok as f64 / window).round(),
        "latency_ms": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": pct(1.0),
            "mean": round3(mean),
        },
    });
    println!("{report}");
    Ok(())
}

/// CPU time (user + system) this process used so far, from `/proc/self/stat`
/// (Linux; `None` elsewhere). Tells whether the client itself was the
/// bottleneck.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) in parens.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 11 and 12
    // here; in clock ticks, 100 per second on Linux.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
