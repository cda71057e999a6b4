//! Runtime costs that the HTTP benchmark cannot separate out:
//! - per-request instantiation (fresh store + instance from `InstancePre`),
//! - one whole request in-process: fresh instance, `wasi:http` handler call
//!   and the response body read back, with no sockets or HTTP parsing (what
//!   the HTTP trigger adds on top of a plain hyper server, minus routing),
//! - redeploy time, cold (compile) and from the on-disk compile cache.
//!
//! Run with `cargo bench -p corral --bench runtime` (or `just bench`).
//! Prints one JSON object so scripts can collect it.

use std::time::{Duration, Instant};

mod support;

use support::in_process;

use corral::config::Config;
use corral::platform::Platform;
use corral::runtime::engine;

const WARMUP: usize = 1_000;
const SAMPLES: usize = 20_000;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("corral.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
[runtime]
state_dir = "state"
max_instances = 100

[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]

[[component]]
name = "status"
wasm = "{status}"
routes = ["/status"]
"#,
            hello = component_artifacts::HELLO,
            status = component_artifacts::STATUS,
        ),
    )?;
    let config = Config::load(&config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let engine = engine::build(&config.runtime)?;
        let registry = Platform::start(&config, engine).await?.registry;
        let hello = registry.current("hello").unwrap();
        let deadline = || Instant::now() + Duration::from_secs(5);

        // Per-request instantiation: what every request pays before the
        // component's handler runs.
        let mut samples = Vec::with_capacity(SAMPLES);
        for i in 0..WARMUP + SAMPLES {
            let start = Instant::now();
            let mut store = hello.new_store(deadline());
            // `Instance` is a handle into the store: dropping the store
            // frees the instance (and returns its pool slot).
            let _instance = hello.pre().instantiate_async(&mut store).await?;
            drop(store);
            if i >= WARMUP {
                samples.push(start.elapsed());
            }
        }
        let instantiate = Stats::of(samples);

        // One whole request in-process, the way the HTTP trigger runs it.
        let mut samples = Vec::with_capacity(SAMPLES);
        for i in 0..WARMUP + SAMPLES {
            let start = Instant::now();
            let (_, body) = in_process::get(&hello, "http://localhost/hello", deadline()).await?;
            anyhow::ensure!(&body[..] == b"Hello, world!\n", "unexpected body {body:?}");
            if i >= WARMUP {
                samples.push(start.elapsed());
            }
        }
        let request = Stats::of(samples);

        // Redeploy: a new digest each time (a custom section appended), so
        // each one compiles; then the same bytes again, from the cache.
        let status = std::fs::read(component_artifacts::STATUS)?;
        let mut cold = Vec::new();
        let mut cached = Vec::new();
        for i in 0..5u8 {
            let wasm = with_custom_section(&status, &[i; 16]);
            let start = Instant::now();
            let info = registry
                .deploy("status", wasm.clone(), "bench".into())
                .await?;
            cold.push(start.elapsed());
            assert!(!info.from_cache);
            let start = Instant::now();
            let info = registry.deploy("status", wasm, "bench".into()).await?;
            cached.push(start.elapsed());
            assert!(info.from_cache);
        }
        let report = serde_json::json!({
            "instantiate_us": instantiate.json_us(),
            "request_in_process_us": request.json_us(),
            "redeploy_cold_ms": Stats::of(cold).json_ms(),
            "redeploy_cached_ms": Stats::of(cached).json_ms(),
            "hello_wasm_bytes": std::fs::metadata(component_artifacts::HELLO)?.len(),
            "status_wasm_bytes": status.len(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        anyhow::Ok(())
    })
}

/// Appends a custom section: same code, different bytes and digest.
fn with_custom_section(wasm: &[u8], payload: &[u8]) -> Vec<u8> {
    let name = b"corral-bench";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.push(section.len() as u8); // fits one LEB128 byte
    out.extend(section);
    out
}

struct Stats(Vec<Duration>);

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self(samples)
    }
    fn pct(&self, p: f64) -> Duration {
        self.0[((self.0.len() - 1) as f64 * p).round() as usize]
    }
    fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
    fn json_us(&self) -> serde_json::Value {
        let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        serde_json::json!({
            "mean": us(self.mean()),
            "p50": us(self.pct(0.5)),
            "p99": us(self.pct(0.99)),
            "max": us(self.pct(1.0)),
            "n": self.0.len(),
        })
    }
    fn json_ms(&self) -> serde_json::Value {
        let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        serde_json::json!({
            "mean": ms(self.mean()),
            "min": ms(self.0[0]),
            "max": ms(self.pct(1.0)),
            "n": self.0.len(),
        })
    }
}
