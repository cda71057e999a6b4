//! The `blobstore` capability. (Skeleton: the implementation is in progress;
//! until then a grant of it refuses the deploy.)

pub mod settings;

use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::Linker;

pub use settings::BackendConfig;

use super::Capability;
use crate::config::{ComponentConfig, Config};
use crate::runtime::InstanceState;

pub struct Blobstore;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default)]
    pub containers: Vec<String>,
}

impl Capability for Blobstore {
    const NAME: &'static str = "blobstore";
    type Grant = Grant;
    type Prepared = ();
    type Instance = ();

    fn new(_config: &Config) -> anyhow::Result<Self> {
        Ok(Self)
    }

    fn prepare(&self, component: &ComponentConfig, _grant: Grant) -> anyhow::Result<()> {
        anyhow::bail!("component {:?}: grants.blobstore: not available yet", component.name)
    }

    fn instance(_prepared: &Arc<()>) {}

    fn add_to_linker(_linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
        Ok(())
    }
}
