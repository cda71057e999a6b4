//! The `keyvalue` capability through the real binary: the `kv-probe`
//! component drives it over HTTP, on the embedded store and on Redis.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use crate::common::*;

/// kv-probe granted two buckets, and hello granted nothing.
fn components() -> String {
    format!(
        r#"
[[component]]
name = "kv-probe"
wasm = "{probe}"
routes = ["/kv"]
grants.keyvalue = {{ buckets = ["transactions", "sessions"] }}

[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]
"#,
        probe = component_artifacts::KV_PROBE,
        hello = component_artifacts::HELLO,
    )
}

fn redis_url() -> String {
    std::env::var("CORRAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn call(http: &Http, method: &str, url: &str, body: &'static str) -> Reply {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    http.send(request).await.unwrap()
}

fn ok_json(reply: &Reply) -> Value {
    assert_eq!(
        reply.status,
        200,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The same story on either backend: values, TTLs visible and expiring,
/// set-if-absent, counters, listing, and a bucket outside the grant refused.
async fn exercise(host: &Host) {
    let http = Http::new();
    let url = |path: &str| host.url(path);

    let ttl_ms = 2000;
    let written = Instant::now();
    let reply = call(
        &http,
        "PUT",
        &url(&format!("/kv/transactions/tx-1?ttl_ms={ttl_ms}")),
        "paid",
    )
    .await;
    assert_eq!(ok_json(&reply)["set"], true);
    call(&http, "PUT", &url("/kv/transactions/plain"), "kept").await;

    let json = ok_json(&http.get(&url("/kv/transactions/tx-1")).await);
    assert_eq!(json["value"], "paid");
    let left = json["ttl_ms"].as_u64().expect("tx-1 has a ttl");
    assert!(left > 0 && left <= ttl_ms, "{json}");
    let json = ok_json(&http.get(&url("/kv/transactions/tx-1/ttl")).await);
    assert!(json["ttl_ms"].as_u64().unwrap() <= ttl_ms, "{json}");
    let json = ok_json(&http.get(&url("/kv/transactions/plain")).await);
    assert_eq!(json["value"], "kept");
    assert_eq!(json["ttl_ms"], Value::Null);

    let reply = call(
        &http,
        "PUT",
        &url("/kv/transactions/tx-1?if_absent=1"),
        "again",
    )
    .await;
    assert_eq!(ok_json(&reply)["set"], false);
    for expected in [5, 10] {
        let reply = call(&http, "POST", &url("/kv/transactions/count/incr?by=5"), "").await;
        assert_eq!(ok_json(&reply)["value"], expected);
    }
    // The same key in another granted bucket is another value.
    assert_eq!(http.get(&url("/kv/sessions/plain")).await.status, 404);

    let keys = ok_json(&http.get(&url("/kv/transactions")).await);
    assert_eq!(keys["keys"], serde_json::json!(["count", "plain", "tx-1"]));

    // A bucket the grant does not name is refused, for reads and writes.
    let reply = http.get(&url("/kv/secrets/x")).await;
    assert_error(&reply, 403, "access_denied");
    assert_error(
        &call(&http, "PUT", &url("/kv/secrets/x"), "v").await,
        403,
        "access_denied",
    );
    // An invalid bucket name is an error naming the problem.
    let json = assert_error(&http.get(&url("/kv/a:b/x")).await, 500, "keyvalue_error");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bucket name"),
        "{json}"
    );

    // Expiry: absent once the TTL has passed.
    tokio::time::sleep(
        (written + Duration::from_millis(ttl_ms + 500)).saturating_duration_since(Instant::now()),
    )
    .await;
    let reply = http.get(&url("/kv/transactions/tx-1")).await;
    assert_error(&reply, 404, "not_found");
    let json = ok_json(&http.get(&url("/kv/transactions/tx-1/ttl")).await);
    assert_eq!(json["ttl_ms"], Value::Null);
    let keys = ok_json(&http.get(&url("/kv/transactions")).await);
    assert_eq!(keys["keys"], serde_json::json!(["count", "plain"]));

    let reply = call(&http, "DELETE", &url("/kv/transactions/plain"), "").await;
    assert_eq!(ok_json(&reply)["deleted"], true);
    assert_error(
        &http.get(&url("/kv/transactions/plain")).await,
        404,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvalue_over_http_on_the_embedded_store() {
    let host = Host::start_with_sections("[keyvalue]\nbackend = \"embedded\"\n", &components());
    exercise(&host).await;
    assert!(
        host.path("state/keyvalue.redb").exists(),
        "the store lives in the state directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvalue_over_http_on_redis() {
    let prefix = format!("corral-e2e-{:016x}:", getrandom::u64().unwrap());
    let sections = format!(
        "[keyvalue]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\ntimeout_ms = 2000\n",
        redis_url()
    );
    let host = Host::start_with_sections(&sections, &components());
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();

    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        exercise(&host).await;
        // Keys are laid out as <key_prefix><bucket>:<key>.
        let count: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}transactions:count"))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(count.as_deref(), Some("10"));
    }))
    .await;

    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .exec_async(&mut redis)
            .await
            .unwrap();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_down_gives_errors_not_hangs() {
    // Nothing listens on port 1: the host still starts and serves others.
    let sections =
        "[keyvalue]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\ntimeout_ms = 1000\n";
    let host = Host::start_with_sections(sections, &components());
    let http = Http::new();
    assert_eq!(http.get(&host.url("/hello")).await.status, 200);
    let started = Instant::now();
    let reply = http.get(&host.url("/kv/transactions/x")).await;
    // An outage, not a bad call: 503 with a hint when to come back.
    let json = assert_error(&reply, 503, "backend_unavailable");
    assert_eq!(json["error"]["field"], "keyvalue", "{json}");
    assert_eq!(
        reply
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5")
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        json["error"]["message"].as_str().unwrap().contains("redis"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_keyvalue_without_a_grant_is_refused_at_deploy() {
    let host = Host::start(&components());
    // hello has no keyvalue grant: deploying the probe's code as hello fails.
    let out = host.cli(&["redeploy", "hello", component_artifacts::KV_PROBE]);
    assert!(!out.status.success(), "the deploy should have been refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not granted") && err.contains("keyvalue"),
        "{err}"
    );
    // And the running version goes on serving.
    assert_eq!(Http::new().get(&host.url("/hello")).await.status, 200);
}
