//! When the next tick is due: a fixed interval or a cron expression.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::TimerConfig;

#[derive(Debug, Clone)]
pub enum Schedule {
    Every { interval: Duration, immediate: bool },
    Cron(Box<Cron>),
}

/// Why a `timer` table gives no schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("set interval_ms or cron, not both")]
    Both,
    #[error("needs interval_ms or cron")]
    Neither,
    #[error("interval_ms must be at least 1")]
    ZeroInterval,
    #[error("cron {expr:?}: {problem}")]
    Cron { expr: String, problem: String },
}

impl Schedule {
    pub fn new(config: &TimerConfig) -> Result<Self, ScheduleError> {
        match (&config.interval_ms, &config.cron) {
            (Some(_), Some(_)) => Err(ScheduleError::Both),
            (None, None) => Err(ScheduleError::Neither),
            (Some(0), None) => Err(ScheduleError::ZeroInterval),
            (Some(ms), None) => Ok(Self::Every {
                interval: Duration::from_millis(*ms),
                immediate: config.immediate,
            }),
            (None, Some(expr)) => CronParser::builder()
                .seconds(Seconds::Optional)
                .build()
                .parse(expr)
                .map(|cron| Self::Cron(Box::new(cron)))
                .map_err(|e| ScheduleError::Cron {
                    expr: expr.clone(),
                    problem: e.to_string(),
                }),
        }
    }

    /// The first tick after start-up at `now`.
    pub fn first(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Every {
                immediate: true, ..
            } => now,
            Self::Every { interval, .. } => now + *interval,
            Self::Cron(cron) => next_cron(cron, now),
        }
    }

    /// The tick after the one due at `due`, given that it is now `now`:
    /// ticks that were missed while a slow tick ran are skipped, never
    /// run in a burst.
    pub fn next_after(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Every { interval, .. } => {
                let mut next = due + *interval;
                if next <= now {
                    let behind = (now - due).to_std().unwrap_or_default();
                    let missed = behind.as_nanos() / interval.as_nanos().max(1);
                    next = due + *interval * (missed as u32 + 1);
                }
                next
            }
            Self::Cron(cron) => next_cron(cron, now.max(due)),
        }
    }
}

fn next_cron(cron: &Cron, after: DateTime<Utc>) -> DateTime<Utc> {
    cron.find_next_occurrence(&after, false)
        // A pattern that never matches again (a past date): park far away.
        .unwrap_or(after + chrono::Duration::days(365 * 100))
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every { interval, .. } => write!(f, "every {interval:?}"),
            Self::Cron(cron) => write!(f, "cron {}", cron.pattern),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(interval_ms: Option<u64>, cron: Option<&str>) -> TimerConfig {
        TimerConfig {
            interval_ms,
            cron: cron.map(str::to_owned),
            immediate: false,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn interval_skips_missed_ticks() {
        let s = Schedule::new(&config(Some(3000), None)).unwrap();
        let t0 = at("2026-01-01T00:00:00Z");
        assert_eq!(s.first(t0), at("2026-01-01T00:00:03Z"));
        // On time: the next slot.
        assert_eq!(
            s.next_after(t0, at("2026-01-01T00:00:01Z")),
            at("2026-01-01T00:00:03Z")
        );
        // A tick that ran 7.5 s: slots at 3 and 6 are skipped.
        assert_eq!(
            s.next_after(t0, at("2026-01-01T00:00:07.500Z")),
            at("2026-01-01T00:00:09Z")
        );
    }

    #[test]
    fn cron_with_and_without_seconds() {
        let s = Schedule::new(&config(None, Some("*/5 * * * * *"))).unwrap();
        let t0 = at("2026-01-01T00:00:01Z");
        assert_eq!(s.first(t0), at("2026-01-01T00:00:05Z"));
        let s = Schedule::new(&config(None, Some("0 * * * *"))).unwrap();
        assert_eq!(s.first(t0), at("2026-01-01T01:00:00Z"));
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(Schedule::new(&config(None, None)).is_err());
        assert!(Schedule::new(&config(Some(1), Some("* * * * *"))).is_err());
        assert!(Schedule::new(&config(Some(0), None)).is_err());
        assert!(Schedule::new(&config(None, Some("not cron"))).is_err());
    }
}
