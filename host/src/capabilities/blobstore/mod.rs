//! `wasi:blobstore@0.2.0-draft`: objects in containers, on S3/MinIO or on
//! the embedded local store.
//!
//! ```toml
//! [[component]]
//! name = "upload"
//! grants.blobstore = { containers = ["transactions"] }
//! ```
//!
//! A component may create, open, list and delete only the containers its
//! grant names, and copy or move objects only between them; all of them
//! live in the one store configured by `[blobstore]` (`settings`). Names are
//! checked before any call reaches the store (`names`), so a path traversal
//! attempt gets a clear error and touches nothing. Each call is bounded by
//! `blobstore.timeout_ms` (`store`). Objects are written whole, never half
//! (`values`).

mod error;
mod host;
pub mod names;
pub mod settings;
pub mod store;
#[cfg(test)]
mod tests;
mod values;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::{HasData, Linker, ResourceTable};

pub use error::BlobError;
pub use host::{Container, ObjectNames};
pub use settings::BlobstoreSettings;
pub use store::BlobStore;
pub use values::{IncomingValue, OutgoingValue};

use futures::future::BoxFuture;

use super::{Capability, CapabilityView, HostContext, Unready, granted_names};
use crate::config::ComponentConfig;

/// The capability: the host's one store, shared by every component.
pub struct Blobstore {
    store: Arc<BlobStore>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The containers the component may use.
    #[serde(default)]
    pub containers: Vec<String>,
}

/// A component's access: the store and the containers it was granted.
pub struct Granted {
    pub store: Arc<BlobStore>,
    pub containers: BTreeSet<String>,
}

impl Granted {
    /// Refuses a badly formed or ungranted container name before any store
    /// call.
    pub fn check_container(&self, name: &str) -> Result<(), BlobError> {
        names::check_container(name)?;
        if self.containers.contains(name) {
            return Ok(());
        }
        Err(BlobError::NotGranted {
            name: name.to_owned(),
            granted: self.containers.iter().cloned().collect(),
        })
    }
}

impl Capability for Blobstore {
    const NAME: &'static str = "blobstore";
    const SECTION: Option<&'static str> = Some("blobstore");
    type Settings = BlobstoreSettings;
    type Grant = Grant;
    type Prepared = Granted;
    type Instance = Arc<Granted>;

    fn new(settings: BlobstoreSettings, _host: &HostContext<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            store: Arc::new(BlobStore::new(&settings)?),
        })
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<Granted> {
        Ok(Granted {
            store: self.store.clone(),
            containers: granted_names(
                component,
                "grants.blobstore.containers",
                grant.containers,
                names::check_container,
            )?,
        })
    }

    fn instance(prepared: &Arc<Granted>) -> Arc<Granted> {
        prepared.clone()
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }

    /// One metadata read (an S3 `HEAD`, or a stat of the local folder).
    fn readiness(&self) -> Option<BoxFuture<'_, Result<(), Unready>>> {
        Some(Box::pin(async {
            self.store
                .container_created("corral-ready")
                .await
                .map(drop)
                .map_err(|e| Unready(e.to_string()))
        }))
    }
}

/// What the generated host functions see: the instance's resource table
/// (shared with WASI, whose streams the values hand out) and its grant.
pub struct BlobView<'a> {
    pub table: &'a mut ResourceTable,
    pub blob: &'a Granted,
}

pub(crate) struct BlobData;

impl HasData for BlobData {
    type Data<'a> = BlobView<'a>;
}
