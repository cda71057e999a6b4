//! Triggers: what makes the host run a component. Each one turns an event
//! (an HTTP request, a queue message, a timer tick) into a call of one
//! export on a fresh instance, under the component's limits.

pub mod failure;
pub mod http;
pub mod invocation;
pub mod queue;
pub mod timer;

use std::sync::Arc;

use crate::broker::LazyBroker;
use crate::config::{Config, ConfigError};
use crate::runtime::Registry;
use crate::shutdown::Shutdown;
use crate::tokens::Tokens;

/// The event triggers of every component, parsed and checked from their
/// tables in the config (the HTTP trigger's routes are checked with the
/// config itself).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    components: Vec<Planned>,
}

#[derive(Debug, Clone)]
struct Planned {
    component: String,
    timer: Option<timer::TimerConfig>,
    queue: Option<queue::QueueConfig>,
    auth: Option<http::AuthPolicy>,
}

impl Plan {
    /// Parses every `timer`, `queue` and `auth` table; errors name the
    /// component and the field.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut components = Vec::new();
        for c in &config.components {
            let timer = match &c.timer {
                None => None,
                Some(table) => {
                    let timer: timer::TimerConfig = c.parse_table("timer", table)?;
                    timer.validate().map_err(|p| c.invalid("timer", p))?;
                    Some(timer)
                }
            };
            let queue = match &c.queue {
                None => None,
                Some(table) => {
                    let queue: queue::QueueConfig = c.parse_table("queue", table)?;
                    queue.validate().map_err(|p| c.invalid("queue", p))?;
                    Some(queue)
                }
            };
            components.push(Planned {
                component: c.name.clone(),
                timer,
                queue,
                auth: http::AuthPolicy::from_component(c)?,
            });
        }
        Ok(Self { components })
    }

    /// Each consumed queue with its dead-letter queue: the broker declares
    /// queues with these arguments whoever touches them first.
    pub fn dead_letters(&self) -> Vec<(String, String)> {
        self.components
            .iter()
            .filter_map(|p| p.queue.as_ref())
            .map(|q| (q.name.clone(), q.dead_letter_queue()))
            .collect()
    }

    /// The queue trigger's settings for `component`, if it has one.
    pub fn queue(&self, component: &str) -> Option<&queue::QueueConfig> {
        self.components
            .iter()
            .find(|p| p.component == component)
            .and_then(|p| p.queue.as_ref())
    }

    /// The HTTP gateway: every component's `auth` policy, checked with
    /// `tokens`.
    pub fn gateway(&self, tokens: Arc<Tokens>) -> http::Gateway {
        let policies = self
            .components
            .iter()
            .filter_map(|p| Some((p.component.clone(), p.auth.clone()?)))
            .collect();
        http::Gateway::new(policies, tokens)
    }

    /// Starts the timers and queue consumers. They stop when `stop` fires;
    /// await the handles to let in-flight calls finish.
    pub fn start(
        &self,
        registry: &Arc<Registry>,
        broker: &Arc<LazyBroker>,
        stop: &Shutdown,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for planned in &self.components {
            if let Some(timer) = &planned.timer {
                tasks.push(tokio::spawn(timer::run(
                    registry.clone(),
                    planned.component.clone(),
                    timer.clone(),
                    stop.clone(),
                )));
            }
            if let Some(queue) = &planned.queue {
                tasks.push(tokio::spawn(queue::run(
                    registry.clone(),
                    broker.clone(),
                    planned.component.clone(),
                    queue.clone(),
                    stop.clone(),
                )));
            }
        }
        tasks
    }
}
