//! Capabilities: what the host lends to components beyond plain WASI.
//!
//! Every capability has the same shape, one folder each (Spin's "factors"
//! are the model), described by the [`Capability`] trait:
//!
//! * its **settings**: which backend, from its own host-level table such as
//!   `[keyvalue]` (a [`crate::config::Section`], with its `CORRAL_*`
//!   overrides), turned into the capability once per host
//!   ([`Capability::new`]);
//! * its **grant**: what one component may use, parsed from
//!   `[component.grants.<name>]` and checked once per deploy
//!   ([`Capability::prepare`]); a component without a grant does not get
//!   the capability linked at all, so a component importing it is refused;
//! * its **per-instance state**, created for every request from the
//!   prepared grant ([`Capability::instance`]);
//! * its **linker wiring** ([`Capability::add_to_linker`]), against the
//!   shared bindings in [`crate::bindings`], in its `host.rs`.
//!
//! Capabilities see an instance's store only through [`CapabilityView`]
//! (`view.rs`), which the runtime implements: no capability knows the
//! runtime.
//!
//! **Adding a capability** is a new folder implementing [`Capability`] and
//! one line in the [`capabilities!`] list at the bottom of this file (plus
//! its WIT in `wit/` and, for guests, a module in the SDK). The list
//! generates the structs that hold every capability, their grants and
//! their per-instance state, and every walk over them.

pub mod blobstore;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
pub mod outbound_http;
pub mod passwords;
pub mod tokens;
mod view;
pub mod wasi_config;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use wasmtime::component::Linker;

pub use view::CapabilityView;

use crate::broker::LazyBroker;
use crate::config::{ComponentConfig, Config, ConfigError, Section};

/// What a capability may draw on when the host builds it.
pub struct HostContext<'a> {
    pub config: &'a Config,
    /// The message broker, shared with the queue trigger.
    pub broker: &'a Arc<LazyBroker>,
}

/// One capability. See the module docs for the shape.
pub trait Capability: Sized + Send + Sync + 'static {
    /// Key of the grant in `[component.grants]`, and of the host-level
    /// settings table when [`Capability::SECTION`] says there is one.
    const NAME: &'static str;
    /// The host-level table `Settings` is read from; `None` for a
    /// capability without backend settings (then a table of that name is
    /// refused as unknown).
    const SECTION: Option<&'static str>;
    /// Backend settings, from the host-level table.
    type Settings: Section + DeserializeOwned + Default;
    /// The grant as written in the config.
    type Grant: DeserializeOwned + Default;
    /// Per-component state, shared by all instances of one deployment.
    type Prepared: Send + Sync + 'static;
    /// Per-instance state, living in the instance's store.
    type Instance: Send + 'static;

    /// Builds the capability (its backend) once per host. Must not touch
    /// the network or lock files: `corral check` builds capabilities too.
    fn new(settings: Self::Settings, host: &HostContext<'_>) -> anyhow::Result<Self>;

    /// Whether components get this capability without a grant (logging,
    /// wasi:config, outbound HTTP's deny-all policy).
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
    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()>;

    /// Whether the capability's backend answers now, for the host's
    /// `/ready`. `None` when it has none that can be down.
    fn readiness(&self) -> Option<BoxFuture<'_, Result<(), Unready>>> {
        None
    }
}

/// Why a capability's backend is not ready, in plain words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unready(pub String);

/// Settings of a capability that has none.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Section for NoSettings {}

/// Where capability `C`'s per-instance state lives in [`InstanceCaps`];
/// implemented by the list for every capability.
pub trait Slot<C: Capability> {
    fn slot(&mut self) -> &mut Option<C::Instance>;
}

/// Capability `C`'s state in the instance behind `view`. Its imports are
/// linked only for components granted it, so a call can only come from an
/// instance that has the state: its absence is a host bug.
pub fn state_of<C: Capability, T: CapabilityView>(view: &mut T) -> &mut C::Instance
where
    InstanceCaps: Slot<C>,
{
    granted::<C>(view.caps())
}

/// [`state_of`], from the per-instance state itself.
pub fn granted<C: Capability>(caps: &mut InstanceCaps) -> &mut C::Instance
where
    InstanceCaps: Slot<C>,
{
    match caps.slot() {
        Some(state) => state,
        None => panic!(
            "capability {} is linked only for components granted it",
            C::NAME
        ),
    }
}

/// A grant's list of names (buckets, containers...): at least one, each
/// passing `check`. Errors name the component and `field`.
pub fn granted_names<E: std::fmt::Display>(
    component: &ComponentConfig,
    field: &str,
    names: Vec<String>,
    check: impl Fn(&str) -> Result<(), E>,
) -> Result<std::collections::BTreeSet<String>, ConfigError> {
    if names.is_empty() {
        return Err(component.invalid(field, "is empty; name at least one"));
    }
    for name in &names {
        check(name).map_err(|problem| component.invalid(field, problem))?;
    }
    Ok(names.into_iter().collect())
}

fn build<C: Capability>(host: &HostContext<'_>) -> anyhow::Result<C> {
    let settings = match C::SECTION {
        Some(section) => host.config.section::<C::Settings>(section)?,
        None => C::Settings::default(),
    };
    C::new(settings, host)
}

fn prepare_one<C: Capability>(
    capability: &C,
    component: &ComponentConfig,
) -> anyhow::Result<Option<Arc<C::Prepared>>> {
    let grant = match component.grants.get(C::NAME) {
        Some(toml::Value::Table(table)) => {
            component.parse_table(&format!("grants.{}", C::NAME), table)?
        }
        Some(_) => {
            return Err(component
                .invalid(&format!("grants.{}", C::NAME), "must be a table")
                .into());
        }
        None if C::granted_by_default() => C::Grant::default(),
        None => return Ok(None),
    };
    Ok(Some(Arc::new(capability.prepare(component, grant)?)))
}

fn link_if_granted<C: Capability, T: CapabilityView>(
    linker: &mut Linker<T>,
    prepared: &Option<Arc<C::Prepared>>,
) -> anyhow::Result<()> {
    if prepared.is_some() {
        C::add_to_linker(linker)?;
    }
    Ok(())
}

/// Generates, from one list of `field: Type` pairs, the structs that hold
/// every capability ([`Capabilities`]), a component's prepared grants
/// ([`Prepared`]) and an instance's state ([`InstanceCaps`]), and the walks
/// over them.
macro_rules! capabilities {
    ($($field:ident: $cap:ty),* $(,)?) => {
        /// Every capability of this host.
        pub struct Capabilities {
            $(pub $field: $cap,)*
        }

        /// A component's prepared grants: `None` where it has no grant.
        #[derive(Clone)]
        pub struct Prepared {
            $(pub $field: Option<Arc<<$cap as Capability>::Prepared>>,)*
        }

        /// Per-instance capability state: `None` where not granted.
        pub struct InstanceCaps {
            $(pub $field: Option<<$cap as Capability>::Instance>,)*
        }

        $(impl Slot<$cap> for InstanceCaps {
            fn slot(&mut self) -> &mut Option<<$cap as Capability>::Instance> {
                &mut self.$field
            }
        })*

        impl Capabilities {
            /// The grant names, in list order.
            pub const NAMES: &[&str] = &[$(<$cap as Capability>::NAME,)*];

            /// The host-level tables the capabilities read.
            pub fn sections() -> Vec<&'static str> {
                [$(<$cap as Capability>::SECTION,)*].into_iter().flatten().collect()
            }

            /// Builds every capability from its settings table.
            pub fn new(host: &HostContext<'_>) -> anyhow::Result<Self> {
                Ok(Self {
                    $($field: build::<$cap>(host)?,)*
                })
            }

            /// The readiness checks of every capability with a backend, by
            /// name.
            pub fn readiness(&self) -> Vec<(&'static str, BoxFuture<'_, Result<(), Unready>>)> {
                let mut checks = Vec::new();
                $(if let Some(check) = self.$field.readiness() {
                    checks.push((<$cap as Capability>::NAME, check));
                })*
                checks
            }

            /// Parses and checks every grant of `component`; an unknown or
            /// empty grant is an error, so that a typo never silently
            /// withholds a capability.
            pub fn prepare(&self, component: &ComponentConfig) -> anyhow::Result<Prepared> {
                check_grant_names(component)?;
                Ok(Prepared {
                    $($field: prepare_one(&self.$field, component)?,)*
                })
            }

            /// The linker for one component: WASI, the wasi:http types, and
            /// the capabilities it was granted.
            pub fn linker<T: CapabilityView>(
                engine: &wasmtime::Engine,
                prepared: &Prepared,
            ) -> anyhow::Result<Linker<T>> {
                let mut linker = Linker::new(engine);
                wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
                let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
                wasmtime_wasi_http::p2::bindings::http::types::add_to_linker::<
                    _,
                    wasmtime_wasi_http::WasiHttp,
                >(&mut linker, &options.into(), T::http)?;
                $(link_if_granted::<$cap, T>(&mut linker, &prepared.$field)?;)*
                Ok(linker)
            }
        }

        impl Prepared {
            pub fn instance(&self) -> InstanceCaps {
                InstanceCaps {
                    $($field: self.$field.as_ref().map(<$cap as Capability>::instance),)*
                }
            }
        }
    };
}

fn check_grant_names(component: &ComponentConfig) -> Result<(), ConfigError> {
    for (name, value) in &component.grants {
        if !Capabilities::NAMES.contains(&name.as_str()) {
            return Err(component.invalid(
                &format!("grants.{name}"),
                format!(
                    "unknown capability (known: {})",
                    Capabilities::NAMES.join(", ")
                ),
            ));
        }
        if value.as_table().is_some_and(toml::Table::is_empty) {
            return Err(component.invalid(
                &format!("grants.{name}"),
                "an empty grant configures nothing: remove it, or say what it grants",
            ));
        }
    }
    Ok(())
}

capabilities! {
    logging: logging::Logging,
    wasi_config: wasi_config::WasiConfig,
    keyvalue: keyvalue::KeyValue,
    messaging: messaging::Messaging,
    blobstore: blobstore::Blobstore,
    outbound_http: outbound_http::OutboundHttp,
    passwords: passwords::Passwords,
    tokens: tokens::TokensCapability,
}
