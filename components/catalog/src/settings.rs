//! The catalog's `config` table (all optional):
//!
//! | key | default | |
//! |---|---|---|
//! | `upstream` | `https://dummyjson.com` | base URL of the product source |
//! | `cache_ttl_ms` | `300000` (5 min) | how long a cached answer is fresh |
//! | `stale_ttl_ms` | `86400000` (1 day) | how long it is kept to serve stale |
//! | `upstream_timeout_ms` | `3000` | connect and first-byte timeout |

use std::time::Duration;

use corral_sdk::config;
use corral_sdk::http::Error;

#[derive(Debug, Clone)]
pub struct Settings {
    pub upstream: String,
    pub cache_ttl_ms: u64,
    pub stale_ttl_ms: u64,
    pub upstream_timeout: Duration,
}

impl Settings {
    pub fn load() -> Result<Self, Error> {
        Self::from(config::get)
    }

    pub fn from(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let number = |key: &str, default: u64| -> Result<u64, Error> {
            match get(key) {
                None => Ok(default),
                Some(text) => text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::new(
                        500,
                        "bad_config",
                        format!("config {key} = {text:?} is not a positive number"),
                    )
                    .with_field(key)
                }),
            }
        };
        let upstream = get("upstream").unwrap_or_else(|| "https://dummyjson.com".to_owned());
        if !(upstream.starts_with("http://") || upstream.starts_with("https://")) {
            return Err(Error::new(
                500,
                "bad_config",
                format!("config upstream = {upstream:?} is not an http(s) URL"),
            )
            .with_field("upstream"));
        }
        let cache_ttl_ms = number("cache_ttl_ms", 300_000)?;
        Ok(Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            cache_ttl_ms,
            stale_ttl_ms: number("stale_ttl_ms", 86_400_000)?.max(cache_ttl_ms),
            upstream_timeout: Duration::from_millis(number("upstream_timeout_ms", 3000)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, Error> {
        Settings::from(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_and_bad_values() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.upstream, "https://dummyjson.com");
        assert_eq!((s.cache_ttl_ms, s.stale_ttl_ms), (300_000, 86_400_000));
        let s = settings(&[("upstream", "http://127.0.0.1:9/"), ("cache_ttl_ms", "50")]).unwrap();
        assert_eq!(s.upstream, "http://127.0.0.1:9");
        for (key, value) in [
            ("cache_ttl_ms", "0"),
            ("upstream_timeout_ms", "x"),
            ("upstream", "ftp://x"),
        ] {
            let e = settings(&[(key, value)]).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (500, Some(key)));
        }
    }
}
