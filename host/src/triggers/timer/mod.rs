//! The timer trigger: runs a component's `timer-handler.tick` on a schedule.
//!
//! ```toml
//! [[component]]
//! name = "heartbeat"
//! wasm = "heartbeat.wasm"
//! timer = { interval_ms = 3000 }          # or { cron = "*/5 * * * * *" }
//! ```
//!
//! Each component has one loop, so two ticks of one component never run at
//! once: a tick that overruns its slot makes the schedule skip the missed
//! ticks instead of queueing them. Every tick gets a fresh instance of the
//! *current* version, so a redeploy takes effect at the next tick.

mod schedule;

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{failure, invocation};
use crate::runtime::Registry;
use crate::shutdown::Shutdown;
pub use schedule::{Schedule, ScheduleError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerConfig {
    /// Tick every this many milliseconds.
    pub interval_ms: Option<u64>,
    /// Or tick on a cron schedule (UTC; seconds field optional).
    pub cron: Option<String>,
    /// Tick once right at start-up too (interval schedules).
    #[serde(default)]
    pub immediate: bool,
}

impl TimerConfig {
    pub fn validate(&self) -> Result<(), ScheduleError> {
        Schedule::new(self).map(|_| ())
    }
}

/// Ticks component `name` until `stop` fires. A tick in progress when
/// `stop` comes is allowed to finish (its time limit bounds the wait).
pub async fn run(registry: Arc<Registry>, name: String, config: TimerConfig, mut stop: Shutdown) {
    let schedule = Schedule::new(&config).expect("validated with the config");
    tracing::info!(component = %name, schedule = %schedule, "timer trigger started");
    let mut due = schedule.first(chrono::Utc::now());
    loop {
        let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = stop.wait() => break,
            () = tokio::time::sleep(wait) => {}
        }
        tick(&registry, &name, due).await;
        due = schedule.next_after(due, chrono::Utc::now());
    }
    tracing::info!(component = %name, "timer trigger stopped");
}

async fn tick(registry: &Registry, name: &str, due: chrono::DateTime<chrono::Utc>) {
    let Some(deployment) = registry.current(name) else {
        return;
    };
    let Some(indices) = deployment.entrypoints.timer.as_ref() else {
        return;
    };
    let started = Instant::now();
    let due_ms = due.timestamp_millis().max(0) as u64;
    let result = invocation::call(registry, &deployment, async |store, instance| {
        let guest = indices.load(&mut *store, &instance)?;
        guest.call_tick(&mut *store, due_ms).await
    })
    .await;
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(Ok(())) => tracing::debug!(component = name, took_ms, "tick done"),
        Ok(Err(message)) => {
            tracing::warn!(
                component = name,
                took_ms,
                "tick reported an error: {message}"
            )
        }
        Err(error) => {
            failure::classify(name, deployment.version, &error);
        }
    }
}
