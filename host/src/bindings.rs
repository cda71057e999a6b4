//! Host bindings for the whole `corral:platform` contract (`wit/`), generated
//! once so that every capability and trigger shares the same types.
//!
//! Imports are async (backends do network I/O) and trappable (a host-side
//! invariant violation, such as a stale resource handle, ends the instance
//! instead of being reported as a domain error). Resources map to the Rust
//! types that capabilities keep in the instance's `ResourceTable`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "corral:platform/host",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi:keyvalue/store.bucket": crate::capabilities::keyvalue::Bucket,
        // Blobstore values hand out WASI streams: the same resources as
        // wasmtime-wasi's, living in the same table.
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:blobstore/container.container": crate::capabilities::blobstore::Container,
        "wasi:blobstore/container.stream-object-names": crate::capabilities::blobstore::ObjectNames,
        "wasi:blobstore/types.outgoing-value": crate::capabilities::blobstore::OutgoingValue,
        "wasi:blobstore/types.incoming-value": crate::capabilities::blobstore::IncomingValue,
    },
});

pub use exports::corral::platform::{queue_batch_handler, queue_handler, timer_handler};
