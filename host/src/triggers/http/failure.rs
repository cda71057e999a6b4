//! Turning a failed component call into the response its client gets.

use http::StatusCode;

use crate::responses::HostError;
use crate::triggers::failure::{self, FailureKind};

pub fn classify(component: &str, version: u64, error: &wasmtime::Error) -> HostError {
    let (kind, message) = failure::classify(component, version, error);
    let status = match kind {
        FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        FailureKind::MemoryLimit | FailureKind::Trap | FailureKind::Other => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    HostError::new(status, kind.code(), message).component(component)
}
