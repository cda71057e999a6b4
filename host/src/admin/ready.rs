//! `GET /ready`: whether this host can do its work now, for load balancers,
//! compose health checks and Kubernetes readiness probes. Unlike the
//! components' own `/status` (the seed's JSON, answered by a component
//! whatever the backends do), it asks every backend a capability uses:
//! one key-value read, one blob store metadata read, a broker connection.
//! 200 when all answer, 503 naming the ones that do not. No token: it
//! tells nothing but up or down, and probes carry none.
//!
//! `GET /live` answers 200 as long as the admin listener runs: restart the
//! host only when that fails, not when a backend is down (a restart would
//! not bring Redis back).

use std::time::Duration;

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::capabilities::Capabilities;

/// How long one backend may take to answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs every check at once; the status and the JSON answer.
pub async fn check(capabilities: &Capabilities) -> (StatusCode, Value) {
    let checks = capabilities.readiness();
    let names: Vec<&str> = checks.iter().map(|(name, _)| *name).collect();
    let results = futures::future::join_all(
        checks
            .into_iter()
            .map(|(_, check)| tokio::time::timeout(CHECK_TIMEOUT, check)),
    )
    .await;
    let mut ready = true;
    let mut answers = Map::new();
    for (name, result) in names.into_iter().zip(results) {
        let answer = match result {
            Ok(Ok(())) => json!({ "ok": true }),
            Ok(Err(unready)) => json!({ "ok": false, "error": unready.to_string() }),
            Err(_) => json!({
                "ok": false,
                "error": format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
            }),
        };
        ready &= answer["ok"] == true;
        answers.insert(name.to_owned(), answer);
    }
    let status = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, json!({ "ready": ready, "checks": answers }))
}
