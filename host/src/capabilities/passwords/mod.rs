//! The `passwords` capability: `corral:platform/passwords`, argon2id run
//! natively by the host (in wasm it is several times slower and needs its
//! whole memory cost inside the instance), with bounded concurrency.
//!
//! ```toml
//! [passwords]                 # optional: the defaults are OWASP's
//! max_concurrent = 2
//!
//! [[component]]
//! name = "users"
//! grants.passwords = { max_concurrent = 2 }
//! ```
//!
//! The grant is the component's share: at most `max_concurrent` of its
//! hashes run at once, and never more than the host's
//! `passwords.max_concurrent` in all. A share larger than the host's total
//! refuses the deploy. See [`hasher`] for the bound and [`settings`] for
//! the parameters.

mod hasher;
mod host;
pub mod settings;

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Semaphore;
use wasmtime::component::Linker;

pub use hasher::{Hasher, Kdf, MAX_PASSWORD_BYTES, PasswordError};
pub use settings::PasswordsSettings;

use super::{Capability, CapabilityView, HostContext};
use crate::config::ComponentConfig;

/// The host's hasher, shared by every component granted it.
pub struct Passwords {
    hasher: Arc<Hasher>,
    max_concurrent: usize,
}

/// `grants.passwords`: the component's share of the hashing slots.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Most hashes of this component at once (required: every grant
    /// says what share it takes).
    pub max_concurrent: usize,
}

/// A component's share, shared by its instances.
pub struct Prepared {
    pub(crate) share: Arc<Semaphore>,
    pub(crate) hasher: Arc<Hasher>,
}

/// The per-instance state: the component's share.
pub struct PasswordsHandle(pub(crate) Arc<Prepared>);

impl Capability for Passwords {
    const NAME: &'static str = "passwords";
    const SECTION: Option<&'static str> = Some("passwords");
    type Settings = PasswordsSettings;
    type Grant = Grant;
    type Prepared = Prepared;
    type Instance = PasswordsHandle;

    fn new(settings: PasswordsSettings, _host: &HostContext<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            hasher: Arc::new(Hasher::new(&settings)?),
            max_concurrent: settings.max_concurrent,
        })
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<Prepared> {
        if !(1..=self.max_concurrent).contains(&grant.max_concurrent) {
            return Err(component
                .invalid(
                    "grants.passwords.max_concurrent",
                    format!(
                        "must be from 1 to the host's passwords.max_concurrent ({}), not {}",
                        self.max_concurrent, grant.max_concurrent
                    ),
                )
                .into());
        }
        Ok(Prepared {
            share: Arc::new(Semaphore::new(grant.max_concurrent)),
            hasher: self.hasher.clone(),
        })
    }

    fn instance(prepared: &Arc<Prepared>) -> PasswordsHandle {
        PasswordsHandle(prepared.clone())
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::LazyBroker;
    use crate::config::Config;

    fn component_with(grant: &str) -> anyhow::Result<Prepared> {
        let config = Config::for_tests(
            &format!(
                r#"
                [passwords]
                max_concurrent = 3
                memory_kib = 1024
                iterations = 1

                [[component]]
                name = "users"
                wasm = "users.wasm"
                routes = ["/users"]
                {grant}
                "#
            ),
            &[],
        )?;
        let broker = Arc::new(LazyBroker::new(
            config.section(crate::broker::SECTION)?,
            Vec::new(),
        ));
        let host = HostContext {
            config: &config,
            broker: &broker,
        };
        let passwords = Passwords::new(config.section("passwords")?, &host)?;
        let component = &config.components[0];
        let Some(toml::Value::Table(table)) = component.grants.get("passwords") else {
            anyhow::bail!("no passwords grant");
        };
        let grant = component.parse_table("grants.passwords", table)?;
        passwords.prepare(component, grant)
    }

    #[test]
    fn a_grant_within_the_host_total_is_the_component_share() {
        let prepared = component_with("grants.passwords = { max_concurrent = 2 }").unwrap();
        assert_eq!(prepared.share.available_permits(), 2);
    }

    #[test]
    fn bad_grants_are_refused_naming_the_component_and_field() {
        for (grant, expected) in [
            (
                "grants.passwords = { max_concurrent = 4 }",
                "grants.passwords.max_concurrent",
            ),
            (
                "grants.passwords = { max_concurrent = 0 }",
                "grants.passwords.max_concurrent",
            ),
            ("grants.passwords = { concurrency = 1 }", "concurrency"),
            (
                "grants.passwords = { max_concurrent = -1 }",
                "grants.passwords",
            ),
        ] {
            let Err(error) = component_with(grant) else {
                panic!("{grant} was accepted");
            };
            let text = format!("{error:#}");
            assert!(text.contains(expected), "{grant}: {text}");
            assert!(text.contains("users"), "{grant}: {text}");
        }
    }
}
