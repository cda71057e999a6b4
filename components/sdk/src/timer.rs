//! The timer trigger's export (`corral:platform/timer-service`): a job run
//! on a schedule, one fresh instance per tick. Implement [`TimerHandler`]
//! and export it with [`timer_component!`](crate::timer_component).
//!
//! A tick's [`Error`] is logged by the host and the schedule goes on; `?`
//! turns the SDK's errors (and `serde_json`'s) into one, keeping their text.

trigger_bindings!(
    "corral:platform/timer-service",
    "corral_sdk::timer",
    "export_timer"
);

/// What a scheduled job implements. `scheduled_at_ms` is the tick's due
/// time (Unix ms).
pub trait TimerHandler {
    fn tick(scheduled_at_ms: u64) -> Result<(), Error>;
}

/// Why a tick failed, in words for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("JSON: {e}"))
    }
}

impl From<crate::kv::Error> for Error {
    fn from(e: crate::kv::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<crate::blob::Error> for Error {
    fn from(e: crate::blob::Error) -> Self {
        Self(e.0)
    }
}

impl From<crate::messaging::Error> for Error {
    fn from(e: crate::messaging::Error) -> Self {
        Self(format!("{}: {}", e.code(), e.detail()))
    }
}

impl From<crate::config::Error> for Error {
    fn from(e: crate::config::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<crate::client::ClientError> for Error {
    fn from(e: crate::client::ClientError) -> Self {
        Self(e.to_string())
    }
}

/// Runs `H` for one tick. Used by [`timer_component!`](crate::timer_component).
#[doc(hidden)]
pub fn run<H: TimerHandler>(scheduled_at_ms: u64) -> Result<(), String> {
    H::tick(scheduled_at_ms).map_err(|error| error.0)
}
