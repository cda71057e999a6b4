//! Guest-side helpers for corral components.
//!
//! A component is a `wasi:http/proxy` component (it runs unmodified under
//! `wasmtime serve` or Spin too) that may import corral's capabilities. This
//! crate removes the boilerplate: [`http_component!`] exports a plain
//! `fn(Request) -> Response`, [`log`] writes through `wasi:logging`, and
//! [`time`] formats timestamps.
//!
//! ```ignore
//! struct Hello;
//! impl corral_sdk::http::Handler for Hello {
//!     fn handle(_req: corral_sdk::http::Request) -> corral_sdk::http::Response {
//!         corral_sdk::http::Response::text(200, "hello")
//!     }
//! }
//! corral_sdk::http_component!(Hello);
//! ```

pub mod http;
pub mod log;
pub mod time;

pub use wasip2;

/// Bindings for corral's capability imports (see `wit/platform.wit`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "corral:platform/imports",
        generate_all,
    });
}
