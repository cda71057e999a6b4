//! One request through one fresh component instance.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::{Semaphore, oneshot};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use super::error_response::error_response;
use super::{Gateway, Router, body};
use crate::access_log::AccessLog;
use crate::responses::{Body, HostError};
use crate::runtime::Registry;
use crate::server::Handler;
use crate::triggers::invocation;

pub struct HttpTrigger {
    registry: Arc<Registry>,
    router: Router,
    max_body_bytes: u64,
    /// The registry's instance slots: when all are busy, requests wait
    /// here (backpressure) instead of failing instantiation.
    instances: Arc<Semaphore>,
    /// Records every request (off unless [`HttpTrigger::with_access_log`]).
    access_log: Arc<AccessLog>,
    /// Token checks, before a slot is taken (`auth.rs`).
    gateway: Gateway,
}

impl HttpTrigger {
    pub fn new(registry: Arc<Registry>, router: Router, max_body_bytes: u64) -> Self {
        Self {
            instances: registry.instance_slots(),
            registry,
            router,
            max_body_bytes,
            access_log: AccessLog::disabled(),
            gateway: Gateway::default(),
        }
    }

    pub fn with_access_log(mut self, access_log: Arc<AccessLog>) -> Self {
        self.access_log = access_log;
        self
    }

    /// Checks tokens where components' `auth` tables ask for them.
    pub fn with_gateway(mut self, gateway: Gateway) -> Self {
        self.gateway = gateway;
        self
    }

    async fn dispatch<B>(&self, mut request: Request<B>) -> Result<Response<Body>, HostError>
    where
        B: http_body::Body<Data = bytes::Bytes, Error = hyper::Error> + Send + 'static,
    {
        let path = request.uri().path();
        let name = self.router.route(path).ok_or_else(|| {
            HostError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                format!("no component is routed at {path}"),
            )
        })?;
        let deployment = self
            .registry
            .current(name)
            .expect("the router only names configured components");
        self.gateway.admit(name, &mut request)?;
        let started = Instant::now();
        let deadline = started + deployment.limits.timeout();
        let request = body::limit(request, self.max_body_bytes)
            .await
            .map_err(|e| e.component(name))?;
        // A free slot is the common case: take it without arming a timer.
        let permit = match self.instances.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tokio::time::timeout_at(deadline.into(), self.instances.clone().acquire_owned())
                    .await
                    .map_err(|_| {
                        HostError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "overloaded",
                            "every instance slot stayed busy for the whole request time limit",
                        )
                        .component(name)
                    })?
                    .expect("the semaphore is never closed")
            }
        };

        let mut store = deployment.new_store(deadline);
        let (sender, mut receiver) = oneshot::channel();
        let to_host_error = |e: wasmtime::Error| error_response(name, deployment.version, &e);
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(|e| {
                HostError::new(StatusCode::BAD_REQUEST, "bad_request", format!("{e:#}"))
                    .component(name)
            })?;
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(to_host_error)?;
        let pre = deployment
            .entrypoints
            .http
            .clone()
            .expect("only components with routes are routed to");
        let limit = deployment.limits.timeout();
        let run = async move {
            let _permit = permit;
            let call = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            invocation::within(deadline, limit, call).await
        };
        // Poll the handler and the response together in this task. Most
        // handlers finish (body written into its buffer) before we look at
        // the response, which then costs no extra task; a handler still
        // streaming its body when the response head is ready continues on a
        // task of its own while hyper sends what it writes.
        let mut run = Box::pin(run);
        tokio::select! {
            biased;
            result = &mut run => match receiver.try_recv() {
                Ok(response) => {
                    if let Err(e) = result {
                        error_response(name, deployment.version, &e);
                    }
                    guest_response(name, response)
                }
                Err(_) => Err(match result {
                    Ok(()) => HostError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "no_response",
                        "the component returned without setting a response",
                    )
                    .component(name),
                    Err(e) => to_host_error(e),
                }),
            },
            response = &mut receiver => match response {
                Ok(response) => {
                    let (component, version) = (name.to_owned(), deployment.version);
                    tokio::spawn(async move {
                        if let Err(e) = run.await {
                            error_response(&component, version, &e);
                        }
                    });
                    guest_response(name, response)
                }
                // The outparam was dropped unset: the handler's own result
                // says why.
                Err(_) => Err(match run.await {
                    Ok(()) => HostError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "no_response",
                        "the component dropped its response without setting it",
                    )
                    .component(name),
                    Err(e) => to_host_error(e),
                }),
            },
        }
    }
}

fn guest_response(
    name: &str,
    response: Result<Response<Body>, ErrorCode>,
) -> Result<Response<Body>, HostError> {
    response.map_err(|code| {
        HostError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "component_error",
            format!("the component answered with an error: {code:?}"),
        )
        .component(name)
    })
}

impl Handler for HttpTrigger {
    fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let served = self.router.matched(request.uri().path());
        let this = self.clone();
        self.access_log
            .observe(request, served, |request| async move {
                match this.dispatch(request).await {
                    Ok(response) => response,
                    Err(error) => error.into_response(),
                }
            })
    }
}
