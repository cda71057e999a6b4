//! How capabilities see an instance's store, without knowing the runtime.
//!
//! The runtime's per-instance state implements this trait; capabilities'
//! linker wiring is generic over it. So the dependency points one way
//! (runtime → capabilities), and a capability can be tested against any
//! store type that has a resource table and its state.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;

use super::InstanceCaps;

pub trait CapabilityView: WasiView + WasiHttpView + Send + 'static {
    /// The instance's capability state.
    fn caps(&mut self) -> &mut InstanceCaps;

    /// The instance's resource table (shared with WASI, whose streams some
    /// capabilities hand out) and its capability state, borrowed together.
    fn table_and_caps(&mut self) -> (&mut ResourceTable, &mut InstanceCaps);
}
