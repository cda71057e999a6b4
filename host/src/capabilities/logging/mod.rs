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

mod sink;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::{HasSelf, Linker};

pub use sink::LogSink;

use super::Capability;
use crate::config::{ComponentConfig, Config};
use crate::runtime::InstanceState;

use crate::bindings::wasi::logging::logging::{self as wit, Level};

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
pub struct LogHandle(Arc<LogSink>);

impl Capability for Logging {
    const NAME: &'static str = "logging";
    type Grant = Grant;
    type Prepared = LogSink;
    type Instance = LogHandle;

    fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            base_dir: config.base_dir.clone(),
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

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
        wit::add_to_linker::<_, HasSelf<LogHandle>>(linker, |state| {
            state
                .caps
                .logging
                .as_mut()
                .expect("logging is linked only for components that have it")
        })?;
        Ok(())
    }
}

impl wit::Host for LogHandle {
    async fn log(
        &mut self,
        level: Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => sink::Level::Trace,
            Level::Debug => sink::Level::Debug,
            Level::Info => sink::Level::Info,
            Level::Warn => sink::Level::Warn,
            Level::Error => sink::Level::Error,
            Level::Critical => sink::Level::Critical,
        };
        self.0.write(level, &context, &message);
        Ok(())
    }
}
