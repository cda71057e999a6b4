//! Where one component's log lines end up.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

/// A component's log destination, shared by all its instances.
pub struct LogSink {
    component: String,
    file: Option<(PathBuf, Mutex<File>)>,
}

impl LogSink {
    pub fn open(component: &str, file: Option<&Path>) -> anyhow::Result<Self> {
        let file = match file {
            None => None,
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("creating log directory {} for {component:?}", dir.display())
                    })?;
                }
                let handle = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| {
                        format!("opening log file {} for {component:?}", path.display())
                    })?;
                Some((path.to_owned(), Mutex::new(handle)))
            }
        };
        Ok(Self {
            component: component.to_owned(),
            file,
        })
    }

    pub fn write(&self, level: Level, context: &str, message: &str) {
        let component = self.component.as_str();
        match level {
            Level::Trace => tracing::trace!(component, context, "{message}"),
            Level::Debug => tracing::debug!(component, context, "{message}"),
            Level::Info => tracing::info!(component, context, "{message}"),
            Level::Warn => tracing::warn!(component, context, "{message}"),
            Level::Error | Level::Critical => tracing::error!(component, context, "{message}"),
        }
        if let Some((path, file)) = &self.file {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let context = if context.is_empty() { "-" } else { context };
            // One write per line: with O_APPEND concurrent instances never
            // interleave within a line.
            let line = format!("{now} {} {context} {message}\n", level.as_str());
            let result = file
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .write_all(line.as_bytes());
            if let Err(e) = result {
                tracing::error!(component, file = %path.display(), "cannot write log line: {e}");
            }
        }
    }
}
