//! The `keyvalue` capability. (Skeleton: the implementation is in progress;
//! until then a grant of it refuses the deploy.)

pub mod settings;

use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::Linker;

pub use settings::BackendConfig;

use super::Capability;
use crate::config::{ComponentConfig, Config};
use crate::runtime::InstanceState;

pub struct KeyValue;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default)]
    pub buckets: Vec<String>,
}

impl Capability for KeyValue {
    const NAME: &'static str = "keyvalue";
    type Grant = Grant;
    type Prepared = ();
    type Instance = ();

    fn new(_config: &Config) -> anyhow::Result<Self> {
        Ok(Self)
    }

    fn prepare(&self, component: &ComponentConfig, _grant: Grant) -> anyhow::Result<()> {
        anyhow::bail!("component {:?}: grants.keyvalue: not available yet", component.name)
    }

    fn instance(_prepared: &Arc<()>) {}

    fn add_to_linker(_linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// An open bucket, as kept in the instance's resource table.
pub struct Bucket {
    pub name: String,
}
