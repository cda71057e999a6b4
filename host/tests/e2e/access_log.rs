//! The gateway access log through the real binary: every request, errors
//! included, shows up in the logger (`GET /logs?service=<component>`) with
//! its status, latency and request id, on the embedded backends and on
//! Redis + RabbitMQ; a dead broker slows no request and its drops are
//! counted; records buffered through a RabbitMQ outage arrive after it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use crate::common::*;
use crate::logger::{Backends, logger_components, wait_for};

/// The logger, plus hello and misbehave to make requests to; no `/` route,
/// so an unknown path is the gateway's 404.
fn components() -> String {
    format!(
        r#"{logger}
[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]

[[component]]
name = "misbehave"
wasm = "{misbehave}"
routes = ["/misbehave"]
limits = {{ memory_mb = 16, timeout_ms = 2000 }}
"#,
        logger = logger_components(36_500),
        hello = component_artifacts::HELLO,
        misbehave = component_artifacts::MISBEHAVE,
    )
}

async fn get_with_id(http: &Http, url: &str, id: Option<&str>) -> Reply {
    let mut request = http::Request::get(url);
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    http.send(request.body(Full::default()).unwrap())
        .await
        .unwrap()
}

fn request_id(reply: &Reply) -> String {
    reply
        .headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on a {} answer", reply.status))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn admin_access_log(http: &Http, host: &Host) -> Value {
    let reply = http
        .send(
            http::Request::get(format!("{}/v1/access-log", host.admin))
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    reply.json()
}

fn by_id<'a>(records: &'a [Value], id: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["request_id"] == id)
        .unwrap_or_else(|| panic!("no record with request id {id} in {records:#?}"))
}

async fn every_request_gets_a_record(backends: Backends) {
    let sections = format!(
        "{}\n[access_log]\nflush_interval_ms = 50\n",
        backends.sections()
    );
    let host = Host::start_with_sections_and_env(
        &sections,
        &components(),
        &[("CORRAL_MAX_BODY_BYTES", "1000")],
    );
    let http = Http::new();
    let kept_id = format!("e2e-{}", std::process::id());

    let kept = get_with_id(&http, &host.url("/hello"), Some(&kept_id)).await;
    assert_eq!(kept.status, 200);
    assert_eq!(request_id(&kept), kept_id, "a valid incoming id is kept");
    let fresh = get_with_id(&http, &host.url("/hello"), None).await;
    let fresh_id = request_id(&fresh);
    let replaced = get_with_id(&http, &host.url("/hello"), Some("not a valid id")).await;
    let replaced_id = request_id(&replaced);
    assert_ne!(replaced_id, "not a valid id");
    assert_ne!(fresh_id, replaced_id);
    let too_large = http
        .send(
            http::Request::post(host.url("/hello"))
                .body(Full::new(Bytes::from(vec![b'x'; 2000])))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(too_large.status, 413);
    let too_large_id = request_id(&too_large);
    let nowhere = get_with_id(&http, &host.url("/nowhere"), None).await;
    assert_eq!(nowhere.status, 404);
    let nowhere_id = request_id(&nowhere);
    let trap = get_with_id(&http, &host.url("/misbehave/trap"), None).await;
    assert_eq!(trap.status, 500);
    let trap_id = request_id(&trap);

    let within = Duration::from_secs(30);
    let hello = wait_for(&http, &host, "service=hello", 4, within).await;
    assert_eq!(hello.len(), 4, "one record per request: {hello:#?}");
    let r = by_id(&hello, &kept_id);
    assert_eq!(r["kind"], "access");
    assert_eq!(r["component"], "hello");
    assert_eq!(r["action"], "GET /hello");
    assert_eq!(
        (r["method"].as_str(), r["path"].as_str()),
        (Some("GET"), Some("/hello"))
    );
    assert_eq!(r["status"], 200);
    assert_eq!(r["result"], "success");
    assert_eq!(r["user_id"], "");
    assert_eq!(r["bytes_out"].as_u64(), Some(kept.body.len() as u64));
    assert!(r["latency_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["timestamp"].as_str().unwrap().ends_with('Z'));
    by_id(&hello, &fresh_id);
    by_id(&hello, &replaced_id);
    let r = by_id(&hello, &too_large_id);
    assert_eq!(
        (r["status"].as_u64(), r["result"].as_str()),
        (Some(413), Some("failure"))
    );
    assert!(r.get("cause").is_none(), "4xx have no cause: {r}");

    let gateway = wait_for(&http, &host, "service=gateway", 1, within).await;
    let r = by_id(&gateway, &nowhere_id);
    assert_eq!(
        (r["status"].as_u64(), r["component"].clone()),
        (Some(404), Value::Null)
    );
    assert_eq!(r["action"], "GET (no route)");
    let misbehave = wait_for(&http, &host, "service=misbehave", 1, within).await;
    let r = by_id(&misbehave, &trap_id);
    assert_eq!(
        (r["status"].as_u64(), r["result"].as_str()),
        (Some(500), Some("failure"))
    );
    assert!(
        r["cause"].as_str().unwrap().starts_with("component_trap"),
        "{r}"
    );
    // The filters work on access records like on any other.
    let failures = wait_for(&http, &host, "service=hello&result=failure", 1, within).await;
    assert_eq!(failures.len(), 1);

    let stats = admin_access_log(&http, &host).await;
    assert_eq!(stats["enabled"], true);
    assert_eq!(stats["dropped"], 0, "{stats}");
    assert!(stats["sent"].as_u64().unwrap() >= 6, "{stats}");
    let out = host.cli(&["components"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("access log: queue \"logs\""), "{text}");
    assert!(text.contains(" 0 dropped"), "{text}");
}

/// An AMQP URL where nothing listens.
fn dead_amqp_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_broker_slows_no_request_and_drops_are_counted() {
    let sections = format!(
        r#"
[messaging]
backend = "amqp"
url = "{url}"
confirm_timeout_ms = 300

[access_log]
buffer = 20
batch_size = 5
flush_interval_ms = 10
warn_interval_ms = 600000
"#,
        url = dead_amqp_url()
    );
    let hello = format!(
        "[[component]]\nname = \"hello\"\nwasm = \"{}\"\nroutes = [\"/hello\"]\n",
        component_artifacts::HELLO
    );
    let host = Host::start_with_sections(&sections, &hello);
    let http = Http::new();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let sent = Instant::now();
        let reply = http.get(&host.url("/hello")).await;
        assert_eq!(reply.status, 200);
        slowest = slowest.max(sent.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a request took {slowest:?} with the broker down"
    );
    eprintln!(
        "100 requests in {:?}, slowest {slowest:?}",
        started.elapsed()
    );
    // Every record is either waiting (at most the buffer and one batch) or
    // dropped, counted; none was sent. The first publish fails after the
    // broker's confirm timeout.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = admin_access_log(&http, &host).await;
        let count = |field: &str| stats[field].as_u64().unwrap();
        if count("dropped") + count("buffered") == 100 && count("failed_publishes") >= 1 {
            break stats;
        }
        assert!(
            Instant::now() < deadline,
            "records unaccounted for: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stats["sent"], 0, "{stats}");
    assert!(stats["buffered"].as_u64().unwrap() <= 25, "{stats}");
    assert!(stats["dropped"].as_u64().unwrap() >= 75, "{stats}");
    assert!(
        stats["last_error"].as_str().unwrap().contains("RabbitMQ"),
        "{stats}"
    );
    // One warning about the drops for the whole interval.
    let warnings = host
        .output()
        .matches("access log: dropping records")
        .count();
    assert_eq!(warnings, 1, "{}", host.output());
    let out = host.cli(&["components"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let dropped = format!(" {} dropped", stats["dropped"]);
    assert!(
        text.contains(&dropped) && text.contains("last error"),
        "{text}"
    );
}

/// RabbitMQ through a proxy that is cut for a while: the records of the
/// requests made meanwhile are buffered and arrive once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_buffered_through_a_rabbitmq_outage_arrive_after_it() {
    let backends = Backends::real();
    let Backends::Real { prefix } = &backends else {
        unreachable!()
    };
    let proxy = crate::proxy::Proxy::start(&crate::rabbit::rabbitmq_addr()).await;
    let sections = format!(
        "{}{}\nconfirm_timeout_ms = 500\n\n[access_log]\nflush_interval_ms = 20\nmax_retry_delay_ms = 200\n",
        crate::backend_sections::redis("redis://127.0.0.1:6379", prefix),
        crate::backend_sections::amqp(&proxy.url(), prefix),
    );
    let host = Host::start_with_sections(&sections, &components());
    let http = Http::new();
    // Up and delivering first.
    let first = get_with_id(&http, &host.url("/hello"), None).await;
    wait_for(&http, &host, "service=hello", 1, Duration::from_secs(30)).await;

    proxy.refuse(true);
    proxy.cut();
    let mut ids = vec![request_id(&first)];
    for _ in 0..10 {
        let sent = Instant::now();
        let reply = get_with_id(&http, &host.url("/hello"), None).await;
        assert_eq!(reply.status, 200);
        assert!(sent.elapsed() < Duration::from_millis(500));
        ids.push(request_id(&reply));
    }
    // Held back: waiting, with the publish failing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = admin_access_log(&http, &host).await;
        if stats["buffered"].as_u64().unwrap() >= 10
            && stats["failed_publishes"].as_u64().unwrap() >= 1
        {
            break;
        }
        assert!(Instant::now() < deadline, "records not held back: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.refuse(false);
    let hello = wait_for(&http, &host, "service=hello", 11, Duration::from_secs(60)).await;
    for id in &ids {
        by_id(&hello, id);
    }
    let stats = admin_access_log(&http, &host).await;
    assert_eq!(stats["dropped"], 0, "{stats}");
}

mod on_embedded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_gets_a_record() {
        super::every_request_gets_a_record(super::Backends::Embedded).await;
    }
}

mod on_redis_and_rabbitmq {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_gets_a_record() {
        let backends = super::Backends::real();
        super::every_request_gets_a_record(backends).await;
    }
}
