//! Graceful shutdown: stop accepting, finish in-flight requests, exit 0.

use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let mut host = Host::start(&standard_components());
    let http = Http::new();
    // 700 ms of sleep against the component's 1000 ms limit: room for a
    // loaded machine (with 900 ms it once ran out of time in CI-like load).
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let (http, url) = (http.clone(), host.url("/misbehave/sleep?ms=700"));
            tokio::spawn(async move { http.get(&url).await })
        })
        .collect();
    // All three hold an instance before the stop, and the host has begun
    // draining before the listener is checked.
    host.wait_output("sleeping ms=700", 3);
    host.signal(libc::SIGTERM);
    host.wait_output("stopped accepting; draining in-flight requests", 1);

    // No new connections once draining has begun.
    let addr = host.http.trim_start_matches("http://").to_owned();
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the listener is closed while draining"
    );
    for request in in_flight {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, 200, "in-flight request finished");
        assert_eq!(reply.json()["slept_ms"], 700);
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = host.wait_exit(Duration::from_secs(15));
        (status, host.output())
    })
    .await
    .unwrap();
    let (status, output) = status;
    assert!(status.expect("exited after draining").success(), "{output}");
    assert!(output.contains("drained"), "{output}");
}
