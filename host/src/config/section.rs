//! The section toolkit: how a table of the config file becomes a typed,
//! checked value. Each capability, the broker and each trigger read their
//! own table with it; this module knows none of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything that can go wrong loading a configuration, each naming the
/// offending field so that an operator can fix it without reading our code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for environment variable {var}: {problem}")]
    Env { var: String, problem: String },
    #[error("invalid config: {field}: {problem}")]
    Invalid { field: String, problem: String },
}

/// A host-level config section (a capability backend): it takes its own
/// `CORRAL_*` overrides, resolves its paths and checks itself.
pub trait Section {
    fn apply_env(&mut self, _env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        Ok(())
    }
    /// Makes relative paths absolute; `state_dir` is already absolute.
    fn resolve_paths(&mut self, _state_dir: &Path) {}
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Parses an environment override, naming the variable on failure.
pub fn parse_env<T: std::str::FromStr>(var: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError::Env {
        var: var.to_owned(),
        problem: e.to_string(),
    })
}

/// Parses an environment override of an enum-valued setting with the same
/// spellings the file accepts (serde's), naming the variable on failure.
pub fn parse_env_enum<T: serde::de::DeserializeOwned>(
    var: &str,
    value: &str,
) -> Result<T, ConfigError> {
    use serde::de::value::{Error, StrDeserializer};
    T::deserialize(StrDeserializer::<Error>::new(value)).map_err(|e| ConfigError::Env {
        var: var.to_owned(),
        problem: e.to_string(),
    })
}

/// Makes `path` absolute under `dir` when it is relative.
pub fn resolve_under(path: &mut PathBuf, dir: &Path) {
    if path.is_relative() {
        *path = dir.join(&*path);
    }
}

pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}
