//! Triggers: what makes the host run a component. Each one turns an event
//! (an HTTP request, a queue message, a timer tick) into a call of one
//! export on a fresh instance, under the component's limits.

pub mod failure;
pub mod http;
pub mod invocation;
pub mod queue;
pub mod timer;

use std::sync::Arc;

use crate::config::Config;
use crate::runtime::Registry;

/// Starts the event triggers (timers, queue consumers) of every component
/// that has one. They stop when `stop` turns true; await the handles to
/// let in-flight calls finish.
pub fn start_event_triggers(
    registry: &Arc<Registry>,
    config: &Config,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for component in &config.components {
        if let Some(timer) = &component.timer {
            tasks.push(tokio::spawn(timer::run(
                registry.clone(),
                component.name.clone(),
                timer.clone(),
                stop.clone(),
            )));
        }
        if let Some(queue) = &component.queue {
            tasks.push(tokio::spawn(queue::run(
                registry.clone(),
                component.name.clone(),
                queue.clone(),
                stop.clone(),
            )));
        }
    }
    tasks
}
