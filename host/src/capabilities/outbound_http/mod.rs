//! Outbound HTTP (`wasi:http/outgoing-handler`) behind a per-component
//! allow-list: deny by default.
//!
//! ```toml
//! [component.grants.outbound_http]
//! allowed_hosts = ["127.0.0.1:8080", "dummyjson.com", "*.example.com"]
//! connect_timeout_ms = 5000
//! response_timeout_ms = 10000
//! ```
//!
//! A host pattern without a port matches any port; `*.example.com` matches
//! subdomains (not `example.com` itself). Anything else gets the WASI error
//! `HTTP-request-denied` without a connection being attempted.
//!
//! Unlike the other capabilities, every component gets
//! `wasi:http/outgoing-handler` linked: it is part of `wasi:http/proxy`, so
//! components built for `wasmtime serve` or Spin import it whether or not
//! they call it, and refusing them at deploy time would refuse plain proxy
//! components. A component without a grant gets the default grant instead:
//! an empty allow-list, which denies every request at call time.

mod host;
mod policy;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wasmtime::component::Linker;

pub use policy::{HostPattern, OutboundPolicy};

use super::{Capability, CapabilityView, HostContext, NoSettings};
use crate::config::ComponentConfig;

pub struct OutboundHttp;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    pub connect_timeout_ms: Option<u64>,
    pub response_timeout_ms: Option<u64>,
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

impl Capability for OutboundHttp {
    const NAME: &'static str = "outbound_http";
    const SECTION: Option<&'static str> = None;
    type Settings = NoSettings;
    type Grant = Grant;
    type Prepared = OutboundPolicy;
    type Instance = OutboundPolicy;

    fn new(_settings: NoSettings, _host: &HostContext<'_>) -> anyhow::Result<Self> {
        Ok(Self)
    }

    /// Every component has a policy; without a grant it allows nothing.
    fn granted_by_default() -> bool {
        true
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<OutboundPolicy> {
        let hosts = grant
            .allowed_hosts
            .iter()
            .map(|h| {
                HostPattern::parse(h).map_err(|problem| {
                    anyhow::anyhow!(
                        "component {:?}: grants.outbound_http.allowed_hosts: {h:?}: {problem}",
                        component.name
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(OutboundPolicy::new(
            hosts,
            grant
                .connect_timeout_ms
                .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis),
            grant
                .response_timeout_ms
                .map_or(DEFAULT_RESPONSE_TIMEOUT, Duration::from_millis),
        ))
    }

    fn instance(prepared: &Arc<OutboundPolicy>) -> OutboundPolicy {
        prepared.as_ref().clone()
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }
}
