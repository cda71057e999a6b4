//! `[keyvalue]`: which store backs the `keyvalue` capability.
//!
//! ```toml
//! [keyvalue]
//! backend = "redis"                  # or "embedded" (the default)
//! url = "redis://127.0.0.1:6379"
//! key_prefix = "corral:"             # every key is <prefix><bucket>:<key>
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, Section, invalid, parse_env_enum, resolve_under};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A persistent file in the state directory (redb); no server needed.
    #[default]
    Embedded,
    Redis,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyValueSettings {
    pub backend: Backend,
    /// Redis URL, for `backend = "redis"`.
    pub url: String,
    /// Prefix of every Redis key (`<prefix><bucket>:<key>`), so that several
    /// hosts or test runs can share one Redis without seeing each other.
    pub key_prefix: String,
    /// The embedded store's file, relative to `runtime.state_dir`.
    pub path: PathBuf,
    /// How long one operation may take before the component gets an error.
    pub timeout_ms: u64,
}

impl std::fmt::Debug for KeyValueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValueSettings")
            .field("backend", &self.backend)
            .field("url", &crate::config::redact::url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("path", &self.path)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl Default for KeyValueSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "corral:".into(),
            path: PathBuf::from("keyvalue.redb"),
            timeout_ms: 5_000,
        }
    }
}

impl Section for KeyValueSettings {
    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_KEYVALUE_BACKEND" => self.backend = parse_env_enum(var, value)?,
                "CORRAL_REDIS_URL" => self.url = value.clone(),
                "CORRAL_KEYVALUE_PREFIX" => self.key_prefix = value.clone(),
                _ => {}
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, state_dir: &Path) {
        resolve_under(&mut self.path, state_dir);
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == Backend::Redis
            && !(self.url.starts_with("redis://") || self.url.starts_with("rediss://"))
        {
            return Err(invalid(
                "keyvalue.url",
                "must start with redis:// or rediss://",
            ));
        }
        if self.timeout_ms == 0 {
            return Err(invalid("keyvalue.timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_url_password() {
        let settings = KeyValueSettings {
            url: "redis://:redis-secret@127.0.0.1:6379/0".into(),
            ..KeyValueSettings::default()
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("redis-secret"), "{printed}");
        assert!(
            printed.contains("redis://:***@127.0.0.1:6379/0"),
            "{printed}"
        );
    }
}
