//! Guest-side helpers for corral components.
//!
//! A component is a `wasi:http/proxy` component (it runs unmodified under
//! `wasmtime serve` or Spin too) that may import corral's capabilities. This
//! crate removes the boilerplate: [`http_component!`] exports a plain
//! `fn(Request) -> Result<Response, http::Error>` (an `Err` is answered as
//! the platform's JSON error, so `?` works on the SDK's errors), [`client`]
//! sends outbound requests, [`log`] writes through `wasi:logging`,
//! [`config`] reads `wasi:config`, [`kv`] stores keys in granted buckets,
//! [`blob`] stores objects through `wasi:blobstore`, [`messaging`] publishes
//! to queues, [`tokens`] issues and checks the host's bearer tokens, and
//! [`time`] formats timestamps. With the `timer` feature,
//! [`timer_component!`] exports a scheduled job; with the `queue` feature,
//! [`queue_component!`] exports a queue consumer (one message per instance)
//! and [`queue_batch_component!`] one that takes many messages per instance.
//!
//! The trigger handlers return `Result` too: a timer's error is logged by
//! the host, a queue handler's error becomes a disposition (retry, or
//! reject for a message that does not decode).
//!
//! ```ignore
//! use corral_sdk::http::{Error, Handler, Request, Response};
//!
//! struct Hello;
//! impl Handler for Hello {
//!     fn handle(request: Request) -> Result<Response, Error> {
//!         let name = request.required_query_param("name")?; // 400 `missing`
//!         Ok(Response::text(200, format!("hello, {name}")))
//!     }
//! }
//! corral_sdk::http_component!(Hello);
//! ```

pub mod audit;
pub mod blob;
pub mod client;
pub mod config;
pub mod http;
pub mod id;
pub mod kv;
pub mod log;
pub mod messaging;
pub mod multipart;
pub mod passwords;
pub mod time;
pub mod tokens;

pub use wasip2;

/// Bindings for corral's capability imports (see `wit/platform.wit`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "corral:platform/imports",
        // wasi:blobstore hands out wasi:io streams: use the `wasip2` crate's
        // types (same WASI version) so that its `Read`/`Write` impls apply.
        with: {
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
        },
        generate_all,
    });
}

/// Bindings for a trigger world (`timer-service`, `queue-service`): its
/// export is generated here, and every import is shared with [`bindings`],
/// so one type serves all worlds.
#[cfg(any(feature = "timer", feature = "queue"))]
macro_rules! trigger_bindings {
    ($world:tt, $module:tt, $export_macro:tt) => {
        wit_bindgen::generate!({
            path: "../../wit",
            world: $world,
            with: {
                "wasi:logging/logging@0.1.0-draft": crate::bindings::wasi::logging::logging,
                "wasi:config/store@0.2.0-rc.1": crate::bindings::wasi::config::store,
                "wasi:keyvalue/store@0.2.0-draft": crate::bindings::wasi::keyvalue::store,
                "wasi:keyvalue/atomics@0.2.0-draft": crate::bindings::wasi::keyvalue::atomics,
                "wasi:keyvalue/batch@0.2.0-draft": crate::bindings::wasi::keyvalue::batch,
                "corral:platform/keyvalue-ext@0.1.0": crate::bindings::corral::platform::keyvalue_ext,
                "corral:platform/keyvalue-index@0.1.0": crate::bindings::corral::platform::keyvalue_index,
                "corral:platform/messaging@0.1.0": crate::bindings::corral::platform::messaging,
                "corral:platform/tokens@0.1.0": crate::bindings::corral::platform::tokens,
                "wasi:blobstore/types@0.2.0-draft": crate::bindings::wasi::blobstore::types,
                "wasi:blobstore/container@0.2.0-draft": crate::bindings::wasi::blobstore::container,
                "wasi:blobstore/blobstore@0.2.0-draft": crate::bindings::wasi::blobstore::blobstore,
                "corral:platform/passwords@0.1.0": crate::bindings::corral::platform::passwords,
                "wasi:io/error@0.2.12": wasip2::io::error,
                "wasi:io/poll@0.2.12": wasip2::io::poll,
                "wasi:io/streams@0.2.12": wasip2::io::streams,
            },
            generate_all,
            pub_export_macro: true,
            default_bindings_module: $module,
            export_macro_name: $export_macro,
        });
    };
}

#[cfg(feature = "queue")]
pub mod queue;
#[cfg(feature = "queue")]
pub mod queue_batch;
#[cfg(feature = "timer")]
pub mod timer;

/// Exports `$handler` (implementing [`queue_batch::QueueBatchHandler`]) as
/// the component's `corral:platform/queue-batch-handler`.
#[cfg(feature = "queue")]
#[macro_export]
macro_rules! queue_batch_component {
    ($handler:ty) => {
        struct __CorralQueueBatchExport;
        impl $crate::queue_batch::exports::corral::platform::queue_batch_handler::Guest
            for __CorralQueueBatchExport
        {
            fn handle_batch(
                deliveries: ::std::vec::Vec<$crate::queue_batch::Delivery>,
            ) -> ::std::vec::Vec<$crate::queue_batch::Disposition> {
                $crate::queue_batch::run::<$handler>(deliveries)
            }
        }
        $crate::queue_batch::export_queue_batch!(
            __CorralQueueBatchExport with_types_in $crate::queue_batch
        );
    };
}

/// Exports `$handler` (implementing [`queue::QueueHandler`]) as the
/// component's `corral:platform/queue-handler`.
#[cfg(feature = "queue")]
#[macro_export]
macro_rules! queue_component {
    ($handler:ty) => {
        struct __CorralQueueExport;
        impl $crate::queue::exports::corral::platform::queue_handler::Guest
            for __CorralQueueExport
        {
            fn handle(delivery: $crate::queue::Delivery) -> $crate::queue::Disposition {
                $crate::queue::run::<$handler>(delivery)
            }
        }
        $crate::queue::export_queue!(__CorralQueueExport with_types_in $crate::queue);
    };
}

/// Exports `$handler` (implementing [`timer::TimerHandler`]) as the
/// component's `corral:platform/timer-handler`.
#[cfg(feature = "timer")]
#[macro_export]
macro_rules! timer_component {
    ($handler:ty) => {
        struct __CorralTimerExport;
        impl $crate::timer::exports::corral::platform::timer_handler::Guest
            for __CorralTimerExport
        {
            fn tick(
                scheduled_at_ms: u64,
            ) -> ::core::result::Result<(), ::std::string::String> {
                $crate::timer::run::<$handler>(scheduled_at_ms)
            }
        }
        $crate::timer::export_timer!(__CorralTimerExport with_types_in $crate::timer);
    };
}
