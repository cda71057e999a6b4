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

mod policy;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wasmtime::component::Linker;

pub use policy::{HostPattern, OutboundPolicy};

use super::Capability;
use crate::config::{ComponentConfig, Config};
use crate::runtime::InstanceState;

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
    type Grant = Grant;
    type Prepared = OutboundPolicy;
    type Instance = OutboundPolicy;

    fn new(_config: &Config) -> anyhow::Result<Self> {
        Ok(Self)
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

    /// wasi:http's outgoing handler is linked with wasi:http itself (see
    /// [`super::Capabilities::linker`]); the policy acts through the store's
    /// `WasiHttpHooks`.
    fn add_to_linker(_linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
        Ok(())
    }
}

impl OutboundHttp {
    /// Components without a grant still get a policy: one that denies.
    pub fn instance_or_deny(prepared: Option<&Arc<OutboundPolicy>>) -> OutboundPolicy {
        prepared.map_or_else(OutboundPolicy::deny_all, Self::instance)
    }
}
