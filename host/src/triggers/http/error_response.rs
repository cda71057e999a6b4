//! Turning a failed component call into the response its client gets.

use http::StatusCode;

use crate::responses::HostError;
use crate::triggers::failure::{self, FailureKind};

/// Classifies `error` (see [`failure::classify`]) and answers it: 504 for a
/// timeout, 500 for the rest, in the platform's JSON error shape.
pub fn error_response(component: &str, version: u64, error: &wasmtime::Error) -> HostError {
    let failure = failure::classify(component, version, error);
    let status = match failure.kind {
        FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        FailureKind::MemoryLimit | FailureKind::Trap | FailureKind::Other => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    HostError::new(status, failure.kind.code(), failure.message).component(component)
}
