//! `wasi:logging/logging` for one instance: each line goes to the
//! component's shared sink.

use wasmtime::component::{HasSelf, Linker};

use super::{LogHandle, Logging, sink};
use crate::bindings::wasi::logging::logging::{self as wit, Level};
use crate::capabilities::{CapabilityView, state_of};

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<_, HasSelf<LogHandle>>(linker, state_of::<Logging, T>)?;
    Ok(())
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
