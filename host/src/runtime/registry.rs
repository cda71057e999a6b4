//! The live set of components and their versions: deploy, swap, roll back.
//!
//! Each component has a slot whose current deployment is an `ArcSwap`: a
//! request loads it once (a few nanoseconds, no lock) and keeps its `Arc`
//! until it finishes, so a swap never disturbs a request in flight; new
//! requests see the new version from the instant of the swap. Compiling and
//! checking a new version happens beside the running one, off the request
//! path, and a failure leaves the running version untouched.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use serde::Serialize;
use wasmtime::Engine;

use super::compile::CompileCache;
use super::deployment::{DeploySpec, Deployment};
use crate::capabilities::Capabilities;
use crate::config::{ComponentConfig, Config};

/// How many versions of a component are kept for rollback (current included).
const HISTORY: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no component named {0:?}")]
    UnknownComponent(String),
    #[error("component {0:?} has no previous version to roll back to")]
    NoPreviousVersion(String),
    #[error("deploy refused: {0:#}")]
    Refused(anyhow::Error),
}

struct Slot {
    config: ComponentConfig,
    current: ArcSwap<Deployment>,
    /// Oldest first; the last entry is the current deployment.
    history: parking_lot::Mutex<Vec<Arc<Deployment>>>,
    /// Serialises deploys and rollbacks of this component.
    deploying: tokio::sync::Mutex<u64>,
}

pub struct Registry {
    engine: Engine,
    cache: Arc<CompileCache>,
    capabilities: Capabilities,
    /// One permit per pooled instance slot, shared by every trigger: when
    /// all are busy, callers wait (backpressure) instead of failing.
    instance_slots: Arc<tokio::sync::Semaphore>,
    instance_name: String,
    slots: HashMap<String, Slot>,
}

/// A summary of one deployment, for the admin API and the CLI.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DeploymentInfo {
    pub name: String,
    pub version: u64,
    pub digest: String,
    pub routes: Vec<String>,
    pub since: String,
    pub source: String,
    pub compile_ms: f64,
    pub from_cache: bool,
}

impl From<&Deployment> for DeploymentInfo {
    fn from(d: &Deployment) -> Self {
        Self {
            name: d.component.clone(),
            version: d.version,
            digest: d.digest.clone(),
            routes: d.routes.clone(),
            since: d.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            source: d.source.clone(),
            compile_ms: d.compile_time.as_secs_f64() * 1000.0,
            from_cache: d.from_cache,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ComponentInfo {
    #[serde(flatten)]
    pub current: DeploymentInfo,
    /// Earlier versions still available to `rollback`, newest first.
    pub previous: Vec<DeploymentInfo>,
}

impl Registry {
    /// Compiles and deploys every component of `config` (version 1), with
    /// the host's `capabilities`.
    pub async fn start(
        config: &Config,
        engine: Engine,
        capabilities: Capabilities,
    ) -> anyhow::Result<Self> {
        let cache = Arc::new(CompileCache::new(
            &engine,
            config.runtime.state_dir.join("cache"),
        )?);
        let instance_name = gethostname::gethostname().to_string_lossy().into_owned();
        let mut registry = Self {
            engine,
            cache,
            capabilities,
            instance_slots: Arc::new(tokio::sync::Semaphore::new(
                config.runtime.max_instances as usize,
            )),
            instance_name,
            slots: HashMap::new(),
        };
        for component in &config.components {
            let wasm = std::fs::read(&component.wasm).with_context(|| {
                format!(
                    "component {:?}: reading {}",
                    component.name,
                    component.wasm.display()
                )
            })?;
            let source = component.wasm.display().to_string();
            let deployment = registry
                .build(component, 1, source, wasm)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            tracing::info!(
                component = %component.name,
                digest = %deployment.digest,
                compile_ms = deployment.compile_time.as_millis() as u64,
                cached = deployment.from_cache,
                "component ready"
            );
            registry.slots.insert(
                component.name.clone(),
                Slot {
                    config: component.clone(),
                    current: ArcSwap::new(deployment.clone()),
                    history: parking_lot::Mutex::new(vec![deployment]),
                    deploying: tokio::sync::Mutex::new(1),
                },
            );
        }
        Ok(registry)
    }

    /// The current deployment of `name`, for one request.
    pub fn current(&self, name: &str) -> Option<Arc<Deployment>> {
        self.slots.get(name).map(|slot| slot.current.load_full())
    }

    /// The instance slots every trigger takes a permit from.
    pub fn instance_slots(&self) -> Arc<tokio::sync::Semaphore> {
        self.instance_slots.clone()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    /// Replaces the running version of `name` with `wasm`. Compiles on a
    /// blocking thread, links, health-checks, then swaps atomically.
    pub async fn deploy(
        &self,
        name: &str,
        wasm: Vec<u8>,
        source: String,
    ) -> Result<DeploymentInfo, RegistryError> {
        let slot = self.slot(name)?;
        let mut last_version = slot.deploying.lock().await;
        let version = *last_version + 1;
        let deployment = self.build(&slot.config, version, source, wasm).await?;
        *last_version = version;
        slot.current.store(deployment.clone());
        let mut history = slot.history.lock();
        history.push(deployment.clone());
        if history.len() > HISTORY {
            history.remove(0);
        }
        tracing::info!(
            component = name,
            version,
            digest = %deployment.digest,
            compile_ms = deployment.compile_time.as_millis() as u64,
            cached = deployment.from_cache,
            "redeployed"
        );
        Ok(DeploymentInfo::from(deployment.as_ref()))
    }

    /// Reads `path` and deploys it (the `--watch` mode and tests use this).
    pub async fn deploy_file(
        &self,
        name: &str,
        path: &Path,
    ) -> Result<DeploymentInfo, RegistryError> {
        let wasm = std::fs::read(path)
            .with_context(|| format!("reading {}", path.display()))
            .map_err(RegistryError::Refused)?;
        self.deploy(name, wasm, path.display().to_string()).await
    }

    /// Makes the previous version current again; the rolled-back version is
    /// dropped from the history.
    pub async fn rollback(&self, name: &str) -> Result<DeploymentInfo, RegistryError> {
        let slot = self.slot(name)?;
        let _serialised = slot.deploying.lock().await;
        let mut history = slot.history.lock();
        if history.len() < 2 {
            return Err(RegistryError::NoPreviousVersion(name.to_owned()));
        }
        let dropped = history.pop().expect("checked above");
        let previous = history.last().expect("checked above").clone();
        slot.current.store(previous.clone());
        tracing::info!(
            component = name,
            from = dropped.version,
            to = previous.version,
            "rolled back"
        );
        Ok(DeploymentInfo::from(previous.as_ref()))
    }

    pub fn list(&self) -> Vec<ComponentInfo> {
        let mut list: Vec<ComponentInfo> = self
            .slots
            .values()
            .map(|slot| {
                let history = slot.history.lock();
                let current = slot.current.load();
                ComponentInfo {
                    current: DeploymentInfo::from(current.as_ref()),
                    previous: history
                        .iter()
                        .rev()
                        .filter(|d| d.version != current.version)
                        .map(|d| DeploymentInfo::from(d.as_ref()))
                        .collect(),
                }
            })
            .collect();
        list.sort_by(|a, b| a.current.name.cmp(&b.current.name));
        list
    }

    fn slot(&self, name: &str) -> Result<&Slot, RegistryError> {
        self.slots
            .get(name)
            .ok_or_else(|| RegistryError::UnknownComponent(name.to_owned()))
    }

    async fn build(
        &self,
        config: &ComponentConfig,
        version: u64,
        source: String,
        wasm: Vec<u8>,
    ) -> Result<Arc<Deployment>, RegistryError> {
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        // Compilation is CPU-heavy and blocking: keep it off the async
        // workers that serve requests.
        let compiled = tokio::task::spawn_blocking(move || cache.compile(&engine, &wasm))
            .await
            .context("compile task panicked")
            .and_then(|result| result)
            .with_context(|| format!("component {:?}", config.name))
            .map_err(RegistryError::Refused)?;
        Deployment::prepare(
            &self.engine,
            &self.capabilities,
            DeploySpec {
                config,
                version,
                source,
                instance_name: &self.instance_name,
            },
            compiled.component,
            compiled.digest,
            compiled.took,
            compiled.from_cache,
        )
        .await
        .map_err(RegistryError::Refused)
    }
}
