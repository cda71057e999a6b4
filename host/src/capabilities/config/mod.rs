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

mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::Capability;
use crate::bindings::wasi::config::store::{self as wit, Error};
use crate::config::{ComponentConfig, Config};
use crate::runtime::InstanceState;

pub struct ConfigStore {
    env: BTreeMap<String, String>,
}

/// A component's resolved values.
#[derive(Debug, Default)]
pub struct Values(BTreeMap<String, String>);

impl Values {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// No grant beyond the `config` table itself.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {}

impl ConfigStore {
    /// With an explicit environment, for tests.
    pub fn with_env(env: BTreeMap<String, String>) -> Self {
        Self { env }
    }

    pub fn resolve(&self, component: &ComponentConfig) -> anyhow::Result<Values> {
        let mut values = BTreeMap::new();
        for (key, raw) in &component.config {
            let value = template::expand(raw, &self.env).map_err(|problem| {
                anyhow::anyhow!("component {:?}: config.{key}: {problem}", component.name)
            })?;
            values.insert(key.clone(), value);
        }
        Ok(Values(values))
    }
}

impl Capability for ConfigStore {
    const NAME: &'static str = "config";
    type Grant = Grant;
    type Prepared = Values;
    type Instance = Arc<Values>;

    fn new(_config: &Config) -> anyhow::Result<Self> {
        Ok(Self::with_env(std::env::vars().collect()))
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

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
        wit::add_to_linker::<_, ConfigData>(linker, |state| {
            ConfigView(
                state
                    .caps
                    .config
                    .as_ref()
                    .expect("config is linked only for components that have it"),
            )
        })?;
        Ok(())
    }
}

/// What the generated `wasi:config/store` host functions see.
pub struct ConfigView<'a>(&'a Values);

struct ConfigData;

impl HasData for ConfigData {
    type Data<'a> = ConfigView<'a>;
}

impl wit::Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, Error>> {
        Ok(Ok(self.0.get(&key).map(str::to_owned)))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, Error>> {
        Ok(Ok(self
            .0
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
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
        let store = ConfigStore::with_env([("SECRET".to_owned(), "s3".to_owned())].into());
        let values = store.resolve(&component).unwrap();
        assert_eq!(values.get("plain"), Some("x"));
        assert_eq!(values.get("secret"), Some("s3"));
        assert_eq!(values.get("mixed"), Some("a-s3-b"));
        assert_eq!(values.get("other"), None);

        let err = ConfigStore::with_env(BTreeMap::new())
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
