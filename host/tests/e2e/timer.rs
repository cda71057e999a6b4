//! The timer trigger and the `heartbeat` component (seed 000's client):
//! ticks on schedule, outbound HTTP through the grant, and each outcome —
//! success, connection error, timeout, denied — in its log file.

use std::time::{Duration, Instant};

use crate::common::*;

fn heartbeat(status_url: &str, grant_hosts: &str) -> String {
    format!(
        r#"
[[component]]
name = "heartbeat"
wasm = "{wasm}"
timer = {{ interval_ms = 200, immediate = true }}
limits = {{ timeout_ms = 3000 }}
config = {{ status_url = "{status_url}", timeout_ms = "500" }}
grants.logging = {{ file = "logs/client/app.log" }}
grants.messaging = {{ publish = ["logs"] }}
grants.outbound_http = {{ allowed_hosts = [{grant_hosts}] }}
"#,
        wasm = component_artifacts::HEARTBEAT,
    )
}

/// Waits until the log file has at least `n` lines containing `needle`.
fn wait_for_lines(host: &Host, needle: &str, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(host.path("logs/client/app.log")).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} {needle:?} lines after {within:?}:\n{text}\n--- host output:\n{}",
            host.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn heartbeat_logs_success_then_connection_errors() {
    let status = Host::start(&standard_components());
    let url = status.url("/status");
    let client = Host::start(&heartbeat(&url, "\"127.0.0.1\""));

    let ok = wait_for_lines(&client, "success", 3, Duration::from_secs(20));
    assert!(ok[0].contains("\"status\":\"ok\""), "{}", ok[0]);
    assert!(ok[0].contains("latency_ms="), "{}", ok[0]);
    assert!(ok[0].contains(" INFO heartbeat "), "{}", ok[0]);

    drop(status); // the server goes away
    let failed = wait_for_lines(&client, "connection_error", 2, Duration::from_secs(20));
    assert!(failed[0].contains(" WARN heartbeat "), "{}", failed[0]);
}

#[test]
fn heartbeat_reports_a_timeout_when_the_server_never_answers() {
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let _holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(64) {
            held.push(stream);
        }
    });
    let client = Host::start(&heartbeat(
        &format!("http://{addr}/status"),
        "\"127.0.0.1\"",
    ));
    let lines = wait_for_lines(&client, "timeout", 1, Duration::from_secs(20));
    assert!(lines[0].contains("after_ms="), "{}", lines[0]);
}

#[test]
fn heartbeat_without_a_grant_for_the_host_is_denied() {
    let status = Host::start(&standard_components());
    let client = Host::start(&heartbeat(&status.url("/status"), "\"example.com\""));
    let lines = wait_for_lines(&client, "denied", 1, Duration::from_secs(20));
    assert!(lines[0].contains("error url="), "{}", lines[0]);
    assert!(
        !std::fs::read_to_string(client.path("logs/client/app.log"))
            .unwrap()
            .contains("success"),
        "no request may get through"
    );
}

#[test]
fn ticks_keep_their_cadence() {
    let status = Host::start(&standard_components());
    let client = Host::start(&heartbeat(&status.url("/status"), "\"127.0.0.1\""));
    wait_for_lines(&client, "success", 1, Duration::from_secs(20));
    let started = Instant::now();
    let before = wait_for_lines(&client, "success", 1, Duration::ZERO).len();
    std::thread::sleep(Duration::from_secs(2));
    let after = wait_for_lines(&client, "success", 1, Duration::ZERO).len();
    let ticks = after - before;
    let expected = started.elapsed().as_millis() as usize / 200;
    // Loose bounds: a loaded CI machine may skip a slot, never add one.
    assert!(
        ticks >= expected / 2 && ticks <= expected + 1,
        "{ticks} ticks in {:?} at 200 ms",
        started.elapsed()
    );
    // The calls really reached the status component.
    status.wait_log("logs/status/app.log", &["GET /status -> 200"]);
}

#[test]
fn a_timer_component_without_the_export_is_refused() {
    // `hello` exports only wasi:http: giving it a timer must fail the start.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("corral.toml");
    std::fs::write(
        &config,
        format!(
            "[[component]]\nname = \"hello\"\nwasm = \"{}\"\ntimer = {{ interval_ms = 1000 }}\n",
            component_artifacts::HELLO
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["up", "--config"])
        .arg(&config)
        .env("CORRAL_LISTEN", "127.0.0.1:0")
        .env("CORRAL_ADMIN_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timer-handler"), "{stderr}");
}
