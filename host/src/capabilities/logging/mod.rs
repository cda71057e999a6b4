//! `wasi:logging`: a component's log lines go to the host's tracing output
//! (stdout, tagged with the component) and, when its grant names a file, are
//! appended to that file too — the seed services keep their own
//! `app.log` on a volume.
//!
//! Every component gets this capability; the grant only adds the file:
//!
//! ```toml
//! [component.grants.logging]
//! file = "logs/status/app.log"
//! ```

mod file;
mod host;
mod sink;
mod stderr;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::Linker;

pub use sink::LogSink;
pub use stderr::ComponentStderr;

use super::{Capability, CapabilityView, HostContext, NoSettings};
use crate::config::ComponentConfig;

pub struct Logging {
    base_dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// File the component's lines are appended to, relative to the config.
    pub file: Option<PathBuf>,
}

/// The per-instance state: a handle on the component's shared sink.
pub struct LogHandle(pub(crate) Arc<LogSink>);

impl Capability for Logging {
    const NAME: &'static str = "logging";
    const SECTION: Option<&'static str> = None;
    type Settings = NoSettings;
    type Grant = Grant;
    type Prepared = LogSink;
    type Instance = LogHandle;

    fn new(_settings: NoSettings, host: &HostContext<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            base_dir: host.config.base_dir.clone(),
        })
    }

    fn granted_by_default() -> bool {
        true
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<LogSink> {
        let file = grant.file.map(|f| self.base_dir.join(f));
        LogSink::open(&component.name, file.as_deref())
    }

    fn instance(prepared: &Arc<LogSink>) -> LogHandle {
        LogHandle(prepared.clone())
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }
}
