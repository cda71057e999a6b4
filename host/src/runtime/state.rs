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
            limiter: MemoryLimiter { max: memory_bytes },
            caps,
        }
    }
}

/// Raised (as a trap) when an instance tries to grow its memory past the
/// component's `memory_mb`.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: growing to {desired} bytes, limit is {limit} bytes")]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}

/// Enforces the per-component memory limit. Growing past it traps instead of
/// returning -1: a memory bomb ends its own request at once, with an error
/// that says why, instead of limping on through allocation-failure paths.
pub struct MemoryLimiter {
    max: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.max,
            }));
        }
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
