//! Helpers of the benches that stay out of the `test-support` crate, one
//! module per file, included by each bench with `mod support;`:
//!
//! - `in_process` calls a component through corral's own types
//!   (`Deployment`), and `test-support` must not depend on `corral` (the
//!   unit tests of `corral` use it);
//! - `broker_floor` is part of the pipeline benchmark only;
//! - `host` runs the release binary and measures it over HTTP (the logger
//!   and services benches).
//!
//! Every bench compiles both and uses what it needs.

#![allow(dead_code)]

pub mod broker_floor;
pub mod host;
pub mod in_process;
