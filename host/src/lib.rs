//! corral: one native binary that hosts WebAssembly components as
//! sandboxed microservices.
//!
//! The library holds everything; `main.rs` only parses the command line.
//! Being a library lets benches and tests reach the runtime directly.
//!
//! - [`config`]: the TOML config with env overrides, validated up front.
//! - [`runtime`]: the wasmtime engine, compile cache, deployments and the
//!   registry that swaps them atomically.
//! - [`triggers`]: what calls components: HTTP requests, queue messages,
//!   timer ticks.
//! - [`bindings`]: the host side of the WIT contract in `wit/`.
//! - [`capabilities`]: what components may import, each behind a grant.
//! - [`access_log`]: one record per HTTP request, batched to the log queue.
//! - [`tokens`]: the host's HS256 bearer tokens (issue, verify, secret).
//! - [`admin`]: the token-protected API for redeploy/rollback/listing.
//! - [`cli`]: `corral up | check | redeploy | rollback | components`.

pub mod access_log;
pub mod admin;
pub mod bindings;
pub mod broker;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod platform;
pub mod responses;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod tokens;
pub mod triggers;
pub mod watch;
