//! What went wrong in a failed component call, for any trigger.
//!
//! Only the call that failed is affected: its instance is thrown away with
//! its store, and the component's next call gets a fresh one.

use wasmtime::Trap;

use crate::runtime::{MemoryLimitExceeded, TimeLimitExceeded};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The call ran past the component's `timeout_ms`.
    Timeout,
    /// The instance tried to grow past the component's `memory_mb`.
    MemoryLimit,
    /// The guest trapped (panic, unreachable, out-of-bounds...).
    Trap,
    /// Anything else (a host-side error surfaced through the call).
    Other,
}

impl FailureKind {
    /// The stable, machine-readable code used in error bodies and logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::MemoryLimit => "memory_limit_exceeded",
            Self::Trap => "component_trap",
            Self::Other => "component_error",
        }
    }
}

/// A failed call, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// What went wrong, for the caller (an error body, a dead-letter reason).
    pub message: String,
}

/// Classifies `error` and logs it against the component and version.
pub fn classify(component: &str, version: u64, error: &wasmtime::Error) -> Failure {
    let (kind, message) = if let Some(t) = error.downcast_ref::<TimeLimitExceeded>() {
        (FailureKind::Timeout, t.to_string())
    } else if let Some(m) = error.downcast_ref::<MemoryLimitExceeded>() {
        (FailureKind::MemoryLimit, m.to_string())
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        (FailureKind::Trap, format!("the component trapped: {trap}"))
    } else {
        (FailureKind::Other, format!("{error:#}"))
    };
    tracing::warn!(
        component,
        version,
        code = kind.code(),
        "call failed: {error:?}"
    );
    Failure { kind, message }
}
