//! `wasi:config/store`: a component reads the values of its own
//! `[component.config]` table, and nothing else.
//!
//! ```toml
//! [[component]]
//! name = "catalog"
//! config = { upstream = "https://dummyjson.com", jwt_secret = "${CATALOG_JWT_SECRET}" }
//! ```
//!
//! `${NAME}` is replaced by the host's environment variable `NAME` when the
//! component is deployed, so secrets live in the environment (or a secret
//! manager feeding it), never in the config file or the component binary. A
//! missing variable refuses the deploy rather than handing out an empty
//! secret. Every component gets this capability; one with no `config` table
//! sees an empty store.

mod host;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Linker;

use super::{Capability, CapabilityView, HostContext, NoSettings};
use crate::config::{ComponentConfig, template};

/// The capability: the host's environment, for `${NAME}` values.
pub struct WasiConfig {
    env: BTreeMap<String, String>,
}

/// A component's resolved values.
#[derive(Default)]
pub struct Values(BTreeMap<String, String>);

/// Values may hold secrets: `Debug` shows only the keys.
impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Values {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// No grant: the component's `config` table is what it may read, and
/// `grants.wasi_config` would configure nothing (refused as empty).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {}

impl WasiConfig {
    /// With an explicit environment, for tests.
    pub fn with_env(env: BTreeMap<String, String>) -> Self {
        Self { env }
    }

    pub fn resolve(&self, component: &ComponentConfig) -> anyhow::Result<Values> {
        let mut values = BTreeMap::new();
        for (key, raw) in &component.values {
            let value = template::expand(raw, &self.env).map_err(|problem| {
                anyhow::anyhow!("component {:?}: config.{key}: {problem}", component.name)
            })?;
            values.insert(key.clone(), value);
        }
        Ok(Values(values))
    }
}

impl Capability for WasiConfig {
    const NAME: &'static str = "wasi_config";
    const SECTION: Option<&'static str> = None;
    type Settings = NoSettings;
    type Grant = Grant;
    type Prepared = Values;
    type Instance = Arc<Values>;

    fn new(_settings: NoSettings, host: &HostContext<'_>) -> anyhow::Result<Self> {
        Ok(Self::with_env(host.config.env.0.clone()))
    }

    fn granted_by_default() -> bool {
        true
    }

    fn prepare(&self, component: &ComponentConfig, _grant: Grant) -> anyhow::Result<Values> {
        self.resolve(component)
    }

    fn instance(prepared: &Arc<Values>) -> Arc<Values> {
        prepared.clone()
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expand_env_and_missing_vars_refuse_the_deploy() {
        let component: ComponentConfig = toml::from_str(
            r#"
            name = "c"
            wasm = "c.wasm"
            config = { plain = "x", secret = "${SECRET}", mixed = "a-${SECRET}-b" }
            "#,
        )
        .unwrap();
        let store = WasiConfig::with_env([("SECRET".to_owned(), "s3".to_owned())].into());
        let values = store.resolve(&component).unwrap();
        assert_eq!(values.get("plain"), Some("x"));
        assert_eq!(values.get("secret"), Some("s3"));
        assert_eq!(values.get("mixed"), Some("a-s3-b"));
        assert_eq!(values.get("other"), None);

        let err = WasiConfig::with_env(BTreeMap::new())
            .resolve(&component)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.mixed") || err.contains("config.secret"),
            "{err}"
        );
        assert!(err.contains("SECRET"), "{err}");
    }
}
