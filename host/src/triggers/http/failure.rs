//! Turning a failed component call into the response its client gets.
//!
//! Only the request that failed is affected: its instance is thrown away
//! with its store, the component's next request gets a fresh one.

use http::StatusCode;
use wasmtime::Trap;

use crate::responses::HostError;
use crate::runtime::{MemoryLimitExceeded, TimeLimitExceeded};

pub fn classify(component: &str, version: u64, error: &wasmtime::Error) -> HostError {
    let (status, code, message) = if let Some(t) = error.downcast_ref::<TimeLimitExceeded>() {
        (StatusCode::GATEWAY_TIMEOUT, "timeout", t.to_string())
    } else if let Some(m) = error.downcast_ref::<MemoryLimitExceeded>() {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "memory_limit_exceeded",
            m.to_string(),
        )
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "component_trap",
            format!("the component trapped: {trap}"),
        )
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "component_error",
            format!("{error:#}"),
        )
    };
    tracing::warn!(component, version, code, "request failed: {error:?}");
    HostError::new(status, code, message).component(component)
}
