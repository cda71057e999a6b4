//! `heartbeat`: seed 000's client. On every tick of its timer trigger (every
//! 3 s by default) it calls the status URL through the host's outbound HTTP
//! and logs the result — success with latency and the JSON it got, a
//! connection error, or a timeout — to its log file and the host's log.
//!
//! Configuration (`[component.config]`):
//! - `status_url`: what to call (default `http://127.0.0.1:8080/status`);
//! - `timeout_ms`: how long to wait for an answer (default 2000).
//!
//! The host must grant `outbound_http` to the status URL's host.

use std::time::{Duration, Instant};

use corral_sdk::audit::Record;
use corral_sdk::client::{ClientError, ClientRequest};
use corral_sdk::timer::{Error, TimerHandler};
use corral_sdk::{config, log};

struct Heartbeat;

/// One probe's outcome, as one log line.
fn probe(url: &str, timeout: Duration) -> (bool, String) {
    let started = Instant::now();
    let result = ClientRequest::get(url).timeout(timeout).send();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(response) if (200..300).contains(&response.status) => {
            let body = String::from_utf8_lossy(&response.body);
            let json = serde_json::from_str::<serde_json::Value>(&body)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| format!("(not JSON) {}", body.trim()));
            (
                true,
                format!(
                    "success url={url} status={} latency_ms={ms:.1} body={json}",
                    response.status
                ),
            )
        }
        Ok(response) => (
            false,
            format!(
                "http_error url={url} status={} latency_ms={ms:.1} body={}",
                response.status,
                String::from_utf8_lossy(&response.body).trim()
            ),
        ),
        Err(ClientError::Timeout(detail)) => (
            false,
            format!("timeout url={url} after_ms={ms:.1} ({detail})"),
        ),
        Err(ClientError::Connection(detail)) => (
            false,
            format!("connection_error url={url} after_ms={ms:.1} ({detail})"),
        ),
        Err(other) => (false, format!("error url={url} after_ms={ms:.1} ({other})")),
    }
}

impl TimerHandler for Heartbeat {
    fn tick(_scheduled_at_ms: u64) -> Result<(), Error> {
        let url = config::get_or("status_url", "http://127.0.0.1:8080/status");
        let timeout_ms = config::get("timeout_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let (ok, line) = probe(&url, Duration::from_millis(timeout_ms));
        if ok {
            log::info("heartbeat", &line);
        } else {
            log::warn("heartbeat", &line);
        }
        // And to the log system, one record per probe (a log system that is
        // down costs a warning in this component's log).
        let record =
            Record::new("heartbeat_service", "-", "probe_status").with("detail", line.clone());
        match ok {
            true => record,
            false => record.failure(line),
        }
        .send();
        // A failed probe is the expected news of this job, not a failure of
        // the job itself: the tick succeeded in finding it out.
        Ok(())
    }
}

corral_sdk::timer_component!(Heartbeat);
