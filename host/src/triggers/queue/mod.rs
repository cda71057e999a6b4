//! The queue trigger: runs a component's `queue-handler.handle` for each
//! message of a queue. (Skeleton: the consumer is in progress.)

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
}

impl QueueConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("name must not be empty".into());
        }
        if self.prefetch == 0 || self.concurrency == 0 || self.max_attempts == 0 {
            return Err("prefetch, concurrency and max_attempts must be at least 1".into());
        }
        Ok(())
    }

    pub fn dead_letter_queue(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}.dead", self.name))
    }
}
