//! The platform: one config turned into what the host runs. The one place
//! that knows every part and builds them in order, so `corral up`,
//! `corral check`, the tests and the benches assemble the host the same way:
//!
//! 1. the triggers' tables (which queues are consumed, with which
//!    dead-letter queues: the broker must know them before anyone declares
//!    a queue);
//! 2. the broker, from `[messaging]`, started on first use;
//! 3. every capability, from its own table, and every component's grants;
//! 4. the registry: each component compiled, linked and health-checked;
//! 5. the access log (`[access_log]`), publishing through the broker.
//!
//! Steps 1-3 (and the check of `[access_log]`) do no I/O, which is what
//! `corral check` runs.

use std::sync::Arc;

use wasmtime::Engine;

use crate::access_log::{self, AccessLog, AccessLogSettings};
use crate::broker::{self, LazyBroker};
use crate::capabilities::{Capabilities, HostContext};
use crate::config::Config;
use crate::runtime::Registry;
use crate::shutdown::Shutdown;
use crate::tokens::Tokens;
use crate::triggers::Plan;

/// Everything built from the config, before any component is compiled.
pub struct Parts {
    pub plan: Plan,
    pub broker: Arc<LazyBroker>,
    pub capabilities: Capabilities,
    pub access_log: AccessLogSettings,
}

impl Parts {
    /// Parses and checks every table and every grant of `config`. Touches
    /// no network and no file.
    pub fn assemble(config: &Config) -> anyhow::Result<Self> {
        let plan = Plan::from_config(config)?;
        let mut known = Capabilities::sections();
        known.push(broker::SECTION);
        known.push(access_log::SECTION);
        config.check_sections(&known)?;
        let access_log = config.section(access_log::SECTION)?;
        let broker = Arc::new(LazyBroker::new(
            config.section(broker::SECTION)?,
            plan.dead_letters(),
        ));
        let capabilities = Capabilities::new(&HostContext {
            config,
            broker: &broker,
        })?;
        for component in &config.components {
            capabilities.prepare(component)?;
        }
        Ok(Self {
            plan,
            broker,
            capabilities,
            access_log,
        })
    }
}

/// A running platform: components deployed, triggers ready to start.
pub struct Platform {
    pub registry: Arc<Registry>,
    /// The host's token issuer and verifier (`[auth]`), shared by the
    /// `tokens` capability and the HTTP gateway.
    pub tokens: Arc<Tokens>,
    pub broker: Arc<LazyBroker>,
    pub plan: Plan,
    /// Started here, handed to the HTTP trigger by whoever serves it.
    pub access_log: Arc<AccessLog>,
}

impl Platform {
    /// Assembles the parts and deploys every component of `config`.
    pub async fn start(config: &Config, engine: Engine) -> anyhow::Result<Self> {
        let parts = Parts::assemble(config)?;
        let tokens = parts.capabilities.tokens.shared();
        // A generated secret is read (or made) now: a bad secret file stops
        // the start rather than the first request.
        tokens.load_key()?;
        let registry = Arc::new(Registry::start(config, engine, parts.capabilities).await?);
        // Open the broker now, off the async threads: the embedded one
        // opens (and may recover) its redb file, which would otherwise
        // happen inside the first publish, under the broker's lock, on a
        // tokio worker. A failure is left for the first user to report
        // (and the queue triggers to retry).
        let broker = parts.broker.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || broker.get()).await? {
            tracing::warn!("messaging backend not started yet: {error:#}");
        }
        let access_log = AccessLog::start(&parts.access_log, parts.broker.clone());
        let consumed = parts
            .plan
            .dead_letters()
            .iter()
            .any(|(queue, _)| *queue == parts.access_log.queue);
        if access_log.enabled() && !consumed {
            tracing::info!(
                queue = %parts.access_log.queue,
                "access log: no component here consumes its queue; records wait there for one"
            );
        }
        Ok(Self {
            registry,
            tokens,
            broker: parts.broker,
            plan: parts.plan,
            access_log,
        })
    }

    /// The HTTP gateway of the components' `auth` tables.
    pub fn gateway(&self) -> crate::triggers::http::Gateway {
        self.plan.gateway(self.tokens.clone())
    }

    /// Starts the timers and queue consumers; see [`Plan::start`].
    pub fn start_event_triggers(&self, stop: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        self.plan.start(&self.registry, &self.broker, stop)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::broker::BrokerSettings;
    use crate::capabilities::blobstore::BlobstoreSettings;
    use crate::capabilities::keyvalue::KeyValueSettings;

    fn load(text: &str, env: &[(&str, &str)]) -> Config {
        Config::for_tests(text, env).unwrap()
    }

    fn refused(text: &str) -> String {
        match Parts::assemble(&load(text, &[])) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn backend_sections_take_env_overrides_and_resolve_paths() {
        let config = load(
            "[messaging]\nbackend = \"amqp\"\n",
            &[
                ("CORRAL_KEYVALUE_BACKEND", "redis"),
                ("CORRAL_REDIS_URL", "redis://kv:6379"),
                ("CORRAL_BLOBSTORE_BACKEND", "s3"),
                ("AWS_ACCESS_KEY_ID", "id"),
            ],
        );
        let kv: KeyValueSettings = config.section("keyvalue").unwrap();
        assert_eq!(kv.url, "redis://kv:6379");
        assert_eq!(
            kv.backend,
            crate::capabilities::keyvalue::settings::Backend::Redis
        );
        let blobs: BlobstoreSettings = config.section("blobstore").unwrap();
        assert_eq!(blobs.access_key_id.as_deref(), Some("id"));
        let broker: BrokerSettings = config.section(broker::SECTION).unwrap();
        assert_eq!(broker.backend, crate::broker::settings::Backend::Amqp);
        assert_eq!(broker.path, PathBuf::from("/etc/corral/.corral/queue"));

        let bad = load("", &[("CORRAL_MESSAGING_BACKEND", "kafka")]);
        let err = Parts::assemble(&bad).err().unwrap().to_string();
        assert!(err.contains("CORRAL_MESSAGING_BACKEND"), "{err}");
    }

    #[test]
    fn every_table_and_grant_is_claimed_and_checked() {
        let component = "[[component]]\nname = \"c\"\nwasm = \"c.wasm\"\nroutes = [\"/c\"]\n";
        assert!(Parts::assemble(&load(component, &[])).is_ok());

        let err = refused(&format!("[keyvalu]\nbackend = \"redis\"\n{component}"));
        assert!(err.contains("keyvalu") && err.contains("known:"), "{err}");
        let err = refused("[logging]\nfile = \"x\"\n");
        assert!(err.contains("logging: unknown table"), "{err}");

        let err = refused(&format!(
            "{component}grants.keyvalu = {{ buckets = [\"b\"] }}\n"
        ));
        assert!(
            err.contains("grants.keyvalu") && err.contains("unknown capability"),
            "{err}"
        );
        let err = refused(&format!("{component}grants.wasi_config = {{}}\n"));
        assert!(
            err.contains("grants.wasi_config") && err.contains("empty"),
            "{err}"
        );
        let err = refused(&format!("{component}grants.logging = {{ fil = \"x\" }}\n"));
        assert!(
            err.contains("grants.logging") && err.contains("fil"),
            "{err}"
        );

        let err = refused(&format!(
            "{component}queue = {{ name = \"q\", batch_size = 0 }}\n"
        ));
        assert!(
            err.contains("component \"c\": queue") && err.contains("batch_size"),
            "{err}"
        );
        let err = refused(&format!("{component}timer = {{ every = 3 }}\n"));
        assert!(err.contains("component \"c\": timer"), "{err}");
    }

    #[test]
    fn consumed_queues_give_the_broker_their_dead_letter_queues() {
        let config = load(
            r#"
            [[component]]
            name = "a"
            wasm = "a.wasm"
            queue = { name = "jobs" }
            [[component]]
            name = "b"
            wasm = "b.wasm"
            queue = { name = "mail", dead_letter = "mail.failed" }
            "#,
            &[],
        );
        let parts = Parts::assemble(&config).unwrap();
        assert_eq!(
            parts.plan.dead_letters(),
            [
                ("jobs".to_owned(), "jobs.dead".to_owned()),
                ("mail".to_owned(), "mail.failed".to_owned())
            ]
        );
    }
}
