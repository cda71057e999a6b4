//! Which requests get a record: `skip` and `sample` of `[access_log]`.
//!
//! Both apply to successful requests only (status below 400): a failing
//! health check is exactly what the log is for, so failures are always
//! recorded. Sampling is deterministic: a rule of rate `r` keeps
//! `floor(n * r)` of its first `n` matching requests, evenly spread, so
//! the kept share is exact and a test can count it.

use std::sync::atomic::{AtomicU64, Ordering};

use super::settings::{AccessLogSettings, matches};

/// Rates are counted in millionths.
const ONE: u64 = 1_000_000;

pub struct Filter {
    skip: Vec<String>,
    sample: Vec<Sampler>,
}

struct Sampler {
    path: String,
    /// Millionths of matching requests kept.
    rate: u64,
    seen: AtomicU64,
}

/// What the filter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Record,
    Skipped,
    SampledOut,
}

impl Filter {
    pub fn new(settings: &AccessLogSettings) -> Self {
        Self {
            skip: settings.skip.clone(),
            sample: settings
                .sample
                .iter()
                .map(|rule| Sampler {
                    path: rule.path.clone(),
                    rate: (rule.rate * ONE as f64).round() as u64,
                    seen: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Whether the request to `path` that answered `status` is recorded.
    /// The first matching `skip` pattern, else the first matching `sample`
    /// rule, decides.
    pub fn verdict(&self, path: &str, status: u16) -> Verdict {
        if status >= 400 {
            return Verdict::Record;
        }
        if self.skip.iter().any(|pattern| matches(pattern, path)) {
            return Verdict::Skipped;
        }
        match self.sample.iter().find(|s| matches(&s.path, path)) {
            None => Verdict::Record,
            Some(sampler) => {
                let n = sampler.seen.fetch_add(1, Ordering::Relaxed);
                let kept_before = n * sampler.rate / ONE;
                let kept_after = (n + 1) * sampler.rate / ONE;
                if kept_after > kept_before {
                    Verdict::Record
                } else {
                    Verdict::SampledOut
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::settings::SampleRule;

    fn filter(skip: &[&str], sample: &[(&str, f64)]) -> Filter {
        Filter::new(&AccessLogSettings {
            skip: skip.iter().map(|s| s.to_string()).collect(),
            sample: sample
                .iter()
                .map(|(path, rate)| SampleRule {
                    path: path.to_string(),
                    rate: *rate,
                })
                .collect(),
            ..AccessLogSettings::default()
        })
    }

    #[test]
    fn skipped_paths_are_left_out_unless_they_fail() {
        let f = filter(&["/status", "/health*"], &[]);
        assert_eq!(f.verdict("/status", 200), Verdict::Skipped);
        assert_eq!(f.verdict("/status/deep", 204), Verdict::Skipped);
        assert_eq!(f.verdict("/healthz", 200), Verdict::Skipped);
        assert_eq!(f.verdict("/statusx", 200), Verdict::Record);
        assert_eq!(f.verdict("/hello", 200), Verdict::Record);
        assert_eq!(f.verdict("/status", 500), Verdict::Record);
        assert_eq!(f.verdict("/status", 404), Verdict::Record);
    }

    #[test]
    fn sampling_keeps_the_exact_share_evenly() {
        let f = filter(&[], &[("/hello", 0.25), ("/never", 0.0), ("/all", 1.0)]);
        let kept: Vec<bool> = (0..100)
            .map(|_| f.verdict("/hello", 200) == Verdict::Record)
            .collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), 25);
        // Evenly: one in every four.
        for chunk in kept.chunks(4) {
            assert_eq!(chunk.iter().filter(|k| **k).count(), 1);
        }
        assert!((0..50).all(|_| f.verdict("/never", 200) == Verdict::SampledOut));
        assert!((0..50).all(|_| f.verdict("/all", 200) == Verdict::Record));
        // Failures are not sampled (and do not use up the share).
        assert!((0..10).all(|_| f.verdict("/never", 503) == Verdict::Record));
        assert_eq!(f.verdict("/other", 200), Verdict::Record);
    }

    #[test]
    fn skip_wins_over_sample() {
        let f = filter(&["/hello"], &[("/hello", 1.0)]);
        assert_eq!(f.verdict("/hello", 200), Verdict::Skipped);
    }
}
