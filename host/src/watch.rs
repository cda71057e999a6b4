//! `corral up --watch`: redeploy a component when its .wasm file changes.
//!
//! Polling (twice a second) rather than inotify: it works the same on every
//! file system, including bind mounts and network shares, and a build that
//! rewrites the file in several steps is picked up once it is stable (same
//! size and mtime on two consecutive looks).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::runtime::Registry;

const POLL: Duration = Duration::from_millis(500);

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The files to watch: each component's configured wasm path.
pub fn files(config: &Config) -> Vec<(String, PathBuf)> {
    config
        .components
        .iter()
        .map(|c| (c.name.clone(), c.wasm.clone()))
        .collect()
}

pub async fn run(
    registry: Arc<Registry>,
    files: Vec<(String, PathBuf)>,
    stop: impl Future<Output = ()>,
) {
    let mut files: Vec<(String, PathBuf, Stamp, Stamp)> = files
        .into_iter()
        .map(|(name, path)| {
            let s = stamp(&path);
            (name, path, s, s)
        })
        .collect();
    tracing::info!(files = files.len(), "watching component files for changes");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(POLL) => {}
        }
        for (name, path, deployed, last_seen) in &mut files {
            let now = stamp(path);
            let stable = now == *last_seen;
            *last_seen = now;
            if now.is_none() || !stable || now == *deployed {
                continue;
            }
            *deployed = now;
            match registry.deploy_file(name, path).await {
                Ok(info) => {
                    tracing::info!(component = %name, version = info.version, "file changed: redeployed")
                }
                Err(e) => {
                    tracing::error!(component = %name, "file changed but the new version was refused: {e}")
                }
            }
        }
    }
}
