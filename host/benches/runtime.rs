//! Runtime costs that the HTTP benchmark cannot separate out:
//! - per-request instantiation (fresh store + instance from `InstancePre`),
//! - redeploy time, cold (compile) and from the on-disk compile cache.
//!
//! Run with `cargo bench -p corral --bench runtime` (or `just bench`).
//! Prints one JSON object so scripts can collect it.

use std::time::{Duration, Instant};

use corral::config::Config;
use corral::runtime::{Registry, engine};

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
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let engine = engine::build(&config.runtime)?;
        let registry = Registry::start(&config, engine).await?;

        // Per-request instantiation: what every request pays before the
        // component's handler runs.
        let hello = registry.current("hello").unwrap();
        let mut samples = Vec::new();
        for i in 0..20_000 {
            let start = Instant::now();
            let mut store = hello.new_store(Instant::now() + Duration::from_secs(5));
            let proxy = hello.pre().instantiate_async(&mut store).await?;
            drop(proxy);
            drop(store);
            if i >= 1_000 {
                samples.push(start.elapsed());
            }
        }
        let instantiate = Stats::of(samples);

        // Redeploy: a new digest each time (a custom section appended), so
        // each one compiles; then the same bytes again, from the cache.
        let status = std::fs::read(component_artifacts::STATUS)?;
        let mut cold = Vec::new();
        let mut cached = Vec::new();
        for i in 0..5u8 {
            let wasm = with_custom_section(&status, &[i; 16]);
            let start = Instant::now();
            let info = registry.deploy("status", wasm.clone(), "bench".into()).await?;
            cold.push(start.elapsed());
            assert!(!info.from_cache);
            let start = Instant::now();
            let info = registry.deploy("status", wasm, "bench".into()).await?;
            cached.push(start.elapsed());
            assert!(info.from_cache);
        }
        let report = serde_json::json!({
            "instantiate_us": instantiate.json_us(),
            "redeploy_cold_ms": Stats::of(cold).json_ms(),
            "redeploy_cached_ms": Stats::of(cached).json_ms(),
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
        self.0[((self.0.len() - 1) as f64 * p) as usize]
    }
    fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
    fn json_us(&self) -> serde_json::Value {
        let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        serde_json::json!({"mean": us(self.mean()), "p50": us(self.pct(0.5)), "p99": us(self.pct(0.99)), "n": self.0.len()})
    }
    fn json_ms(&self) -> serde_json::Value {
        let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        serde_json::json!({"mean": ms(self.mean()), "min": ms(self.0[0]), "max": ms(self.pct(1.0)), "n": self.0.len()})
    }
}
