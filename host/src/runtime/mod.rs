//! The wasm runtime: one engine, compiled components, their live versions,
//! and the per-instance store state.

pub mod compile;
pub mod deployment;
pub mod engine;
pub mod registry;
mod state;

pub use deployment::TimeLimitExceeded;
pub use registry::{ComponentInfo, DeploymentInfo, Registry, RegistryError};
pub use state::{InstanceState, MemoryLimitExceeded};
