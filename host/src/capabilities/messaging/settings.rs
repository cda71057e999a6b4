//! `[messaging]`: which broker backs the `messaging` capability and the
//! queue trigger.
//!
//! ```toml
//! [messaging]
//! backend = "amqp"                   # or "embedded" (the default)
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"
//! queue_prefix = ""                  # prepended to every queue name
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, Section, invalid, parse_env_enum, resolve_under};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A durable queue in the state directory; no broker needed.
    #[default]
    Embedded,
    /// RabbitMQ (AMQP 0-9-1).
    Amqp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    pub backend: Backend,
    /// AMQP URL, for `backend = "amqp"`.
    pub url: String,
    /// Prepended to every queue name the host declares, publishes to or
    /// consumes from, so that several hosts or test runs can share a broker.
    pub queue_prefix: String,
    /// The embedded queue's folder, relative to `runtime.state_dir`.
    pub path: PathBuf,
    /// How long a publish waits for the broker's confirm.
    pub confirm_timeout_ms: u64,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            queue_prefix: String::new(),
            path: PathBuf::from("queue"),
            confirm_timeout_ms: 10_000,
        }
    }
}

impl Section for BackendConfig {
    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_MESSAGING_BACKEND" => self.backend = parse_env_enum(var, value)?,
                "CORRAL_AMQP_URL" => self.url = value.clone(),
                "CORRAL_QUEUE_PREFIX" => self.queue_prefix = value.clone(),
                _ => {}
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, state_dir: &Path) {
        resolve_under(&mut self.path, state_dir);
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == Backend::Amqp
            && !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://"))
        {
            return Err(invalid(
                "messaging.url",
                "must start with amqp:// or amqps://",
            ));
        }
        if self.confirm_timeout_ms == 0 {
            return Err(invalid(
                "messaging.confirm_timeout_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
