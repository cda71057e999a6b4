//! Capabilities: what the host lends to components beyond plain WASI.
//!
//! Every capability has the same shape, one folder each (Spin's "factors"
//! are the model):
//!
//! * its **runtime config**: which backend, built once per host from the
//!   host configuration (`Capability::new`);
//! * its **grant**: what one component may use, parsed from
//!   `[component.grants.<name>]` and checked once per deploy
//!   (`Capability::prepare`); a component without a grant does not get the
//!   capability linked at all, so a component importing it is refused;
//! * its **per-instance state**, created for every request from the prepared
//!   grant (`Capability::instance`);
//! * its **linker wiring** (`Capability::add_to_linker`).
//!
//! Adding a capability means: a new folder implementing [`Capability`], one
//! field in [`Prepared`] / [`InstanceCaps`] and one line in each of the
//! three functions below that walk them.

pub mod logging;
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

/// All capability backends of this host.
pub struct Capabilities {
    pub logging: logging::Logging,
    pub outbound_http: outbound_http::OutboundHttp,
}

/// A component's prepared grants: `None` where it has no grant.
#[derive(Clone)]
pub struct Prepared {
    pub logging: Option<Arc<<logging::Logging as Capability>::Prepared>>,
    pub outbound_http: Option<Arc<<outbound_http::OutboundHttp as Capability>::Prepared>>,
}

/// Per-instance capability state.
pub struct InstanceCaps {
    pub logging: Option<<logging::Logging as Capability>::Instance>,
    pub outbound_http: <outbound_http::OutboundHttp as Capability>::Instance,
}

impl Capabilities {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            logging: logging::Logging::new(config)?,
            outbound_http: outbound_http::OutboundHttp::new(config)?,
        })
    }

    /// Parses and checks every grant of `component`; an unknown grant name is
    /// an error so that a typo never silently withholds a capability.
    pub fn prepare(&self, component: &ComponentConfig) -> anyhow::Result<Prepared> {
        const KNOWN: &[&str] = &[logging::Logging::NAME, outbound_http::OutboundHttp::NAME];
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
        if prepared.logging.is_some() {
            logging::Logging::add_to_linker(&mut linker)?;
        }
        // The outgoing handler is part of wasi:http itself; without a grant
        // every request is denied at call time (see `outbound_http`).
        Ok(linker)
    }
}

impl Prepared {
    pub fn instance(&self) -> InstanceCaps {
        InstanceCaps {
            logging: self.logging.as_ref().map(logging::Logging::instance),
            outbound_http: outbound_http::OutboundHttp::instance_or_deny(
                self.outbound_http.as_ref(),
            ),
        }
    }
}

fn prepare_one<C: Capability>(
    capability: &C,
    component: &ComponentConfig,
) -> anyhow::Result<Option<Arc<C::Prepared>>> {
    let grant = match component.grants.get(C::NAME) {
        Some(value) => value.clone().try_into::<C::Grant>().map_err(|e| {
            anyhow::anyhow!("component {:?}: grants.{}: {e}", component.name, C::NAME)
        })?,
        None if C::granted_by_default() => C::Grant::default(),
        None => return Ok(None),
    };
    Ok(Some(Arc::new(capability.prepare(component, grant)?)))
}
