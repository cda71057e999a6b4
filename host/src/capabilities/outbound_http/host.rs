//! `wasi:http/outgoing-handler`, wasmtime-wasi-http's own implementation:
//! the policy acts through the store's `WasiHttpHooks` (the runtime hands
//! this capability's per-instance state to wasi:http as its hooks).

use wasmtime::component::Linker;
use wasmtime_wasi_http::WasiHttp;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;

use crate::capabilities::CapabilityView;

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    outgoing_handler::add_to_linker::<_, WasiHttp>(linker, T::http)?;
    Ok(())
}
