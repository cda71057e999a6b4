//! The queues corral keeps on RabbitMQ, and their arguments.
//!
//! For a logical queue `q` (real name `<prefix>q`):
//!
//! * `q` itself: durable, with `x-dead-letter-exchange = ""` and
//!   `x-dead-letter-routing-key = <prefix><dead>`, so that anything the
//!   broker dead-letters on its own (a `nack` without requeue by some other
//!   client, an admin policy) still lands in the dead-letter queue instead
//!   of vanishing;
//! * `<dead>` (`q.dead` unless the queue trigger names another): durable,
//!   no arguments. corral publishes dead messages there itself, confirmed,
//!   with the reason in a header;
//! * `q.retry.<ms>`, one per retry delay in use: durable, no consumers,
//!   `x-message-ttl = ms` and dead-lettering back into `q`. A retried
//!   message waits there and re-enters `q` when its TTL expires. One queue
//!   per delay (rather than a per-message `expiration` in a shared queue)
//!   because RabbitMQ only expires messages at the head of a queue: a long
//!   delay would hold back every shorter one queued behind it. Idle delay
//!   queues delete themselves (`x-expires`).
//!
//! Exchanges come from `[[messaging.exchanges]]`: `<prefix>name`, durable,
//! of the configured kind, bound to `<prefix>queue` for each binding. A
//! publish to an exchange first declares every bound queue (as above, so
//! a bound queue is the same queue a trigger consumes), then the exchange
//! and its bindings.
//!
//! Every host computes the same arguments for the same queue (RabbitMQ
//! refuses a re-declaration with different ones), whether it publishes or
//! consumes: the dead-letter names come from the configuration's queue
//! triggers, shared by all components of the host.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::broker::PublishError;
use crate::broker::routing::{ExchangeKind, check_routing_key};
use crate::broker::settings::ExchangeConfig;

/// Longest real (prefixed) queue name: leaves room for the `.retry.<ms>`
/// suffix of delay queues within AMQP's 255-byte names.
const MAX_REAL_NAME: usize = 255 - ".retry.604800000".len();

/// How long an idle delay queue lives after its last use, beyond its TTL.
const DELAY_QUEUE_GRACE: Duration = Duration::from_secs(300);

/// Longest retry delay: a week.
const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// One queue to declare.
#[derive(Debug, Clone)]
pub struct QueueDecl {
    /// Real (prefixed) name.
    pub name: String,
    pub arguments: FieldTable,
    /// Declare it before every use instead of once per connection. Delay
    /// queues need this: a declaration renews their `x-expires` lease, and
    /// publishing does not.
    pub every_time: bool,
}

/// One exchange to declare, with its bindings.
#[derive(Debug, Clone)]
pub struct ExchangeDecl {
    /// Logical name, for errors.
    pub logical: String,
    /// Real (prefixed) name.
    pub name: String,
    pub kind: ExchangeKind,
    /// Real queue name and binding key of each binding.
    pub bindings: Vec<(String, String)>,
}

/// Where a publish goes and what must exist before it.
#[derive(Debug, Clone)]
pub struct Route {
    /// Queues to declare first, in order.
    pub queues: Vec<QueueDecl>,
    /// The exchange to declare (with its bindings) and publish to; `None`
    /// publishes through the default exchange.
    pub exchange: Option<ExchangeDecl>,
    pub routing_key: String,
}

impl Route {
    /// Straight to the last of `queues` (default exchange, routing key =
    /// queue name), after declaring them all.
    pub fn queue(queues: Vec<QueueDecl>) -> Self {
        let routing_key = queues
            .last()
            .expect("at least the target queue")
            .name
            .clone();
        Self {
            queues,
            exchange: None,
            routing_key,
        }
    }

    /// The real exchange name ("" for the default exchange).
    pub fn exchange_name(&self) -> &str {
        self.exchange.as_ref().map_or("", |e| e.name.as_str())
    }

    /// What the logs and errors call the destination.
    pub fn describe(&self) -> String {
        match &self.exchange {
            None => format!("queue {:?}", self.routing_key),
            Some(e) => format!("exchange {:?} (key {:?})", e.name, self.routing_key),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Topology {
    prefix: String,
    /// Logical queue → logical dead-letter queue, for configured triggers.
    dead_letters: HashMap<String, String>,
    /// Logical names of the configured dead-letter queues.
    dead_queues: HashSet<String>,
    /// The configured exchanges, by logical name.
    exchanges: HashMap<String, ExchangeConfig>,
}

impl Topology {
    /// `dead_letters`: each configured queue with its dead-letter queue.
    pub fn new(prefix: &str, dead_letters: impl IntoIterator<Item = (String, String)>) -> Self {
        let dead_letters: HashMap<String, String> = dead_letters.into_iter().collect();
        let dead_queues = dead_letters.values().cloned().collect();
        Self {
            prefix: prefix.to_owned(),
            dead_letters,
            dead_queues,
            exchanges: HashMap::new(),
        }
    }

    /// Adds the configured exchanges (`[[messaging.exchanges]]`).
    pub fn with_exchanges(mut self, exchanges: impl IntoIterator<Item = ExchangeConfig>) -> Self {
        self.exchanges = exchanges.into_iter().map(|e| (e.name.clone(), e)).collect();
        self
    }

    /// How to publish to the logical exchange `logical` with
    /// `routing_key`: every bound queue is declared (the broker routes to
    /// all that match), then the exchange with its bindings.
    pub fn exchange_route(&self, logical: &str, routing_key: &str) -> Result<Route, PublishError> {
        let Some(config) = self.exchanges.get(logical) else {
            return Err(PublishError::Invalid(format!(
                "exchange {logical:?} is not declared in [[messaging.exchanges]]"
            )));
        };
        check_routing_key(routing_key)?;
        let mut queues: Vec<QueueDecl> = Vec::new();
        for binding in &config.bindings {
            self.check(&binding.queue)?;
            for decl in self.declarations(&binding.queue) {
                if !queues.iter().any(|q| q.name == decl.name) {
                    queues.push(decl);
                }
            }
        }
        let bindings = config
            .bindings
            .iter()
            .map(|b| (self.real(&b.queue), b.key.clone()))
            .collect();
        Ok(Route {
            queues,
            exchange: Some(ExchangeDecl {
                logical: logical.to_owned(),
                name: self.real(logical),
                kind: config.kind,
                bindings,
            }),
            routing_key: routing_key.to_owned(),
        })
    }

    pub fn real(&self, logical: &str) -> String {
        format!("{}{logical}", self.prefix)
    }

    /// Checks a logical queue name from a component or the configuration.
    pub fn check(&self, logical: &str) -> Result<(), PublishError> {
        if logical.is_empty() {
            return Err(PublishError::Invalid("the queue name is empty".into()));
        }
        if self.real(logical).len() > MAX_REAL_NAME {
            return Err(PublishError::Invalid(format!(
                "the queue name is too long: at most {MAX_REAL_NAME} bytes with the prefix {:?}",
                self.prefix
            )));
        }
        Ok(())
    }

    /// The logical dead-letter queue of `logical`.
    pub fn dead_letter_of(&self, logical: &str) -> String {
        self.dead_letters
            .get(logical)
            .cloned()
            .unwrap_or_else(|| format!("{logical}.dead"))
    }

    fn is_dead_queue(&self, logical: &str) -> bool {
        self.dead_queues.contains(logical) || logical.ends_with(".dead")
    }

    /// What to declare before publishing to (or consuming) `logical`: its
    /// dead-letter queue first, so that the broker's own dead-lettering
    /// always has somewhere to go, then the queue itself.
    pub fn declarations(&self, logical: &str) -> Vec<QueueDecl> {
        if self.is_dead_queue(logical) {
            return vec![self.plain(logical)];
        }
        let dead = self.dead_letter_of(logical);
        let mut arguments = FieldTable::default();
        arguments.insert("x-dead-letter-exchange".into(), string(""));
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            string(&self.real(&dead)),
        );
        vec![
            self.plain(&dead),
            QueueDecl {
                name: self.real(logical),
                arguments,
                every_time: false,
            },
        ]
    }

    /// A dead-letter queue: durable, no arguments.
    pub fn dead_queue(&self, logical: &str) -> QueueDecl {
        self.plain(logical)
    }

    fn plain(&self, logical: &str) -> QueueDecl {
        QueueDecl {
            name: self.real(logical),
            arguments: FieldTable::default(),
            every_time: false,
        }
    }

    /// The delay queue that holds retries of `logical` for about `delay`
    /// (rounded up, see [`bucket`]).
    pub fn delay_queue(&self, logical: &str, delay: Duration) -> QueueDecl {
        let ms = bucket(delay);
        let mut arguments = FieldTable::default();
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms as i64));
        arguments.insert("x-dead-letter-exchange".into(), string(""));
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            string(&self.real(logical)),
        );
        let expires = ms + DELAY_QUEUE_GRACE.as_millis() as u64;
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(expires as i64));
        QueueDecl {
            name: format!("{}.retry.{ms}", self.real(logical)),
            arguments,
            every_time: true,
        }
    }
}

/// Rounds a delay up to a coarse step (100 ms below 10 s, 1 s below 100 s,
/// then 10 s), so that components asking for arbitrary delays share a
/// handful of delay queues instead of creating one per distinct value.
pub fn bucket(delay: Duration) -> u64 {
    let ms = delay.min(MAX_DELAY).as_millis() as u64;
    let step = match ms {
        0..10_000 => 100,
        10_000..100_000 => 1_000,
        _ => 10_000,
    };
    ms.div_ceil(step) * step
}

pub fn string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

pub fn short(value: &str) -> ShortString {
    ShortString::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_coarse_buckets() {
        assert_eq!(bucket(Duration::ZERO), 0);
        assert_eq!(bucket(Duration::from_millis(1)), 100);
        assert_eq!(bucket(Duration::from_millis(250)), 300);
        assert_eq!(bucket(Duration::from_millis(10_001)), 11_000);
        assert_eq!(bucket(Duration::from_secs(3600)), 3_600_000);
        assert_eq!(bucket(Duration::from_secs(30 * 24 * 3600)), 604_800_000);
    }

    #[test]
    fn main_queues_dead_letter_into_their_dead_queue() {
        let t = Topology::new("p-", [("jobs".to_string(), "graveyard".to_string())]);
        let decls = t.declarations("jobs");
        assert_eq!(decls[0].name, "p-graveyard");
        assert_eq!(decls[1].name, "p-jobs");
        let dlrk = decls[1].arguments.inner().get("x-dead-letter-routing-key");
        assert_eq!(dlrk, Some(&string("p-graveyard")));
        // A dead-letter queue has no dead-letter queue of its own.
        assert_eq!(t.declarations("graveyard").len(), 1);
        assert_eq!(t.declarations("other.dead").len(), 1);
        assert_eq!(t.dead_letter_of("other"), "other.dead");
        assert!(t.check("jobs").is_ok());
        assert!(t.check("").is_err());
        assert!(t.check(&"q".repeat(250)).is_err());
    }

    #[test]
    fn exchange_routes_declare_bound_queues_then_bind_them_prefixed() {
        use crate::broker::settings::BindingConfig;
        let binding = |queue: &str, key: &str| BindingConfig {
            queue: queue.into(),
            key: key.into(),
        };
        let t = Topology::new("p-", []).with_exchanges([ExchangeConfig {
            name: "events".into(),
            kind: ExchangeKind::Topic,
            bindings: vec![
                binding("audit", "user.*"),
                binding("audit", "#"),
                binding("mail", "user.created"),
            ],
        }]);
        let route = t.exchange_route("events", "user.created").unwrap();
        let names: Vec<&str> = route.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["p-audit.dead", "p-audit", "p-mail.dead", "p-mail"]);
        let exchange = route.exchange.as_ref().unwrap();
        assert_eq!(exchange.name, "p-events");
        assert_eq!(route.exchange_name(), "p-events");
        assert_eq!(
            exchange.bindings[2],
            ("p-mail".to_string(), "user.created".to_string())
        );
        assert_eq!(route.routing_key, "user.created");
        assert!(matches!(
            t.exchange_route("nope", "k"),
            Err(PublishError::Invalid(_))
        ));
        assert!(t.exchange_route("events", &"k".repeat(256)).is_err());
        let plain = Route::queue(t.declarations("jobs"));
        assert_eq!(plain.exchange_name(), "");
        assert_eq!(plain.routing_key, "p-jobs");
    }

    #[test]
    fn delay_queues_route_back_to_their_queue() {
        let t = Topology::new("p-", []);
        let d = t.delay_queue("jobs", Duration::from_millis(1500));
        assert_eq!(d.name, "p-jobs.retry.1500");
        assert!(d.every_time);
        let args = d.arguments.inner();
        assert_eq!(
            args.get("x-message-ttl"),
            Some(&AMQPValue::LongLongInt(1500))
        );
        assert_eq!(
            args.get("x-dead-letter-routing-key"),
            Some(&string("p-jobs"))
        );
    }
}
