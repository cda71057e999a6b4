//! `[passwords]`: the argon2id parameters and how much hashing may run at
//! once.
//!
//! ```toml
//! [passwords]
//! memory_kib = 19456      # 19 MiB per hash (OWASP's argon2id minimum)
//! iterations = 2
//! parallelism = 1
//! max_concurrent = 2      # hashes at once, host-wide (default: half the cores)
//! wait_ms = 1000          # longest wait for a slot before `busy`
//! max_waiting = 64        # callers waiting at once; more are `busy` at once
//! ```
//!
//! The defaults are OWASP's recommendation for argon2id (m = 19 MiB,
//! t = 2, p = 1): about 20-40 ms per hash on one core. A hash holds its
//! memory for that long, so `max_concurrent` × `memory_kib` is the most
//! memory hashing takes.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, Section, invalid, parse_env};

/// Bounds of the parameters, for the settings and for the hashes `verify`
/// accepts: a stored hash naming 4 GiB of memory must not take the host
/// down.
pub const MIN_MEMORY_KIB: u32 = 1024;
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
pub const MAX_ITERATIONS: u32 = 64;
pub const MAX_PARALLELISM: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordsSettings {
    /// argon2id memory cost, KiB per hash.
    pub memory_kib: u32,
    /// argon2id time cost (passes over the memory).
    pub iterations: u32,
    /// argon2id lanes. The host computes them on one thread; more lanes
    /// change the hash, not the time.
    pub parallelism: u32,
    /// Hashes (and verifications) running at once, host-wide: each takes
    /// one thread of tokio's blocking pool.
    pub max_concurrent: usize,
    /// How long a call may wait for a free slot before it is `busy`.
    pub wait_ms: u64,
    /// How many calls may wait for a slot at once; one more is `busy`
    /// without waiting. 0: never wait.
    pub max_waiting: usize,
}

impl Default for PasswordsSettings {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            // Half the cores: a login storm leaves the other half serving.
            max_concurrent: std::thread::available_parallelism()
                .map_or(1, |n| (n.get() / 2).max(1)),
            wait_ms: 1_000,
            max_waiting: 64,
        }
    }
}

impl Section for PasswordsSettings {
    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_PASSWORDS_MEMORY_KIB" => self.memory_kib = parse_env(var, value)?,
                "CORRAL_PASSWORDS_ITERATIONS" => self.iterations = parse_env(var, value)?,
                "CORRAL_PASSWORDS_PARALLELISM" => self.parallelism = parse_env(var, value)?,
                "CORRAL_PASSWORDS_MAX_CONCURRENT" => self.max_concurrent = parse_env(var, value)?,
                "CORRAL_PASSWORDS_WAIT_MS" => self.wait_ms = parse_env(var, value)?,
                "CORRAL_PASSWORDS_MAX_WAITING" => self.max_waiting = parse_env(var, value)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return Err(invalid(
                "passwords.parallelism",
                format!("must be from 1 to {MAX_PARALLELISM}"),
            ));
        }
        // argon2 needs 8 KiB per lane: the least memory covers the most lanes.
        if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(invalid(
                "passwords.memory_kib",
                format!("must be from {MIN_MEMORY_KIB} to {MAX_MEMORY_KIB} (KiB)"),
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(invalid(
                "passwords.iterations",
                format!("must be from 1 to {MAX_ITERATIONS}"),
            ));
        }
        if !(1..=1024).contains(&self.max_concurrent) {
            return Err(invalid(
                "passwords.max_concurrent",
                "must be from 1 to 1024",
            ));
        }
        if !(1..=60_000).contains(&self.wait_ms) {
            return Err(invalid("passwords.wait_ms", "must be from 1 to 60000"));
        }
        if self.max_waiting > 100_000 {
            return Err(invalid("passwords.max_waiting", "must be at most 100000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<PasswordsSettings, ConfigError> {
        Config::for_tests(text, env)?.section("passwords")
    }

    #[test]
    fn defaults_are_owasp_and_the_table_and_env_override_them() {
        let defaults = load("", &[]).unwrap();
        assert_eq!(
            (
                defaults.memory_kib,
                defaults.iterations,
                defaults.parallelism
            ),
            (19_456, 2, 1)
        );
        assert!(defaults.max_concurrent >= 1);
        let set = load(
            "[passwords]\nmemory_kib = 4096\niterations = 3\nmax_concurrent = 4\n",
            &[
                ("CORRAL_PASSWORDS_ITERATIONS", "5"),
                ("CORRAL_PASSWORDS_WAIT_MS", "250"),
                ("CORRAL_PASSWORDS_MAX_WAITING", "0"),
            ],
        )
        .unwrap();
        assert_eq!(set.memory_kib, 4096);
        assert_eq!(set.iterations, 5, "the environment wins over the file");
        assert_eq!(set.max_concurrent, 4);
        assert_eq!((set.wait_ms, set.max_waiting), (250, 0));
    }

    #[test]
    fn bad_values_are_refused_naming_the_field_or_variable() {
        for (text, field) in [
            ("memory_kib = 512", "passwords.memory_kib"),
            ("memory_kib = 2000000", "passwords.memory_kib"),
            ("parallelism = 65", "passwords.parallelism"),
            ("parallelism = 0", "passwords.parallelism"),
            ("iterations = 0", "passwords.iterations"),
            ("max_concurrent = 0", "passwords.max_concurrent"),
            ("wait_ms = 0", "passwords.wait_ms"),
            ("max_waiting = 1000000", "passwords.max_waiting"),
            ("memory = 1", "memory"),
        ] {
            let err = load(&format!("[passwords]\n{text}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        let err = load("", &[("CORRAL_PASSWORDS_MEMORY_KIB", "lots")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CORRAL_PASSWORDS_MEMORY_KIB"), "{err}");
    }
}
