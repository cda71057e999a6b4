//! The `keyvalue` capability: `wasi:keyvalue` (store, atomics, batch
//! @0.2.0-draft) plus `corral:platform/keyvalue-ext` (TTL, set-if-absent)
//! and `corral:platform/keyvalue-index` (ordered indexes: sorted sets),
//! backed by Redis or by an embedded redb file. The same grant gives all of
//! them: an index lives in a bucket.
//!
//! ```toml
//! [keyvalue]
//! backend = "redis"                 # or "embedded" (the default)
//!
//! [[component]]
//! name = "payments"
//! grants.keyvalue = { buckets = ["transactions", "idempotency"] }
//! ```
//!
//! A component opens only the buckets its grant names (`open` of any other
//! is `access-denied`), and a bucket is a namespace of the backend (Redis
//! keys `<key_prefix><bucket>:<key>`), so two components sharing a bucket
//! name share data, and a component can never reach a bucket it was not
//! granted. The backend is built once per host; each instance keeps its open
//! buckets in its store's `ResourceTable`.
//!
//! Layout: [`backend`] is the contract and the [`backend::KeyValueStore`] that
//! validates and bounds every call ([`index`] its ordered-index part);
//! [`redis`] and [`embedded`] implement it; [`host`] maps the WIT interfaces
//! onto the store.

pub mod backend;
pub mod embedded;
mod host;
pub mod index;
pub mod redis;
pub mod settings;
#[cfg(test)]
mod tests;
pub mod validate;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wasmtime::component::Linker;

pub use backend::KeyValueStore;
pub use settings::KeyValueSettings;

use futures::future::BoxFuture;

use super::{Capability, CapabilityView, HostContext, Unready, granted_names};
use crate::config::ComponentConfig;

/// The host's key-value store, shared by every component granted it.
pub struct KeyValue {
    store: Arc<KeyValueStore>,
}

impl KeyValue {
    /// Builds the configured backend. Neither backend touches the network
    /// or the disk here: Redis connects on first use (so the host starts,
    /// and serves its other components, while Redis is down) and the redb
    /// file is opened on first use (so `corral check` never locks it).
    pub fn from_settings(settings: &KeyValueSettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let backend: Arc<dyn backend::Backend> = match settings.backend {
            settings::Backend::Redis => Arc::new(redis::RedisBackend::new(
                &settings.url,
                &settings.key_prefix,
                timeout,
            )?),
            settings::Backend::Embedded => Arc::new(embedded::EmbeddedBackend::new(
                &settings.path,
                embedded::DEFAULT_SWEEP_INTERVAL,
            )),
        };
        Ok(Self {
            store: Arc::new(KeyValueStore::new(backend, timeout)),
        })
    }
}

/// `grants.keyvalue`: the buckets a component may open.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default)]
    pub buckets: Vec<String>,
}

/// A component's checked grant, shared by all its instances.
pub struct Prepared {
    pub component: String,
    pub buckets: BTreeSet<String>,
    pub store: Arc<KeyValueStore>,
}

impl Prepared {
    pub fn may_open(&self, bucket: &str) -> bool {
        self.buckets.contains(bucket)
    }
}

impl Capability for KeyValue {
    const NAME: &'static str = "keyvalue";
    const SECTION: Option<&'static str> = Some("keyvalue");
    type Settings = KeyValueSettings;
    type Grant = Grant;
    type Prepared = Prepared;
    type Instance = Arc<Prepared>;

    fn new(settings: KeyValueSettings, _host: &HostContext<'_>) -> anyhow::Result<Self> {
        Self::from_settings(&settings)
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<Prepared> {
        Ok(Prepared {
            component: component.name.clone(),
            buckets: granted_names(
                component,
                "grants.keyvalue.buckets",
                grant.buckets,
                validate::bucket_name,
            )?,
            store: self.store.clone(),
        })
    }

    fn instance(prepared: &Arc<Prepared>) -> Arc<Prepared> {
        prepared.clone()
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }

    /// One read (a Redis `GET`, or a read of the embedded file).
    fn readiness(&self) -> Option<BoxFuture<'_, Result<(), Unready>>> {
        Some(Box::pin(async {
            self.store
                .get("corral-ready", "ready")
                .await
                .map(drop)
                .map_err(|e| Unready(e.0))
        }))
    }
}

/// An open bucket, as kept in the instance's resource table: only the name
/// of a bucket the grant allowed, checked once at `open`.
pub struct Bucket {
    pub name: String,
}
