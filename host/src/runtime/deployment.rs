//! One deployed version of one component: compiled, linked, checked, ready
//! to instantiate per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use wasmtime::component::{Component, InstancePre};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::InstanceState;
use crate::bindings::{queue_batch_handler, queue_handler, timer_handler};
use crate::capabilities::logging::ComponentStderr;
use crate::capabilities::{Capabilities, Prepared};
use crate::config::{ComponentConfig, Limits};

/// Raised from the epoch callback when a request has used up its time.
#[derive(Debug, thiserror::Error)]
#[error("request exceeded the component's time limit of {0:?}")]
pub struct TimeLimitExceeded(pub Duration);

pub struct Deployment {
    pub component: String,
    /// 1 for the version the host started with, +1 per redeploy.
    pub version: u64,
    pub digest: String,
    pub since: DateTime<Utc>,
    /// Where the bytes came from (a path, or the admin API).
    pub source: String,
    pub routes: Vec<String>,
    pub limits: Limits,
    pub compile_time: Duration,
    pub from_cache: bool,
    pre: InstancePre<InstanceState>,
    /// The exports of the triggers configured for this component, looked
    /// up once at deploy time.
    pub entrypoints: Entrypoints,
    env: Vec<(String, String)>,
    caps: Prepared,
}

/// How each configured trigger enters the component. A trigger that is not
/// configured has `None`; a configured one whose export is missing refuses
/// the deploy.
pub struct Entrypoints {
    pub http: Option<ProxyPre<InstanceState>>,
    pub queue: Option<QueueEntry>,
    pub timer: Option<timer_handler::GuestIndices>,
}

/// How the queue trigger calls a component: one message per instance
/// (`queue-handler`) or a batch per instance (`queue-batch-handler`).
pub enum QueueEntry {
    Single(queue_handler::GuestIndices),
    Batch(queue_batch_handler::GuestIndices),
}

impl Entrypoints {
    fn find(config: &ComponentConfig, pre: &InstancePre<InstanceState>) -> anyhow::Result<Self> {
        let name = &config.name;
        let http = if config.routes.is_empty() {
            None
        } else {
            Some(ProxyPre::new(pre.clone()).map_err(anyhow::Error::from).with_context(|| {
                format!(
                    "component {name:?} has routes but does not export wasi:http/incoming-handler@0.2.x"
                )
            })?)
        };
        let queue = match &config.queue {
            None => None,
            // A component exporting both is called in batches.
            Some(_) => match queue_batch_handler::GuestIndices::new(pre) {
                Ok(batch) => Some(QueueEntry::Batch(batch)),
                Err(_) => Some(QueueEntry::Single(
                    queue_handler::GuestIndices::new(pre)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!(
                                "component {name:?} has a queue trigger but exports neither corral:platform/queue-handler nor corral:platform/queue-batch-handler"
                            )
                        })?,
                )),
            },
        };
        let timer = match &config.timer {
            None => None,
            Some(_) => Some(
                timer_handler::GuestIndices::new(pre)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "component {name:?} has a timer trigger but does not export corral:platform/timer-handler"
                        )
                    })?,
            ),
        };
        Ok(Self { http, queue, timer })
    }
}

/// What a deploy needs to know besides the bytes.
pub struct DeploySpec<'a> {
    pub config: &'a ComponentConfig,
    pub version: u64,
    pub source: String,
    pub instance_name: &'a str,
}

impl Deployment {
    /// Links `component` for `spec.config`, type-checks the exports its
    /// triggers need and instantiates it once as a health check. Any
    /// failure refuses the deployment; nothing is swapped.
    pub async fn prepare(
        engine: &Engine,
        capabilities: &Capabilities,
        spec: DeploySpec<'_>,
        component: Component,
        digest: String,
        compile_time: Duration,
        from_cache: bool,
    ) -> anyhow::Result<Arc<Self>> {
        let config = spec.config;
        let caps = capabilities.prepare(config)?;
        let linker = Capabilities::linker::<InstanceState>(engine, &caps)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
            format!(
                "component {:?} imports something this host does not provide or that it was not granted",
                config.name
            )
        })?;
        let entrypoints = Entrypoints::find(config, &pre)?;
        let mut env: Vec<(String, String)> = config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push(("CORRAL_COMPONENT".into(), config.name.clone()));
        env.push((
            "CORRAL_COMPONENT_VERSION".into(),
            format!("v{}", spec.version),
        ));
        env.push(("CORRAL_COMPONENT_DIGEST".into(), digest.clone()));
        env.push(("CORRAL_INSTANCE".into(), spec.instance_name.to_owned()));
        let deployment = Arc::new(Self {
            component: config.name.clone(),
            version: spec.version,
            digest,
            since: Utc::now(),
            source: spec.source,
            routes: config.routes.clone(),
            limits: config.limits(),
            compile_time,
            from_cache,
            pre,
            entrypoints,
            env,
            caps,
        });
        deployment.health_check().await?;
        Ok(deployment)
    }

    /// Instantiates once without calling the handler: runs the component's
    /// start-up code (data segments, start functions) under its limits.
    async fn health_check(&self) -> anyhow::Result<()> {
        let mut store = self.new_store(Instant::now() + self.limits.timeout());
        self.pre
            .instantiate_async(&mut store)
            .await
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component {:?} failed to instantiate", self.component))?;
        Ok(())
    }

    /// A fresh store for one request, bounded by `deadline`.
    pub fn new_store(&self, deadline: Instant) -> Store<InstanceState> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env);
        // The guest's stderr becomes its log lines: tagged, escaped and
        // bounded per instance (see `ComponentStderr`), not the host's own
        // output. Every component has the logging capability.
        if let Some(sink) = &self.caps.logging {
            wasi.stderr(ComponentStderr::new(sink.clone()));
        }
        let state = InstanceState::new(
            wasi.build(),
            self.limits.memory_bytes(),
            self.caps.instance(),
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // Check the clock at every epoch tick and yield to tokio, so that a
        // guest spinning in a loop neither blocks a worker thread nor
        // outlives its deadline.
        let limit = self.limits.timeout();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(TimeLimitExceeded(limit)))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    pub fn pre(&self) -> &InstancePre<InstanceState> {
        &self.pre
    }
}
