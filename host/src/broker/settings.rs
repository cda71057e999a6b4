//! `[messaging]`: which broker the `messaging` capability publishes to and
//! the queue trigger consumes from.
//!
//! ```toml
//! [messaging]
//! backend = "amqp"                   # or "embedded" (the default)
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"
//! queue_prefix = ""                  # prepended to every queue and exchange name
//!
//! [[messaging.exchanges]]
//! name = "events"
//! kind = "topic"                     # "direct" | "topic" | "fanout"
//! bindings = [ { queue = "audit", key = "user.*" }, { queue = "mail", key = "user.created" } ]
//! ```
//!
//! Exchanges are declared by the host, not by components: which queue gets
//! which messages is deployment topology, reviewed with the rest of the
//! configuration, and it must be the same on both backends.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::routing::{ExchangeKind, MAX_KEY};
use crate::config::{ConfigError, Section, invalid, parse_env_enum, resolve_under};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A durable queue in the state directory; no broker needed.
    #[default]
    Embedded,
    /// RabbitMQ (AMQP 0-9-1).
    Amqp,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    pub backend: Backend,
    /// AMQP URL, for `backend = "amqp"`.
    pub url: String,
    /// Prepended to every queue name the host declares, publishes to or
    /// consumes from, so that several hosts or test runs can share a broker.
    pub queue_prefix: String,
    /// The embedded queue's folder, relative to `runtime.state_dir`.
    pub path: PathBuf,
    /// How long a publish waits for the broker's confirm.
    pub confirm_timeout_ms: u64,
    /// Exchanges (and their queue bindings) the host declares, for
    /// `publish-to-exchange`.
    pub exchanges: Vec<ExchangeConfig>,
}

/// One `[[messaging.exchanges]]` entry. Names are logical: `queue_prefix`
/// is prepended to the exchange and to every bound queue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub name: String,
    pub kind: ExchangeKind,
    #[serde(default)]
    pub bindings: Vec<BindingConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    /// Logical queue name.
    pub queue: String,
    /// Binding key (a pattern for topic exchanges; none for fanout).
    #[serde(default)]
    pub key: String,
}

impl ExchangeConfig {
    /// The queues a message published with `routing_key` reaches.
    pub fn route(&self, routing_key: &str) -> Vec<&str> {
        super::routing::route(
            self.kind,
            self.bindings
                .iter()
                .map(|b| (b.queue.as_str(), b.key.as_str())),
            routing_key,
        )
    }
}

impl std::fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSettings")
            .field("backend", &self.backend)
            .field("url", &crate::config::redact::url(&self.url))
            .field("queue_prefix", &self.queue_prefix)
            .field("path", &self.path)
            .field("confirm_timeout_ms", &self.confirm_timeout_ms)
            .field("exchanges", &self.exchanges)
            .finish()
    }
}

impl Default for BrokerSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            queue_prefix: String::new(),
            path: PathBuf::from("queue"),
            confirm_timeout_ms: 10_000,
            exchanges: Vec::new(),
        }
    }
}

impl Section for BrokerSettings {
    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_MESSAGING_BACKEND" => self.backend = parse_env_enum(var, value)?,
                "CORRAL_AMQP_URL" => self.url = value.clone(),
                "CORRAL_QUEUE_PREFIX" => self.queue_prefix = value.clone(),
                _ => {}
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, state_dir: &Path) {
        resolve_under(&mut self.path, state_dir);
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == Backend::Amqp
            && !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://"))
        {
            return Err(invalid(
                "messaging.url",
                "must start with amqp:// or amqps://",
            ));
        }
        if self.confirm_timeout_ms == 0 {
            return Err(invalid(
                "messaging.confirm_timeout_ms",
                "must be at least 1",
            ));
        }
        self.validate_exchanges()
    }
}

impl BrokerSettings {
    fn validate_exchanges(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, exchange) in self.exchanges.iter().enumerate() {
            let at = |field: &str| format!("messaging.exchanges[{i}].{field}");
            let name = &exchange.name;
            if name.is_empty() {
                return Err(invalid(at("name"), "must not be empty"));
            }
            if self.queue_prefix.len() + name.len() > MAX_KEY {
                return Err(invalid(
                    at("name"),
                    format!("{name:?} is longer than {MAX_KEY} bytes with the queue_prefix"),
                ));
            }
            // RabbitMQ reserves `amq.` (a declaration would be refused).
            if format!("{}{name}", self.queue_prefix).starts_with("amq.") {
                return Err(invalid(
                    at("name"),
                    "names starting with \"amq.\" are reserved",
                ));
            }
            if !names.insert(name.as_str()) {
                return Err(invalid(at("name"), format!("{name:?} is declared twice")));
            }
            if exchange.bindings.is_empty() {
                return Err(invalid(
                    at("bindings"),
                    "an exchange without bindings would refuse every message",
                ));
            }
            for (j, binding) in exchange.bindings.iter().enumerate() {
                if binding.queue.is_empty() {
                    return Err(invalid(
                        at(&format!("bindings[{j}].queue")),
                        "must not be empty",
                    ));
                }
                exchange
                    .kind
                    .check_binding_key(&binding.key)
                    .map_err(|problem| {
                        invalid(at(&format!("bindings[{j}].key")), problem.to_string())
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn debug_output_hides_the_url_password() {
        let settings = load("url = \"amqp://guest:amqp-secret@rabbit:5672/%2f\"").unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("amqp-secret"), "{printed}");
        assert!(
            printed.contains("amqp://guest:***@rabbit:5672/%2f"),
            "{printed}"
        );
    }

    fn load(messaging: &str) -> Result<BrokerSettings, ConfigError> {
        Config::for_tests(&format!("[messaging]\n{messaging}"), &[])?
            .section(crate::broker::SECTION)
    }

    fn error(messaging: &str) -> String {
        load(messaging).unwrap_err().to_string()
    }

    #[test]
    fn exchanges_parse_with_their_bindings() {
        let config = load(
            r#"
            [[messaging.exchanges]]
            name = "events"
            kind = "topic"
            bindings = [ { queue = "audit", key = "user.*" }, { queue = "mail", key = "user.created" } ]

            [[messaging.exchanges]]
            name = "all"
            kind = "fanout"
            bindings = [ { queue = "a" }, { queue = "b" } ]
            "#,
        )
        .unwrap();
        let events = &config.exchanges[0];
        assert_eq!(events.kind, ExchangeKind::Topic);
        assert_eq!(events.route("user.created"), ["audit", "mail"]);
        assert!(events.route("order.x").is_empty());
        assert_eq!(config.exchanges[1].route("x"), ["a", "b"]);
    }

    #[test]
    fn bad_exchanges_are_refused_naming_the_field() {
        let one = |body: &str| format!("[[messaging.exchanges]]\n{body}\n");
        let text = error(&one(
            "name = \"\"\nkind = \"direct\"\nbindings = [{ queue = \"q\" }]",
        ));
        assert!(text.contains("messaging.exchanges[0].name"), "{text}");
        let text = error(&one("name = \"e\"\nkind = \"direct\""));
        assert!(text.contains("messaging.exchanges[0].bindings"), "{text}");
        let text = error(&one(
            "name = \"e\"\nkind = \"topic\"\nbindings = [{ queue = \"q\", key = \"a\" }, { queue = \"q\", key = \"user*\" }]",
        ));
        assert!(
            text.contains("messaging.exchanges[0].bindings[1].key"),
            "{text}"
        );
        let text = error(&one(
            "name = \"e\"\nkind = \"fanout\"\nbindings = [{ queue = \"q\", key = \"k\" }]",
        ));
        assert!(text.contains("bindings[0].key"), "{text}");
        let text = error(&one(
            "name = \"e\"\nkind = \"direct\"\nbindings = [{ queue = \"\" }]",
        ));
        assert!(text.contains("bindings[0].queue"), "{text}");
        let text = error(&one(
            "name = \"amq.topic\"\nkind = \"topic\"\nbindings = [{ queue = \"q\" }]",
        ));
        assert!(text.contains("reserved"), "{text}");
        let twice = one("name = \"e\"\nkind = \"direct\"\nbindings = [{ queue = \"q\" }]");
        let text = error(&format!("{twice}{twice}"));
        assert!(text.contains("messaging.exchanges[1].name"), "{text}");
        assert!(text.contains("twice"), "{text}");
        // An unknown kind is a parse error that names the kinds.
        let text = error(&one(
            "name = \"e\"\nkind = \"headers\"\nbindings = [{ queue = \"q\" }]",
        ));
        assert!(text.contains("fanout"), "{text}");
    }
}
