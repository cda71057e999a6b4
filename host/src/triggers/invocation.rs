//! One call into a fresh instance, for the event triggers (queue, timer).
//!
//! The HTTP trigger has its own path (it streams the response while the
//! handler runs); the event triggers all do the same thing: take an
//! instance slot, build a store bounded by the component's time limit,
//! instantiate, call one export, drop everything.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::Instance;

use crate::runtime::deployment::Deployment;
use crate::runtime::{InstanceState, Registry, TimeLimitExceeded};

/// Instantiates `deployment` and runs `call` on it, all within the
/// component's time limit (CPU through epochs, waiting through a timer).
pub async fn call<T, F>(
    registry: &Registry,
    deployment: &Arc<Deployment>,
    call: F,
) -> wasmtime::Result<T>
where
    F: AsyncFnOnce(&mut Store<InstanceState>, Instance) -> wasmtime::Result<T>,
{
    let limit = deployment.limits.timeout();
    let deadline = Instant::now() + limit;
    let run = async {
        let _permit = registry
            .instance_slots()
            .acquire_owned()
            .await
            .expect("the instance semaphore is never closed");
        let mut store = deployment.new_store(deadline);
        let instance = deployment.pre().instantiate_async(&mut store).await?;
        call(&mut store, instance).await
    };
    within(deadline, limit, run).await
}

/// Runs `run` until `deadline`; past it, the error is the component's
/// time limit (`limit`), which the triggers answer as a timeout.
pub(crate) async fn within<T>(
    deadline: Instant,
    limit: std::time::Duration,
    run: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    match tokio::time::timeout_at(deadline.into(), run).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Error::new(TimeLimitExceeded(limit))),
    }
}
