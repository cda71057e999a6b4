//! One `GET` through a component's `wasi:http` handler, in-process: a fresh
//! store and instance, as the HTTP trigger does, without sockets. Shared by
//! the `runtime` and `capabilities` benches.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use corral::runtime::deployment::Deployment;

/// Sends `GET uri` to `deployment` and returns the status and whole body.
pub async fn get(
    deployment: &Deployment,
    uri: &str,
    deadline: Instant,
) -> anyhow::Result<(u16, Bytes)> {
    let proxy_pre = deployment
        .entrypoints
        .http
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{} has no routes", deployment.component))?;
    let mut store = deployment.new_store(deadline);
    let request = http::Request::get(uri)
        .body(Empty::<Bytes>::new().map_err(|never| -> ErrorCode { match never {} }))?;
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let outparam = store.data_mut().http().new_response_outparam(sender)?;
    let proxy = proxy_pre.instantiate_async(&mut store).await?;
    proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut store, incoming, outparam)
        .await?;
    let response = receiver
        .await?
        .map_err(|code| anyhow::anyhow!("{} answered an error: {code:?}", deployment.component))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading {}'s body: {e:?}", deployment.component))?
        .to_bytes();
    drop(store);
    Ok((status, body))
}
