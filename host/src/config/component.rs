//! One `[[component]]` table: what to run, where it answers, under which
//! limits, with which grants. Trigger tables (`timer`, `queue`) and grants
//! stay raw TOML here: the triggers and capabilities that own them parse
//! them (this layer knows none of them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::section::{ConfigError, invalid};

/// Resource limits of one component; every request runs under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest linear memory an instance may grow to.
    pub memory_mb: u64,
    /// Longest a request may run (CPU or waiting) before it is cut off with 504.
    pub timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 128,
            timeout_ms: 30_000,
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mb * 1024 * 1024) as usize
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Limits as written in a component's table: any field left out falls back
/// to `runtime.default_limits`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialLimits {
    pub memory_mb: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Unique name; used in routes, logs, the admin API and the CLI.
    pub name: String,
    /// Path of the `.wasm` component, relative to the config file.
    pub wasm: PathBuf,
    /// Path prefixes this component answers (`/status` matches `/status`
    /// and `/status/...`; `/` matches whatever no other route claims).
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub(super) limits: PartialLimits,
    /// Environment variables visible to the component (WASI `environment`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Values the component reads through `wasi:config/store` (the
    /// `config` table of the file). A value may name environment variables
    /// as `${NAME}`, so secrets stay out of the file (and out of the
    /// component binary).
    #[serde(default, rename = "config")]
    pub values: BTreeMap<String, String>,
    /// Run the component's `timer-handler` on a schedule (parsed by the
    /// timer trigger).
    pub timer: Option<toml::Table>,
    /// Run the component's `queue-handler` for each message of a queue
    /// (parsed by the queue trigger).
    pub queue: Option<toml::Table>,
    /// Gateway auth: which of its requests need a bearer token (parsed by
    /// the HTTP trigger).
    pub auth: Option<toml::Table>,
    /// What the component may use beyond plain WASI, keyed by capability.
    /// Each capability parses its own table; an absent key means no grant.
    #[serde(default)]
    pub grants: toml::Table,
    /// Resolved limits, filled in by [`Config::validate`].
    #[serde(skip)]
    pub resolved_limits: Limits,
}

impl std::fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("name", &self.name)
            .field("wasm", &self.wasm)
            .field("routes", &self.routes)
            .field("limits", &self.limits)
            .field("env", &super::redact::Values(&self.env))
            .field("values", &super::redact::Values(&self.values))
            .field("timer", &self.timer)
            .field("queue", &self.queue)
            .field("grants", &self.grants)
            .field("resolved_limits", &self.resolved_limits)
            .finish()
    }
}

impl ComponentConfig {
    pub fn limits(&self) -> Limits {
        self.resolved_limits
    }

    /// Parses one of the component's raw tables (a trigger's, a grant) as
    /// `T`; errors name the component and the field.
    pub fn parse_table<T: DeserializeOwned>(
        &self,
        field: &str,
        table: &toml::Table,
    ) -> Result<T, ConfigError> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| self.invalid(field, e.message()))
    }

    /// An error about `field` of this component.
    pub fn invalid(&self, field: &str, problem: impl std::fmt::Display) -> ConfigError {
        invalid(
            format!("component {:?}: {field}", self.name),
            problem.to_string(),
        )
    }
}

/// Route prefixes compare without a trailing slash (`/api/` == `/api`).
pub fn normalize_route(route: &str) -> String {
    let trimmed = route.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
