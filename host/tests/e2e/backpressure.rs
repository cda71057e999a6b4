//! Instance slots (`runtime.max_instances`): when every slot is busy, a
//! request waits for one, within its component's time limit, instead of
//! failing; a slot that does not free up in time gives 503 `overloaded`.

use std::time::{Duration, Instant};

use crate::common::*;

/// `misbehave` may sleep for seconds, `hello` may wait 600 ms (the test
/// runs them with two instance slots).
fn components() -> String {
    format!(
        r#"
[[component]]
name = "misbehave"
wasm = "{misbehave}"
routes = ["/misbehave"]
limits = {{ memory_mb = 16, timeout_ms = 5000 }}

[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]
limits = {{ memory_mb = 16, timeout_ms = 600 }}
"#,
        misbehave = component_artifacts::MISBEHAVE,
        hello = component_artifacts::HELLO,
    )
}

/// Sends `count` requests that each hold an instance slot for `ms`, and
/// returns once every one of them runs in its instance.
async fn hold_slots(host: &Host, count: usize, ms: u64) -> Vec<tokio::task::JoinHandle<Reply>> {
    let needle = format!("sleeping ms={ms}");
    let before = host.output().matches(&needle).count();
    let holders = (0..count)
        .map(|_| {
            let url = host.url(&format!("/misbehave/sleep?ms={ms}"));
            tokio::spawn(async move { Http::new().get(&url).await })
        })
        .collect();
    host.wait_output(&needle, before + count);
    holders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_a_free_slot_and_gets_503_when_none_frees_in_time() {
    let host = Host::start_with_env(&components(), &[("CORRAL_MAX_INSTANCES", "2")]);
    let http = Http::new();

    // Both slots held for 2 s: hello waits its whole 600 ms, then 503.
    let holders = hold_slots(&host, 2, 2000).await;
    let started = Instant::now();
    let reply = http.get(&host.url("/hello")).await;
    let waited = started.elapsed();
    let json = assert_error(&reply, 503, "overloaded");
    assert_eq!(json["error"]["component"], "hello", "{json}");
    assert!(
        waited >= Duration::from_millis(500),
        "answered after {waited:?}, before its 600 ms limit"
    );
    for holder in holders {
        assert_eq!(holder.await.unwrap().status, 200, "a slot holder failed");
    }

    // Both slots held until about 250 ms after hello arrives: it waits for
    // one and is served.
    let holders = hold_slots(&host, 2, 550).await;
    let reply = http.get(&host.url("/hello")).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(&reply.body[..], b"Hello, world!\n");
    for holder in holders {
        assert_eq!(holder.await.unwrap().status, 200, "a slot holder failed");
    }

    // With the slots free again, no waiting at all.
    assert_eq!(http.get(&host.url("/hello")).await.status, 200);
}
