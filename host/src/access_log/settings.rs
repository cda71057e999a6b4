//! `[access_log]`: whether the gateway records every request, where the
//! records go, how they are batched, and which requests are left out or
//! sampled (health checks).
//!
//! ```toml
//! [access_log]
//! enabled = true                 # CORRAL_ACCESS_LOG_ENABLED
//! queue = "logs"                 # CORRAL_ACCESS_LOG_QUEUE
//! buffer = 10000                 # CORRAL_ACCESS_LOG_BUFFER
//! batch_size = 200
//! flush_interval_ms = 200
//! skip = ["/status"]
//! sample = [ { path = "/hello", rate = 0.1 } ]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, Section, invalid, parse_env};

/// The table's name in the config file.
pub const SECTION: &str = "access_log";

/// Largest `batch_size`: the logger stores up to 1000 records per write.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogSettings {
    pub enabled: bool,
    /// The queue records are published to (logical name, without
    /// `messaging.queue_prefix`): the logger's.
    pub queue: String,
    /// Records waiting to be published, at most. Past it, new records are
    /// dropped and counted: memory stays bounded while the broker is down.
    pub buffer: usize,
    /// Records per published message (a JSON array).
    pub batch_size: usize,
    /// How long a started batch waits for more records before it goes.
    pub flush_interval_ms: u64,
    /// Longest pause between two publish attempts while the broker fails
    /// (the pause starts at 100 ms and doubles).
    pub max_retry_delay_ms: u64,
    /// On shutdown, how long the buffered records may take to go out.
    pub shutdown_flush_ms: u64,
    /// At most one warning about drops (and one about failed publishes) per
    /// this many milliseconds.
    pub warn_interval_ms: u64,
    /// Path patterns whose successful requests are not recorded.
    pub skip: Vec<String>,
    /// Path patterns whose successful requests are recorded at a rate.
    pub sample: Vec<SampleRule>,
}

/// `{ path = "/hello", rate = 0.1 }`: one successful request in ten.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRule {
    pub path: String,
    pub rate: f64,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            queue: "logs".into(),
            buffer: 10_000,
            batch_size: 200,
            flush_interval_ms: 200,
            max_retry_delay_ms: 5_000,
            shutdown_flush_ms: 5_000,
            warn_interval_ms: 10_000,
            skip: Vec::new(),
            sample: Vec::new(),
        }
    }
}

impl Section for AccessLogSettings {
    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_ACCESS_LOG_ENABLED" => self.enabled = parse_env(var, value)?,
                "CORRAL_ACCESS_LOG_QUEUE" => self.queue = value.clone(),
                "CORRAL_ACCESS_LOG_BUFFER" => self.buffer = parse_env(var, value)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let at = |field: &str| format!("{SECTION}.{field}");
        if self.queue.is_empty() {
            return Err(invalid(at("queue"), "must not be empty"));
        }
        if self.buffer == 0 || self.buffer > 10_000_000 {
            return Err(invalid(at("buffer"), "must be between 1 and 10000000"));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH {
            return Err(invalid(
                at("batch_size"),
                format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        for (field, value) in [
            ("flush_interval_ms", self.flush_interval_ms),
            ("max_retry_delay_ms", self.max_retry_delay_ms),
            ("shutdown_flush_ms", self.shutdown_flush_ms),
            ("warn_interval_ms", self.warn_interval_ms),
        ] {
            if value == 0 {
                return Err(invalid(at(field), "must be at least 1"));
            }
        }
        for (i, pattern) in self.skip.iter().enumerate() {
            check_pattern(pattern).map_err(|p| invalid(at(&format!("skip[{i}]")), p))?;
        }
        for (i, rule) in self.sample.iter().enumerate() {
            check_pattern(&rule.path).map_err(|p| invalid(at(&format!("sample[{i}].path")), p))?;
            if !(0.0..=1.0).contains(&rule.rate) {
                return Err(invalid(
                    at(&format!("sample[{i}].rate")),
                    format!("must be between 0 and 1, not {}", rule.rate),
                ));
            }
        }
        Ok(())
    }
}

/// A pattern starts with `/`; a `*` may only end it.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err(format!("{pattern:?} must start with '/'"));
    }
    if pattern.trim_end_matches('*').contains('*') || pattern.ends_with("**") {
        return Err(format!("{pattern:?}: '*' may only end a pattern, once"));
    }
    Ok(())
}

/// Whether `path` matches `pattern`: `/status` matches `/status` and
/// everything below it (`/status/x`, not `/statusx`), like a route;
/// `/health*` matches every path that starts with `/health`.
pub fn matches(pattern: &str, path: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        return path.starts_with(prefix);
    }
    let pattern = if pattern.len() > 1 {
        pattern.trim_end_matches('/')
    } else {
        pattern
    };
    pattern == "/"
        || path
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<AccessLogSettings, ConfigError> {
        Config::for_tests(&format!("[access_log]\n{text}"), env)?.section(SECTION)
    }

    #[test]
    fn defaults_file_and_env() {
        let s = load("", &[]).unwrap();
        assert!(s.enabled);
        assert_eq!(
            (s.queue.as_str(), s.buffer, s.batch_size),
            ("logs", 10_000, 200)
        );
        let s = load(
            "enabled = true\nbuffer = 50\nskip = [\"/status\"]\nsample = [{ path = \"/hello\", rate = 0.5 }]\n",
            &[
                ("CORRAL_ACCESS_LOG_ENABLED", "false"),
                ("CORRAL_ACCESS_LOG_QUEUE", "access"),
            ],
        )
        .unwrap();
        assert!(!s.enabled);
        assert_eq!((s.queue.as_str(), s.buffer), ("access", 50));
        assert_eq!(s.skip, ["/status"]);
        assert_eq!(s.sample[0].rate, 0.5);
        let err = load("", &[("CORRAL_ACCESS_LOG_BUFFER", "many")]).unwrap_err();
        assert!(
            err.to_string().contains("CORRAL_ACCESS_LOG_BUFFER"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        for (text, field) in [
            ("buffer = 0", "access_log.buffer"),
            ("batch_size = 1001", "access_log.batch_size"),
            ("queue = \"\"", "access_log.queue"),
            ("flush_interval_ms = 0", "access_log.flush_interval_ms"),
            ("skip = [\"status\"]", "access_log.skip[0]"),
            ("skip = [\"/a\", \"/*/x\"]", "access_log.skip[1]"),
            (
                "sample = [{ path = \"/a\", rate = 1.5 }]",
                "access_log.sample[0].rate",
            ),
            (
                "sample = [{ path = \"a\", rate = 0.5 }]",
                "access_log.sample[0].path",
            ),
        ] {
            let err = load(text, &[]).unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        let err = load("buffers = 3", &[]).unwrap_err().to_string();
        assert!(err.contains("buffers"), "{err}");
    }

    #[test]
    fn patterns_match_like_routes_or_by_prefix() {
        assert!(matches("/status", "/status"));
        assert!(matches("/status", "/status/x"));
        assert!(matches("/status/", "/status"));
        assert!(!matches("/status", "/statusx"));
        assert!(!matches("/status", "/"));
        assert!(matches("/health*", "/healthz"));
        assert!(matches("/health*", "/health/live"));
        assert!(!matches("/health*", "/hello"));
        assert!(matches("/", "/anything"));
        assert!(matches("/*", "/anything"));
    }
}
