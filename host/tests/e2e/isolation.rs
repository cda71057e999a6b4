//! A misbehaving component hurts only its own request.

use std::time::{Duration, Instant};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_loop_and_memory_bomb_fail_only_their_own_request() {
    let host = Host::start(&standard_components());
    let http = Http::new();

    let reply = http.get(&host.url("/misbehave/trap")).await;
    let json = assert_error(&reply, 500, "component_trap");
    assert_eq!(json["error"]["component"], "misbehave");

    let started = Instant::now();
    let reply = http.get(&host.url("/misbehave/loop")).await;
    assert_error(&reply, 504, "timeout");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "cut off before its limit"
    );

    let reply = http.get(&host.url("/misbehave/memory")).await;
    let json = assert_error(&reply, 500, "memory_limit_exceeded");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16777216"),
        "{json}"
    );

    // The same component serves its next request from a fresh instance,
    // and the others never noticed.
    assert_eq!(http.get(&host.url("/misbehave/ok")).await.status, 200);
    assert_eq!(http.get(&host.url("/status")).await.status, 200);
    let output = host.output();
    assert!(
        output.contains("call failed"),
        "failures are logged:\n{output}"
    );
}

/// A guest's stderr (here its panic message) reaches the host's output as
/// the component's log line, tagged with its name and on one line, not as
/// raw bytes in the host's stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_stderr_becomes_tagged_log_lines() {
    let host = Host::start(&standard_components());
    let http = Http::new();
    assert_eq!(http.get(&host.url("/misbehave/trap")).await.status, 500);
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let output = host.output();
        if let Some(line) = output
            .lines()
            .find(|l| l.contains("misbehaving on purpose"))
            .map(str::to_owned)
        {
            break line;
        }
        assert!(Instant::now() < deadline, "no panic message in:\n{output}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("component=\"misbehave\""), "{line}");
    assert!(line.contains("context=\"stderr\""), "{line}");
}

/// Each request gets memory in the state the module starts in: nothing a
/// previous request wrote (data segment or heap) survives, also after a
/// request that blew its memory limit, and also when requests overlap and
/// pool slots are reused (released slots are reset in place, see
/// `runtime::engine::pooling`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_memory_survives_from_one_request_to_the_next() {
    let host = Host::start(&standard_components());
    let http = Http::new();
    let url = host.url("/misbehave/count");
    let check = |reply: &Reply| {
        let json = reply.json();
        assert_eq!(reply.status, 200, "{json}");
        assert_eq!(json["static"], 1, "{json}");
        assert_eq!(json["heap"], 1, "{json}");
    };
    for _ in 0..20 {
        check(&http.get(&url).await);
    }
    let reply = http.get(&host.url("/misbehave/memory")).await;
    assert_error(&reply, 500, "memory_limit_exceeded");
    for _ in 0..5 {
        check(&http.get(&url).await);
    }
    let replies: Vec<_> = (0..64)
        .map(|_| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move { http.get(&url).await })
        })
        .collect();
    for reply in replies {
        check(&reply.await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loops_do_not_starve_other_components() {
    // A long limit, so the loops surely still spin while status answers even
    // on a loaded machine.
    let components = standard_components().replace("timeout_ms = 1000", "timeout_ms = 8000");
    let host = Host::start(&components);
    let http = Http::new();
    // More spinning guests than the host has worker threads.
    let loops: Vec<_> = (0..6)
        .map(|_| {
            let http = http.clone();
            let url = host.url("/misbehave/loop");
            tokio::spawn(async move { http.get(&url).await })
        })
        .collect();
    host.wait_output("spinning", 6);
    for _ in 0..5 {
        let reply = http.get(&host.url("/status")).await;
        assert_eq!(reply.status, 200);
    }
    assert!(
        loops.iter().all(|l| !l.is_finished()),
        "status answered while every loop was still spinning"
    );
    for l in loops {
        assert_error(&l.await.unwrap(), 504, "timeout");
    }
}
