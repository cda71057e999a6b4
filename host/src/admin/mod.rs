//! The admin API, on its own listener (loopback by default): list
//! components, redeploy one, roll one back. Every call needs the bearer
//! token.
//!
//! | method | path                               | does                      |
//! |--------|------------------------------------|---------------------------|
//! | GET    | `/v1/components`                   | list components, versions |
//! | PUT    | `/v1/components/{name}` (wasm body)| compile, check, swap      |
//! | POST   | `/v1/components/{name}/rollback`   | previous version back     |
//! | POST   | `/v1/queues/{queue}/redrive`       | dead letters back to work |
//! | GET    | `/ready`, `/live` (no token)       | backends answer / host runs |
//! | GET    | `/v1/access-log`                   | access log counters       |

pub mod queues;
pub mod ready;
pub mod token;

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;

use crate::access_log::AccessLog;
use crate::responses::{Body, HostError, json};
use crate::runtime::{Registry, RegistryError};
use crate::server::Handler;
use queues::Queues;

/// Largest component accepted by a redeploy.
const MAX_COMPONENT_BYTES: usize = 256 * 1024 * 1024;

pub struct AdminApi {
    registry: Arc<Registry>,
    queues: Queues,
    token: String,
    access_log: Arc<AccessLog>,
}

impl AdminApi {
    pub fn new(registry: Arc<Registry>, queues: Queues, token: String) -> Self {
        Self {
            registry,
            queues,
            token,
            access_log: AccessLog::disabled(),
        }
    }

    /// The access log whose counters `GET /v1/access-log` shows.
    pub fn with_access_log(mut self, access_log: Arc<AccessLog>) -> Self {
        self.access_log = access_log;
        self
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(given) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        token::constant_time_eq(given.trim().as_bytes(), self.token.as_bytes())
    }

    async fn route(&self, request: Request<Incoming>) -> Result<Response<Body>, HostError> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/ready") => {
                let (status, answer) = ready::check(self.registry.capabilities()).await;
                return Ok(json(status, &answer));
            }
            (&Method::GET, "/live") => {
                return Ok(json(StatusCode::OK, &serde_json::json!({ "live": true })));
            }
            _ => {}
        }
        if !self.authorized(&request) {
            return Err(HostError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid 'Authorization: Bearer <token>' header is required",
            )
            .field("authorization"));
        }
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (request.method().clone(), segments.as_slice()) {
            (Method::GET, ["v1", "components"]) => Ok(json(
                StatusCode::OK,
                &serde_json::to_value(self.registry.list()).unwrap(),
            )),
            (Method::GET, ["v1", "access-log"]) => Ok(json(
                StatusCode::OK,
                &serde_json::to_value(self.access_log.snapshot()).unwrap(),
            )),
            (Method::PUT, ["v1", "components", name]) => {
                let name = (*name).to_owned();
                let source = request
                    .headers()
                    .get("x-corral-source")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("admin upload")
                    .to_owned();
                let wasm = Limited::new(request.into_body(), MAX_COMPONENT_BYTES)
                    .collect()
                    .await
                    .map_err(|e| {
                        HostError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "bad_body",
                            format!("could not read the component (limit {MAX_COMPONENT_BYTES} bytes): {e}"),
                        )
                        .field("body")
                    })?
                    .to_bytes();
                let info = self
                    .registry
                    .deploy(&name, wasm.to_vec(), source)
                    .await
                    .map_err(registry_error)?;
                Ok(json(StatusCode::OK, &serde_json::to_value(info).unwrap()))
            }
            (Method::POST, ["v1", "components", name, "rollback"]) => {
                let info = self.registry.rollback(name).await.map_err(registry_error)?;
                Ok(json(StatusCode::OK, &serde_json::to_value(info).unwrap()))
            }
            (Method::POST, ["v1", "queues", queue, "redrive"]) => {
                let done = self.queues.redrive(queue, request.uri().query()).await?;
                Ok(json(StatusCode::OK, &serde_json::to_value(done).unwrap()))
            }
            _ => Err(HostError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no admin endpoint {} {path}", request.method()),
            )),
        }
    }
}

fn registry_error(error: RegistryError) -> HostError {
    let (status, code) = match &error {
        RegistryError::UnknownComponent(_) => (StatusCode::NOT_FOUND, "unknown_component"),
        RegistryError::NoPreviousVersion(_) => (StatusCode::CONFLICT, "no_previous_version"),
        RegistryError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "deploy_refused"),
    };
    HostError::new(status, code, error.to_string())
}

impl Handler for AdminApi {
    fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        async move {
            match self.route(request).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        }
    }
}
