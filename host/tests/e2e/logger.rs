//! Seed 002's `logger` through the real binary, on the embedded backends
//! and on Redis + RabbitMQ: writes and reads, filters and pages checked
//! against a model, the `logs` queue (with redeliveries and a bad
//! message), retention, and records surviving a restart and a `kill -9`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};

use crate::backend_sections;
use crate::common::*;

/// Which servers back key-value and messaging.
pub enum Backends {
    Embedded,
    /// Redis and RabbitMQ on this machine, under a fresh prefix whose keys
    /// and queues are deleted when the value is dropped.
    Real {
        prefix: String,
    },
}

impl Backends {
    pub fn real() -> Self {
        crate::rabbit::require_rabbitmq();
        Self::Real {
            prefix: crate::rabbit::random_prefix("logger"),
        }
    }

    pub fn sections(&self) -> String {
        match self {
            Self::Embedded => String::new(),
            Self::Real { prefix } => format!(
                "{}{}",
                backend_sections::redis("redis://127.0.0.1:6379", prefix),
                backend_sections::amqp(&crate::rabbit::rabbitmq_url(), prefix)
            ),
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        if let Self::Real { prefix } = self {
            crate::rabbit::delete_queues_blocking(prefix);
            crate::redis_keys::delete_under("redis://127.0.0.1:6379", prefix);
        }
    }
}

/// The backends' sections with the gateway access log off: these tests
/// hold the store to a model, and the gateway's records of the tests' own
/// requests would be extra rows (the access log has its own tests,
/// access_log.rs).
fn without_access_log(backends: &Backends) -> String {
    format!(
        "{}
[access_log]
enabled = false
",
        backends.sections()
    )
}

/// The logger as `corral.toml` has it, with a fast retention timer, and
/// queue-probe granted to publish to `logs` (a producer for the tests).
pub fn logger_components(retention_days: u32) -> String {
    format!(
        r#"
[[component]]
name = "logger"
wasm = "{logger}"
routes = ["/log", "/logs"]
queue = {{ name = "logs", prefetch = 200, concurrency = 2, batch_size = 100, retry_delay_ms = 200 }}
timer = {{ interval_ms = 300 }}
limits = {{ memory_mb = 64, timeout_ms = 20000 }}
config = {{ retention_days = "{retention_days}" }}
grants.keyvalue = {{ buckets = ["logs"] }}
grants.logging = {{ file = "logs/logger.log" }}

[[component]]
name = "queue-probe"
wasm = "{probe}"
routes = ["/queue-probe"]
grants.messaging = {{ publish = ["logs"] }}
"#,
        logger = component_artifacts::LOGGER,
        probe = component_artifacts::QUEUE_PROBE,
    )
}

pub async fn send(
    http: &Http,
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    http.send(
        request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap(),
    )
    .await
    .unwrap()
}

pub async fn post_json(http: &Http, url: &str, body: &Value) -> Reply {
    send(
        http,
        "POST",
        url,
        Some("application/json"),
        body.to_string().as_bytes(),
    )
    .await
}

fn ok(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// Asserts a 400 (or `status`) naming `field`.
fn refused(reply: &Reply, status: u16, field: &str) -> Value {
    let json = ok(reply, status);
    assert_eq!(json["error"]["field"], field, "{json}");
    json
}

/// Every record of `GET /logs?<query>`, following `next_cursor` pages of
/// `limit`; asserts that no page repeats a record.
pub async fn all_pages(http: &Http, host: &Host, query: &str, limit: u32) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut url = host.url(&format!("/logs?{query}&limit={limit}"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = ok(&http.get(&url).await, 200);
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= limit as usize, "{page}");
        assert_eq!(page["count"], records.len());
        out.extend(records.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let ids: BTreeSet<&str> = out.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), out.len(), "a record came twice across pages");
    out
}

fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `GET /logs?<query>` until it has `n` records (following pages).
pub async fn wait_for(
    http: &Http,
    host: &Host,
    query: &str,
    n: usize,
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let found = all_pages(http, host, query, 1000).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "GET /logs?{query}: {} of {n} records after {within:?}\n{}",
            found.len(),
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn record(service: &str, user: &str, action: &str, result: &str, at_ms: i64) -> Value {
    json!({"service": service, "user_id": user, "action": action, "result": result,
           "timestamp": rfc3339(at_ms)})
}

async fn writes_reads_and_refusals(backends: Backends) {
    let host =
        Host::start_with_sections(&without_access_log(&backends), &logger_components(36_500));
    let http = Http::new();

    // The seed's record, without a timestamp: filled in.
    let before = chrono::Utc::now().timestamp_millis();
    let seed = json!({"service": "user_service", "user_id": "1", "action": "create_user", "result": "success"});
    let reply = post_json(&http, &host.url("/log"), &seed).await;
    let stored = ok(&reply, 201);
    let id = stored["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 26, "{stored}");
    assert_eq!(reply.headers["location"], format!("/logs/{id}").as_str());
    let at = chrono::DateTime::parse_from_rfc3339(stored["timestamp"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert!(
        at >= before - 1 && at <= chrono::Utc::now().timestamp_millis(),
        "{stored}"
    );
    assert_eq!(stored["service"], "user_service");
    let got = ok(&http.get(&host.url(&format!("/logs/{id}"))).await, 200);
    assert_eq!(got, stored);

    // A batch with a cause, the seed-001 timestamp form and extra fields.
    let batch = json!([
        {"service": "events", "user_id": "7", "action": "create_event", "result": "failure",
         "cause": "title is required", "timestamp": "2026-01-01T01:00:00 +01:00", "status": 400},
        {"service": "gateway", "user_id": "", "action": "http_request", "result": "success",
         "kind": "access", "method": "GET", "path": "/events", "status": 200, "latency_ms": 1.5},
    ]);
    let created = ok(&post_json(&http, &host.url("/logs"), &batch).await, 201);
    assert_eq!(created["count"], 2);
    assert_eq!(
        created["records"][0]["timestamp"],
        "2026-01-01T00:00:00.000Z"
    );
    assert_eq!(created["records"][0]["cause"], "title is required");
    assert_eq!(created["records"][1]["latency_ms"], 1.5);
    assert_eq!(created["ids"][1], created["records"][1]["id"]);
    let listed = all_pages(&http, &host, "", 50).await;
    assert_eq!(listed.len(), 3);
    // Newest first: the access record (stamped on arrival), the seed's
    // record, then the one from 2026-01-01.
    assert_eq!(listed[0]["id"], created["ids"][1]);
    assert_eq!(listed[1]["id"], id.as_str());
    assert_eq!(listed[2]["id"], created["ids"][0]);

    // Refusals: nothing half-written.
    let url = host.url("/logs");
    let reply = send(
        &http,
        "POST",
        &host.url("/log"),
        Some("text/plain"),
        seed.to_string().as_bytes(),
    )
    .await;
    refused(&reply, 415, "content-type");
    let reply = send(&http, "POST", &url, None, b"[]").await;
    refused(&reply, 415, "content-type");
    let reply = send(
        &http,
        "POST",
        &url,
        Some("application/json"),
        b"[{\"service\":",
    )
    .await;
    refused(&reply, 400, "body");
    refused(&post_json(&http, &url, &json!([])).await, 400, "body");
    refused(&post_json(&http, &url, &seed).await, 400, "body");
    refused(
        &post_json(&http, &host.url("/log"), &json!([seed])).await,
        400,
        "body",
    );
    let mut five: Vec<Value> = (0..5)
        .map(|i| record("svc", "u", "a", "success", T0 + i))
        .collect();
    five[3]["service"] = json!("");
    let json = refused(
        &post_json(&http, &url, &json!(five)).await,
        400,
        "[3].service",
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must not be empty"),
        "{json}"
    );
    five[3]["service"] = json!("svc");
    five[1].as_object_mut().unwrap().remove("action");
    refused(
        &post_json(&http, &url, &json!(five)).await,
        400,
        "[1].action",
    );
    five[1]["action"] = json!("a");
    five[4]["result"] = json!("maybe");
    refused(
        &post_json(&http, &url, &json!(five)).await,
        400,
        "[4].result",
    );
    five[4]["result"] = json!("success");
    five[0]["timestamp"] = json!("31/12/2025");
    refused(
        &post_json(&http, &url, &json!(five)).await,
        400,
        "[0].timestamp",
    );
    five[0]["timestamp"] = json!(rfc3339(T0));
    five[2]["id"] = json!("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    refused(&post_json(&http, &url, &json!(five)).await, 400, "[2].id");
    five[2].as_object_mut().unwrap().remove("id");
    five[2]["user_id"] = json!("");
    refused(
        &post_json(&http, &url, &json!(five)).await,
        400,
        "[2].user_id",
    );
    five[2]["user_id"] = json!(42);
    refused(
        &post_json(&http, &url, &json!(five)).await,
        400,
        "[2].user_id",
    );
    five[2]["user_id"] = json!("x".repeat(129));
    refused(
        &post_json(&http, &url, &json!(five)).await,
        400,
        "[2].user_id",
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|i| record("s", "u", "a", "success", T0 + i))
        .collect();
    refused(&post_json(&http, &url, &json!(too_many)).await, 400, "body");
    assert_eq!(
        all_pages(&http, &host, "", 50).await.len(),
        3,
        "no refused record was stored"
    );

    // Queries that make no sense are refused, naming the parameter.
    let get = async |q: &str| http.get(&host.url(&format!("/logs?{q}"))).await;
    refused(&get("user=1").await, 400, "user");
    refused(&get("limit=0").await, 400, "limit");
    refused(&get("limit=1001").await, 400, "limit");
    refused(&get("cursor=nonsense").await, 400, "cursor");
    refused(&get("from=yesterday").await, 400, "from");
    refused(&get("result=ok").await, 400, "result");
    refused(
        &get("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z").await,
        400,
        "from",
    );
    refused(&get("service=a&service=b").await, 400, "service");
    let json = ok(
        &http
            .get(&host.url("/logs/01ARZ3NDEKTSV4RRFFQ69G5FAV"))
            .await,
        404,
    );
    assert_eq!(json["error"]["code"], "not_found");
    ok(&http.get(&host.url("/logs/not-an-id")).await, 404);
    let reply = send(&http, "PUT", &url, Some("application/json"), b"{}").await;
    assert_eq!(ok(&reply, 405)["error"]["code"], "method_not_allowed");
    ok(&http.get(&host.url("/log")).await, 405);
}

/// 600 records over an hour with repeated timestamps; every combination
/// of filters, a time window, and small pages must give exactly the
/// model's records in exactly its order. Stats count the same.
async fn filters_and_pages_match_a_model(backends: Backends) {
    let host =
        Host::start_with_sections(&without_access_log(&backends), &logger_components(36_500));
    let http = Http::new();
    let services = ["user_service", "event_service", "gateway"];
    let actions = ["create", "get", "update", "delete"];
    let mut all = Vec::new();
    for i in 0..600i64 {
        // Pairs of records share a timestamp: ties in every index.
        let at = T0 + (i / 2) * 6_000;
        let result = if i % 7 == 0 { "failure" } else { "success" };
        all.push(record(
            services[(i % 3) as usize],
            &format!("u{}", i % 10),
            actions[(i % 4) as usize],
            result,
            at,
        ));
    }
    let mut stored = Vec::new();
    for chunk in all.chunks(250) {
        let created = ok(
            &post_json(&http, &host.url("/logs"), &json!(chunk)).await,
            201,
        );
        stored.extend(created["records"].as_array().unwrap().iter().cloned());
    }
    // The model: newest first, by (timestamp, id) descending.
    let ms = |r: &Value| {
        chrono::DateTime::parse_from_rfc3339(r["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    stored.sort_by_key(|r| std::cmp::Reverse((ms(r), r["id"].as_str().unwrap().to_owned())));
    let from = T0 + 10 * 60_000;
    let to = T0 + 40 * 60_000;
    let cases: Vec<(String, Box<dyn Fn(&Value) -> bool>)> = vec![
        (String::new(), Box::new(|_| true)),
        (
            "service=gateway".into(),
            Box::new(|r| r["service"] == "gateway"),
        ),
        (
            "result=failure".into(),
            Box::new(|r| r["result"] == "failure"),
        ),
        (
            "user_id=u3&action=get".into(),
            Box::new(|r| r["user_id"] == "u3" && r["action"] == "get"),
        ),
        (
            "service=user_service&action=create&result=success".into(),
            Box::new(|r| {
                r["service"] == "user_service"
                    && r["action"] == "create"
                    && r["result"] == "success"
            }),
        ),
        (
            format!(
                "service=event_service&user_id=u1&from={}&to={}",
                rfc3339(from),
                rfc3339(to)
            ),
            Box::new(move |r| {
                r["service"] == "event_service"
                    && r["user_id"] == "u1"
                    && (from..=to).contains(&ms(r))
            }),
        ),
        (
            format!("from={from}&to={to}"),
            Box::new(move |r| (from..=to).contains(&ms(r))),
        ),
        ("service=nobody".into(), Box::new(|_| false)),
        (
            "service=gateway&user_id=u2&action=delete&result=failure".into(),
            Box::new(|r| {
                r["service"] == "gateway"
                    && r["user_id"] == "u2"
                    && r["action"] == "delete"
                    && r["result"] == "failure"
            }),
        ),
    ];
    for (query, keep) in &cases {
        let expected: Vec<Value> = stored.iter().filter(|r| keep(r)).cloned().collect();
        for limit in [7, 1000] {
            let got = all_pages(&http, &host, query, limit).await;
            assert_eq!(
                ids(&got),
                ids(&expected),
                "GET /logs?{query} in pages of {limit}"
            );
        }
    }
    // Every page of a filtered query is full but the last.
    let page = ok(
        &http.get(&host.url("/logs?service=gateway&limit=13")).await,
        200,
    );
    assert_eq!(page["count"], 13);
    assert!(page["next_cursor"].is_string());

    // Stats: per minute and result, over the hour.
    let stats = ok(
        &http
            .get(&host.url(&format!(
                "/logs/stats?from={}&to={}&bucket=60",
                T0,
                T0 + 3_600_000 - 1
            )))
            .await,
        200,
    );
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    assert_eq!(stats["complete"], true);
    for (n, bucket) in buckets.iter().enumerate() {
        let in_minute = |r: &&Value| (ms(r) - T0) / 60_000 == n as i64;
        let success = stored
            .iter()
            .filter(in_minute)
            .filter(|r| r["result"] == "success")
            .count();
        let failure = stored
            .iter()
            .filter(in_minute)
            .filter(|r| r["result"] == "failure")
            .count();
        assert_eq!(
            (
                bucket["success"].as_u64().unwrap(),
                bucket["failure"].as_u64().unwrap()
            ),
            (success as u64, failure as u64),
            "minute {n}: {bucket}"
        );
    }
    assert_eq!(
        stats["total"]["success"].as_u64().unwrap() + stats["total"]["failure"].as_u64().unwrap(),
        600
    );
    // With filters, counted by walking an index: the same numbers.
    let stats = ok(
        &http
            .get(&host.url(&format!(
                "/logs/stats?from={}&to={}&bucket=600&service=gateway&user_id=u5",
                T0,
                T0 + 3_600_000 - 1
            )))
            .await,
        200,
    );
    let gateway_u5 = |r: &&Value| r["service"] == "gateway" && r["user_id"] == "u5";
    let total =
        stats["total"]["success"].as_u64().unwrap() + stats["total"]["failure"].as_u64().unwrap();
    assert_eq!(
        total,
        stored.iter().filter(gateway_u5).count() as u64,
        "{stats}"
    );
    assert_eq!(stats["buckets"].as_array().unwrap().len(), 6);
    refused(
        &http.get(&host.url("/logs/stats?bucket=0")).await,
        400,
        "bucket",
    );
    refused(
        &http
            .get(&host.url(&format!(
                "/logs/stats?from={}&to={}&bucket=1",
                T0,
                T0 + 86_400_000
            )))
            .await,
        400,
        "bucket",
    );
}

/// Records published to the `logs` queue show up in `GET /logs`; a
/// redelivered message (same message id) is stored once; a bad message
/// is dead-lettered without stopping the good ones.
async fn queue_records_show_up(backends: Backends) {
    let host =
        Host::start_with_sections(&without_access_log(&backends), &logger_components(36_500));
    let http = Http::new();
    let publish = async |id: &str, body: &Value| {
        let url = host.url(&format!("/queue-probe/publish?queue=logs&id={id}"));
        let reply = send(
            &http,
            "POST",
            &url,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&reply.body)
        );
    };
    let with_time: Vec<Value> = (0..3)
        .map(|i| record("queue_svc", "q1", "act", "success", T0 + i))
        .collect();
    let without_time = json!([{"service": "queue_svc", "user_id": "q2", "action": "act", "result": "failure", "cause": "boom"}]);
    publish("m-1", &json!(with_time)).await;
    publish("m-2", &without_time).await;
    // The same messages again, as a redelivery would bring them.
    publish("m-1", &json!(with_time)).await;
    publish("m-2", &without_time).await;
    // A bad one: refused whole, naming the record and field.
    publish(
        "m-bad",
        &json!([record("queue_svc", "q3", "act", "success", T0), {"service": "queue_svc"}]),
    )
    .await;
    publish(
        "m-3",
        &json!([record("queue_svc", "q4", "act", "success", T0 + 10)]),
    )
    .await;
    if let Backends::Real { prefix } = &backends {
        // A producer outside corral, straight to RabbitMQ.
        let body = json!([record("outside", "o1", "act", "success", T0 + 20)]).to_string();
        publish_to_rabbitmq(&format!("{prefix}logs"), "outside-1", body.as_bytes()).await;
    }
    let expected = if matches!(backends, Backends::Real { .. }) {
        6
    } else {
        5
    };
    let found = wait_for(&http, &host, "from=0", expected, Duration::from_secs(20)).await;
    // Give a duplicate a chance to show up, then count again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let found_again = all_pages(&http, &host, "", 100).await;
    assert_eq!(found_again.len(), found.len(), "{found_again:#?}");
    assert_eq!(
        found.len(),
        expected,
        "each message stored once: {found:#?}"
    );
    let q2 = all_pages(&http, &host, "user_id=q2", 10).await;
    assert_eq!(q2.len(), 1);
    assert_eq!(q2[0]["cause"], "boom");
    assert!(
        all_pages(&http, &host, "user_id=q3", 10).await.is_empty(),
        "nothing of the bad message"
    );
    host.wait_log("logs/logger.log", &["rejecting message m-bad: [1].user_id"]);
}

/// Records older than `retention_days` are removed by the timer, from the
/// records and from every index; newer ones stay.
async fn retention_removes_old_records(backends: Backends) {
    let host = Host::start_with_sections(&without_access_log(&backends), &logger_components(30));
    let http = Http::new();
    let now = chrono::Utc::now().timestamp_millis();
    let old: Vec<Value> = (0..1200)
        .map(|i| record("old_svc", "u", "act", "success", now - 40 * 86_400_000 + i))
        .collect();
    let mut ids_old = Vec::new();
    for chunk in old.chunks(600) {
        let created = ok(
            &post_json(&http, &host.url("/logs"), &json!(chunk)).await,
            201,
        );
        ids_old.extend(ids(created["records"].as_array().unwrap()));
    }
    let fresh = ok(
        &post_json(
            &http,
            &host.url("/log"),
            &record("old_svc", "u", "act", "success", now - 86_400_000),
        )
        .await,
        201,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = all_pages(&http, &host, "service=old_svc", 1000).await;
        if left.len() == 1 {
            assert_eq!(left[0]["id"], fresh["id"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} records left\n{}",
            left.len(),
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in [&ids_old[0], &ids_old[1199]] {
        ok(&http.get(&host.url(&format!("/logs/{id}"))).await, 404);
    }
    for query in ["", "user_id=u", "action=act", "result=success"] {
        assert_eq!(
            all_pages(&http, &host, query, 1000).await.len(),
            1,
            "{query}"
        );
    }
    let stats = ok(
        &http
            .get(&host.url(&format!(
                "/logs/stats?from={}&to={now}&bucket=86400",
                now - 50 * 86_400_000
            )))
            .await,
        200,
    );
    assert_eq!(stats["total"]["success"], 1, "{stats}");
}

/// Stopped (SIGTERM), or killed right after a 201 (SIGKILL), the host
/// comes back with every record.
async fn logs_survive_a_restart(backends: Backends, kill: bool) {
    let mut host =
        Host::start_with_sections(&without_access_log(&backends), &logger_components(36_500));
    let http = Http::new();
    let batch: Vec<Value> = (0..50)
        .map(|i| record("durable", "u", "act", "success", T0 + i))
        .collect();
    let created = ok(
        &post_json(&http, &host.url("/logs"), &json!(batch)).await,
        201,
    );
    let one = ok(
        &post_json(
            &http,
            &host.url("/log"),
            &record("durable", "u", "last", "failure", T0 + 99),
        )
        .await,
        201,
    );
    host.restart(if kill { libc::SIGKILL } else { libc::SIGTERM });
    let after = all_pages(&http, &host, "service=durable", 20).await;
    assert_eq!(after.len(), 51);
    assert_eq!(after[0], one);
    let mut expected = ids(created["records"].as_array().unwrap());
    expected.reverse();
    assert_eq!(ids(&after[1..]), expected);
    assert_eq!(all_pages(&http, &host, "action=last", 20).await.len(), 1);
    // And it goes on storing.
    ok(
        &post_json(
            &http,
            &host.url("/log"),
            &record("durable", "u", "after", "success", T0 + 100),
        )
        .await,
        201,
    );
    assert_eq!(
        all_pages(&http, &host, "service=durable", 100).await.len(),
        52
    );
}

/// Publishes `body` to `queue` on the test RabbitMQ as any producer would
/// (persistent, confirmed, with a message id), retrying until the queue
/// exists (the host declares it when its consumer starts).
async fn publish_to_rabbitmq(queue: &str, message_id: &str, body: &[u8]) {
    use lapin::BasicProperties;
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let connection = lapin::Connection::connect(&crate::rabbit::rabbitmq_url(), Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message_id.into());
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirm = channel
            .basic_publish("".into(), queue.into(), options, body, properties)
            .await
            .unwrap()
            .await
            .unwrap();
        // A message no queue took comes back with the confirm.
        if !confirm.is_ack() || confirm.take_message().is_some() {
            assert!(Instant::now() < deadline, "queue {queue} never appeared");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        break;
    }
    let _ = connection.close(200, "OK".into()).await;
}

macro_rules! on_both {
    ($($name:ident => $run:ident $(, $arg:expr)*);* $(;)?) => {
        mod on_embedded {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$run(Backends::Embedded $(, $arg)*).await;
            })*
        }
        mod on_redis_and_rabbitmq {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backends = Backends::real();
                super::$run(backends $(, $arg)*).await;
            })*
        }
    };
}

on_both! {
    writes_reads_and_refusals => writes_reads_and_refusals;
    filters_and_pages_match_a_model => filters_and_pages_match_a_model;
    queue_records_show_up => queue_records_show_up;
    retention_removes_old_records => retention_removes_old_records;
    logs_survive_a_host_restart => logs_survive_a_restart, false;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_logs_survive_kill_9_after_a_201() {
    logs_survive_a_restart(Backends::Embedded, true).await;
}
