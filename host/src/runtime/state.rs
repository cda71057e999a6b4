//! What lives in the wasmtime `Store` of one instance (= one request).

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::outbound_http::OutboundHttp;
use crate::capabilities::{CapabilityView, InstanceCaps, granted};

pub struct InstanceState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub caps: InstanceCaps,
}

impl InstanceState {
    pub fn new(wasi: WasiCtx, memory_bytes: usize, caps: InstanceCaps) -> Self {
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            caps,
        }
    }
}

/// Raised (as a trap) when an instance tries to grow its memories past the
/// component's `memory_mb`, counted over all its linear memories together.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: growing to {desired} bytes in all, limit is {limit} bytes")]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}

/// Enforces the per-component memory limit. Growing past it traps instead of
/// returning -1: a memory bomb ends its own request at once, with an error
/// that says why, instead of limping on through allocation-failure paths.
///
/// The limit holds for the instance as a whole. A component may have several
/// core memories (the pool allows 4), and wasmtime asks the limiter about
/// each one separately, with that memory's own sizes; checking `desired`
/// alone would let a component with four memories use four times its
/// `memory_mb`. So the limiter keeps the sum of what it granted: wasmtime
/// reports a new memory as a growth from 0, and every later growth by its
/// difference.
pub struct MemoryLimiter {
    max: usize,
    granted: usize,
}

impl MemoryLimiter {
    pub fn new(max: usize) -> Self {
        Self { max, granted: 0 }
    }

    /// Bytes of linear memory granted to the instance so far, all memories.
    pub fn granted(&self) -> usize {
        self.granted
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.granted.saturating_add(desired.saturating_sub(current));
        if total > self.max {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired: total,
                limit: self.max,
            }));
        }
        self.granted = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            // Every component has an outbound policy (deny-all without a
            // grant): wasi:http asks it for each outgoing request.
            hooks: granted::<OutboundHttp>(&mut self.caps),
        }
    }
}

impl CapabilityView for InstanceState {
    fn caps(&mut self) -> &mut InstanceCaps {
        &mut self.caps
    }

    fn table_and_caps(&mut self) -> (&mut ResourceTable, &mut InstanceCaps) {
        (&mut self.table, &mut self.caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn one_memory_grows_up_to_the_limit() {
        let mut limiter = MemoryLimiter::new(4 * MIB);
        assert!(limiter.memory_growing(0, MIB, None).unwrap());
        assert!(limiter.memory_growing(MIB, 4 * MIB, None).unwrap());
        let err = limiter.memory_growing(4 * MIB, 5 * MIB, None).unwrap_err();
        let exceeded = err.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!((exceeded.desired, exceeded.limit), (5 * MIB, 4 * MIB));
        assert_eq!(limiter.granted(), 4 * MIB);
    }

    #[test]
    fn the_limit_counts_every_memory_of_the_instance() {
        // Four memories of 1 MiB each fit a 4 MiB limit; a fifth byte range
        // anywhere does not, though each memory alone is far below it.
        let mut limiter = MemoryLimiter::new(4 * MIB);
        for _ in 0..4 {
            assert!(limiter.memory_growing(0, MIB, None).unwrap());
        }
        assert_eq!(limiter.granted(), 4 * MIB);
        assert!(limiter.memory_growing(MIB, 2 * MIB, None).is_err());
        assert!(limiter.memory_growing(0, 64 * 1024, None).is_err());
        assert_eq!(limiter.granted(), 4 * MIB);
    }
}
