//! `queue = { ... }` of a component: which queue the queue trigger
//! consumes for it, and how.
//!
//! ```toml
//! [[component]]
//! name = "worker"
//! wasm = "worker.wasm"
//! queue = { name = "transactions", concurrency = 1, max_attempts = 5 }
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The queue to consume (without the host's `queue_prefix`).
    pub name: String,
    /// How many messages the broker hands out before acknowledgements.
    #[serde(default = "defaults::prefetch")]
    pub prefetch: u16,
    /// How many messages are handled at once.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: u32,
    /// Deliveries before a message goes to the dead-letter queue.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// First retry delay when the handler traps or times out; doubles per
    /// attempt up to `max_retry_delay_ms`.
    #[serde(default = "defaults::retry_delay_ms")]
    pub retry_delay_ms: u64,
    #[serde(default = "defaults::max_retry_delay_ms")]
    pub max_retry_delay_ms: u64,
    /// Where dead messages go; defaults to `<name>.dead`.
    pub dead_letter: Option<String>,
    /// Most messages per call of a `queue-batch-handler` component.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: u32,
    /// How long a batch waits for more messages once it has its first.
    #[serde(default = "defaults::batch_wait_ms")]
    pub batch_wait_ms: u64,
    /// Longest pause of the queue while a handler reports a backend
    /// unavailable (pauses double up to this; see `pause.rs`).
    #[serde(default = "defaults::max_pause_ms")]
    pub max_pause_ms: u64,
}

mod defaults {
    pub fn prefetch() -> u16 {
        32
    }
    pub fn concurrency() -> u32 {
        4
    }
    pub fn max_attempts() -> u32 {
        5
    }
    pub fn retry_delay_ms() -> u64 {
        1_000
    }
    pub fn max_retry_delay_ms() -> u64 {
        60_000
    }
    pub fn batch_size() -> u32 {
        100
    }
    pub fn batch_wait_ms() -> u64 {
        5
    }
    pub fn max_pause_ms() -> u64 {
        300_000
    }
}

/// The most messages one batch call may carry.
pub const MAX_BATCH_SIZE: u32 = 1_000;
/// The longest a batch may wait for more messages.
pub const MAX_BATCH_WAIT_MS: u64 = 10_000;

/// Why a `queue` table is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueConfigError {
    #[error("name must not be empty")]
    EmptyName,
    #[error("prefetch, concurrency and max_attempts must be at least 1")]
    ZeroCount,
    #[error("batch_size must be between 1 and {MAX_BATCH_SIZE}, not {0}")]
    BatchSize(u32),
    #[error("batch_wait_ms must be at most {MAX_BATCH_WAIT_MS}, not {0}")]
    BatchWait(u64),
}

impl QueueConfig {
    pub fn validate(&self) -> Result<(), QueueConfigError> {
        if self.name.is_empty() {
            return Err(QueueConfigError::EmptyName);
        }
        if self.prefetch == 0 || self.concurrency == 0 || self.max_attempts == 0 {
            return Err(QueueConfigError::ZeroCount);
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(QueueConfigError::BatchSize(self.batch_size));
        }
        if self.batch_wait_ms > MAX_BATCH_WAIT_MS {
            return Err(QueueConfigError::BatchWait(self.batch_wait_ms));
        }
        Ok(())
    }

    pub fn dead_letter_queue(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}.dead", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> QueueConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn batch_settings_have_defaults_and_bounds() {
        let config = parse("name = \"q\"");
        assert_eq!((config.batch_size, config.batch_wait_ms), (100, 5));
        assert_eq!(config.validate(), Ok(()));
        for (toml, problem) in [
            (
                "name = \"q\"\nbatch_size = 0",
                "batch_size must be between 1 and 1000, not 0",
            ),
            (
                "name = \"q\"\nbatch_size = 1001",
                "batch_size must be between 1 and 1000, not 1001",
            ),
            (
                "name = \"q\"\nbatch_wait_ms = 10001",
                "batch_wait_ms must be at most 10000, not 10001",
            ),
        ] {
            assert_eq!(parse(toml).validate().unwrap_err().to_string(), problem);
        }
    }
}
