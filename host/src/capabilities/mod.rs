//! Capabilities: what the host lends to components beyond plain WASI.
//!
//! Every capability has the same shape, one folder each (Spin's "factors"
//! are the model):
//!
//! * its **runtime config**: which backend, from a host-level section such
//!   as `[keyvalue]` (`settings.rs`, a [`crate::config::Section`]), built
//!   once per host (`Capability::new`);
//! * its **grant**: what one component may use, parsed from
//!   `[component.grants.<name>]` and checked once per deploy
//!   (`Capability::prepare`); a component without a grant does not get the
//!   capability linked at all, so a component importing it is refused;
//! * its **per-instance state**, created for every request from the prepared
//!   grant (`Capability::instance`);
//! * its **linker wiring** (`Capability::add_to_linker`), against the shared
//!   bindings in [`crate::bindings`].
//!
//! Adding a capability means: a new folder implementing [`Capability`], and
//! one line in each of the places below that list them (the structs and the
//! `for_each`-style walks).

pub mod blobstore;
pub mod config;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
pub mod outbound_http;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use wasmtime::component::Linker;

use crate::config::{ComponentConfig, Config};
use crate::runtime::InstanceState;

/// One capability. See the module docs for the shape.
pub trait Capability: Sized + Send + Sync + 'static {
    /// Key of the grant in `[component.grants]`.
    const NAME: &'static str;
    /// The grant as written in the config.
    type Grant: DeserializeOwned + Default;
    /// Per-component state, shared by all instances of one deployment.
    type Prepared: Send + Sync + 'static;
    /// Per-instance state, living in the instance's store.
    type Instance: Send + 'static;

    /// Builds the backend from the host configuration.
    fn new(config: &Config) -> anyhow::Result<Self>;

    /// Whether components get this capability without a grant (logging).
    fn granted_by_default() -> bool {
        false
    }

    /// Checks a component's grant and prepares what its instances share.
    fn prepare(
        &self,
        component: &ComponentConfig,
        grant: Self::Grant,
    ) -> anyhow::Result<Self::Prepared>;

    /// State for one instance.
    fn instance(prepared: &Arc<Self::Prepared>) -> Self::Instance;

    /// Adds the capability's imports to a component's linker.
    fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()>;
}

/// The prepared grant of capability `C`, or `None` without a grant.
type PreparedOf<C> = Option<Arc<<C as Capability>::Prepared>>;
/// The per-instance state of capability `C`, or `None` without a grant.
type InstanceOf<C> = Option<<C as Capability>::Instance>;

/// All capability backends of this host.
pub struct Capabilities {
    pub logging: logging::Logging,
    pub config: config::ConfigStore,
    pub keyvalue: keyvalue::KeyValue,
    pub messaging: messaging::Messaging,
    pub blobstore: blobstore::Blobstore,
    pub outbound_http: outbound_http::OutboundHttp,
}

/// A component's prepared grants: `None` where it has no grant.
#[derive(Clone)]
pub struct Prepared {
    pub logging: PreparedOf<logging::Logging>,
    pub config: PreparedOf<config::ConfigStore>,
    pub keyvalue: PreparedOf<keyvalue::KeyValue>,
    pub messaging: PreparedOf<messaging::Messaging>,
    pub blobstore: PreparedOf<blobstore::Blobstore>,
    pub outbound_http: PreparedOf<outbound_http::OutboundHttp>,
}

/// Per-instance capability state.
pub struct InstanceCaps {
    pub logging: InstanceOf<logging::Logging>,
    pub config: InstanceOf<config::ConfigStore>,
    pub keyvalue: InstanceOf<keyvalue::KeyValue>,
    pub messaging: InstanceOf<messaging::Messaging>,
    pub blobstore: InstanceOf<blobstore::Blobstore>,
    pub outbound_http: <outbound_http::OutboundHttp as Capability>::Instance,
}

const KNOWN: &[&str] = &[
    logging::Logging::NAME,
    config::ConfigStore::NAME,
    keyvalue::KeyValue::NAME,
    messaging::Messaging::NAME,
    blobstore::Blobstore::NAME,
    outbound_http::OutboundHttp::NAME,
];

impl Capabilities {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            logging: logging::Logging::new(config)?,
            config: config::ConfigStore::new(config)?,
            keyvalue: keyvalue::KeyValue::new(config)?,
            messaging: messaging::Messaging::new(config)?,
            blobstore: blobstore::Blobstore::new(config)?,
            outbound_http: outbound_http::OutboundHttp::new(config)?,
        })
    }

    /// Parses and checks every grant of `component`; an unknown grant name is
    /// an error so that a typo never silently withholds a capability.
    pub fn prepare(&self, component: &ComponentConfig) -> anyhow::Result<Prepared> {
        if let Some(unknown) = component
            .grants
            .keys()
            .find(|k| !KNOWN.contains(&k.as_str()))
        {
            anyhow::bail!(
                "component {:?}: grants.{unknown}: unknown capability (known: {})",
                component.name,
                KNOWN.join(", ")
            );
        }
        Ok(Prepared {
            logging: prepare_one(&self.logging, component)?,
            config: prepare_one(&self.config, component)?,
            keyvalue: prepare_one(&self.keyvalue, component)?,
            messaging: prepare_one(&self.messaging, component)?,
            blobstore: prepare_one(&self.blobstore, component)?,
            outbound_http: prepare_one(&self.outbound_http, component)?,
        })
    }

    /// The linker for one component: WASI, wasi:http, and the capabilities
    /// it was granted.
    pub fn linker(
        engine: &wasmtime::Engine,
        prepared: &Prepared,
    ) -> anyhow::Result<Linker<InstanceState>> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        link_if_granted::<logging::Logging>(&mut linker, &prepared.logging)?;
        link_if_granted::<config::ConfigStore>(&mut linker, &prepared.config)?;
        link_if_granted::<keyvalue::KeyValue>(&mut linker, &prepared.keyvalue)?;
        link_if_granted::<messaging::Messaging>(&mut linker, &prepared.messaging)?;
        link_if_granted::<blobstore::Blobstore>(&mut linker, &prepared.blobstore)?;
        // The outgoing handler is part of wasi:http itself; without a grant
        // every request is denied at call time (see `outbound_http`).
        Ok(linker)
    }
}

impl Prepared {
    pub fn instance(&self) -> InstanceCaps {
        InstanceCaps {
            logging: instance_of::<logging::Logging>(&self.logging),
            config: instance_of::<config::ConfigStore>(&self.config),
            keyvalue: instance_of::<keyvalue::KeyValue>(&self.keyvalue),
            messaging: instance_of::<messaging::Messaging>(&self.messaging),
            blobstore: instance_of::<blobstore::Blobstore>(&self.blobstore),
            outbound_http: outbound_http::OutboundHttp::instance_or_deny(
                self.outbound_http.as_ref(),
            ),
        }
    }
}

fn prepare_one<C: Capability>(
    capability: &C,
    component: &ComponentConfig,
) -> anyhow::Result<PreparedOf<C>> {
    let grant = match component.grants.get(C::NAME) {
        Some(value) => value.clone().try_into::<C::Grant>().map_err(|e| {
            anyhow::anyhow!("component {:?}: grants.{}: {e}", component.name, C::NAME)
        })?,
        None if C::granted_by_default() => C::Grant::default(),
        None => return Ok(None),
    };
    Ok(Some(Arc::new(capability.prepare(component, grant)?)))
}

fn link_if_granted<C: Capability>(
    linker: &mut Linker<InstanceState>,
    prepared: &PreparedOf<C>,
) -> anyhow::Result<()> {
    if prepared.is_some() {
        C::add_to_linker(linker)?;
    }
    Ok(())
}

fn instance_of<C: Capability>(prepared: &PreparedOf<C>) -> InstanceOf<C> {
    prepared.as_ref().map(C::instance)
}
