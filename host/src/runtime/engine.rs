//! The one wasmtime [`Engine`] of the process and the clock that bounds
//! every request.
//!
//! The engine uses the pooling allocator, so that a fresh instance per request
//! costs microseconds (slots are reserved once; copy-on-write memory images
//! make data segments free), and epoch interruption, the cheap way to stop a
//! guest that never yields (fuel costs 2-3x more per instruction).

use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::RuntimeConfig;

/// How often the epoch advances. A running guest yields back to tokio at
/// every tick, so this bounds how long a busy guest can hold a worker thread
/// and how late a timeout can fire.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Builds the engine and starts the thread that advances its epoch.
pub fn build(runtime: &RuntimeConfig) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(runtime)));
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

fn pooling(runtime: &RuntimeConfig) -> PoolingAllocationConfig {
    let instances = runtime.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // A wasip2 component is a handful of core instances (the program plus
        // adapter shims); leave room for bigger ones.
        .max_core_instances_per_component(32)
        .total_core_instances(instances.saturating_mul(8))
        .max_memories_per_component(4)
        .total_memories(instances.saturating_mul(2))
        .max_tables_per_component(16)
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size((runtime.max_memory_mb * 1024 * 1024) as usize)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .table_keep_resident(64 * 1024);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        // Linux 6.7+: on release, the PAGEMAP_SCAN ioctl finds the pages the
        // instance actually wrote and only those are reset in place (memset,
        // or a copy from the module's memory image), so a small guest's slot
        // goes back to the pool with no madvise and the next request takes
        // no page faults. Without this, every request paid a 1 MiB
        // madvise(MADV_DONTNEED) with its TLB flush, plus a page fault on
        // every stack/heap page it touched again: about half of corral's
        // CPU per request for `hello`. The limit bounds what a slot keeps
        // resident: an instance that dirtied more than this has the rest
        // decommitted as before.
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_WITH_PAGEMAP);
    } else {
        // Without the scan, keep-resident memory is reset with a memset of
        // the whole prefix whether it was touched or not, so keep it small:
        // cheaper than madvise + page faults for small guests.
        pool.linear_memory_keep_resident(64 * 1024);
    }
    pool
}

/// How many bytes of written linear memory a released pool slot may keep
/// resident when `PAGEMAP_SCAN` is available (see [`pooling`]). Memory cost:
/// at most this much per warm slot, and only what instances really wrote.
const KEEP_RESIDENT_WITH_PAGEMAP: usize = 2 << 20;

/// The epoch only needs to move forward; the thread holds a weak engine
/// reference so it ends when the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
