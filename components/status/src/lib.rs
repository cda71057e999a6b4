//! `status`: the platform's health endpoint (seed 000's server).
//!
//! `GET /status` (and `/` when nothing else owns it) answers
//! `{"status", "message", "instance", "component_version", "digest",
//! "build", "timestamp"}`; every request it serves is logged, and so lands in
//! its log file (`[component.grants.logging] file`).

use corral_sdk::http::{Error, Handler, Request, Response};
use corral_sdk::{log, time};

struct Status;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

impl Handler for Status {
    fn handle(request: Request) -> Result<Response, Error> {
        let response = match (request.method.as_str(), request.path.as_str()) {
            ("GET" | "HEAD", "/" | "/status" | "/status/") => Response::json(
                200,
                &serde_json::json!({
                    "status": "ok",
                    "message": env("STATUS_MESSAGE", "service is up"),
                    "instance": env("CORRAL_INSTANCE", "unknown"),
                    "component_version": env("CORRAL_COMPONENT_VERSION", "unknown"),
                    "digest": env("CORRAL_COMPONENT_DIGEST", "unknown"),
                    "build": env!("CARGO_PKG_VERSION"),
                    "timestamp": time::now_rfc3339(),
                }),
            ),
            (_, "/" | "/status" | "/status/") => {
                Response::method_not_allowed(&request.method, "GET")
            }
            (_, path) => Response::not_found(path),
        };
        log::info(
            "request",
            &format!(
                "{} {} -> {} ua={:?}",
                request.method,
                request.path,
                response.status,
                request.header("user-agent").unwrap_or("-")
            ),
        );
        Ok(response)
    }
}

corral_sdk::http_component!(Status);
