//! Seed 002's `events` service through the real binary, on the embedded
//! backends and on Redis + RabbitMQ: CRUD with ETags and `If-Match`, the
//! errors, time order with pages, concurrent updates of one version, and
//! every action logged through the `logs` queue into the `logger`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::logger::{Backends, logger_components, send, wait_for};

fn components() -> String {
    format!(
        r#"
[[component]]
name = "events"
wasm = "{events}"
routes = ["/events"]
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.keyvalue = {{ buckets = ["events"] }}
grants.messaging = {{ publish = ["logs"] }}
grants.logging = {{ file = "logs/events.log" }}
{logger}
"#,
        events = component_artifacts::EVENTS,
        logger = logger_components(36_500),
    )
}

async fn call(
    http: &Http,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-user-id", "alice");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let bytes = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            bytes::Bytes::from(body.to_string())
        }
        None => bytes::Bytes::new(),
    };
    http.send(request.body(http_body_util::Full::new(bytes)).unwrap())
        .await
        .unwrap()
}

fn expect(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

fn field(reply: &Reply, status: u16, field: &str) {
    let json = expect(reply, status);
    assert_eq!(json["error"]["field"], field, "{json}");
}

fn etag(reply: &Reply) -> String {
    reply.headers["etag"].to_str().unwrap().to_owned()
}

fn event(title: &str, starts: &str, ends: &str) -> Value {
    json!({"title": title, "description": "d", "starts_at": starts, "ends_at": ends,
           "location": "Hall A", "capacity": 50})
}

async fn crud_with_etags_and_errors(backends: Backends) {
    let host = Host::start_with_sections(&backends.sections(), &components());
    let http = Http::new();
    let url = host.url("/events");

    let reply = call(
        &http,
        "POST",
        &url,
        &[],
        Some(&event(
            "Launch",
            "2026-03-01T18:00:00Z",
            "2026-03-01T20:00:00 +00:00",
        )),
    )
    .await;
    let created = expect(&reply, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(etag(&reply), "\"1\"");
    assert_eq!(reply.headers["location"], format!("/events/{id}").as_str());
    assert_eq!(created["version"], 1);
    assert_eq!(created["ends_at"], "2026-03-01T20:00:00.000Z");
    assert_eq!(created["created_at"], created["updated_at"]);
    let one = format!("{url}/{id}");

    let reply = call(&http, "GET", &one, &[], None).await;
    assert_eq!(expect(&reply, 200), created);
    assert_eq!(etag(&reply), "\"1\"");
    let reply = call(&http, "GET", &one, &[("if-none-match", "\"1\"")], None).await;
    assert_eq!(reply.status, 304);

    // Update with the current ETag; then the old one is stale.
    let mut changed = created.clone();
    changed["title"] = json!("Launch party");
    changed["capacity"] = json!(80);
    let reply = call(&http, "PUT", &one, &[("if-match", "\"1\"")], Some(&changed)).await;
    let updated = expect(&reply, 200);
    assert_eq!(etag(&reply), "\"2\"");
    assert_eq!(
        (updated["title"].as_str(), updated["version"].as_u64()),
        (Some("Launch party"), Some(2))
    );
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_ne!(updated["updated_at"], created["updated_at"]);
    let reply = call(&http, "PUT", &one, &[("if-match", "\"1\"")], Some(&changed)).await;
    field(&reply, 412, "if-match");
    assert_eq!(etag(&reply), "\"2\"", "a 412 tells the current ETag");
    // Without If-Match the update goes through.
    let reply = call(
        &http,
        "PUT",
        &one,
        &[],
        Some(&event(
            "Launch",
            "2026-03-01T18:00:00Z",
            "2026-03-01T21:00:00Z",
        )),
    )
    .await;
    assert_eq!(expect(&reply, 200)["version"], 3);

    // Refusals name the field; nothing changes.
    let bad = |f: &str, v: Value| {
        let mut e = event("T", "2026-03-01T18:00:00Z", "2026-03-01T19:00:00Z");
        e[f] = v;
        e
    };
    for (body, name) in [
        (bad("title", json!("")), "title"),
        (bad("ends_at", json!("2026-03-01T17:00:00Z")), "ends_at"),
        (bad("starts_at", json!("tomorrow")), "starts_at"),
        (bad("capacity", json!(0)), "capacity"),
        (bad("capacity", json!(2.5)), "capacity"),
        (bad("colour", json!("red")), "colour"),
        (bad("id", json!("mine")), "id"),
    ] {
        field(
            &call(&http, "POST", &url, &[], Some(&body)).await,
            400,
            name,
        );
    }
    field(
        &call(&http, "PUT", &one, &[], Some(&bad("title", json!(7)))).await,
        400,
        "title",
    );
    field(
        &call(&http, "PUT", &one, &[], Some(&bad("id", json!("other")))).await,
        400,
        "id",
    );
    let reply = send(&http, "POST", &url, Some("text/plain"), b"{}").await;
    field(&reply, 415, "content-type");
    let reply = send(&http, "PUT", &one, Some("application/json"), b"{nope").await;
    field(&reply, 400, "body");
    field(
        &call(&http, "GET", &format!("{url}?limit=0"), &[], None).await,
        400,
        "limit",
    );
    field(
        &call(&http, "GET", &format!("{url}?cursor=zz"), &[], None).await,
        400,
        "cursor",
    );
    field(
        &call(&http, "GET", &format!("{url}?start=1"), &[], None).await,
        400,
        "start",
    );
    assert_eq!(
        expect(&call(&http, "GET", &one, &[], None).await, 200)["version"],
        3
    );

    // Unknown ids.
    let missing = format!("{url}/01ARZ3NDEKTSV4RRFFQ69G5FAV");
    field(&call(&http, "GET", &missing, &[], None).await, 404, "id");
    field(
        &call(&http, "PUT", &missing, &[], Some(&bad("title", json!("x")))).await,
        404,
        "id",
    );
    field(&call(&http, "DELETE", &missing, &[], None).await, 404, "id");

    // Delete: a stale ETag is refused, the current one deletes.
    field(
        &call(&http, "DELETE", &one, &[("if-match", "\"2\"")], None).await,
        412,
        "if-match",
    );
    assert_eq!(
        call(&http, "DELETE", &one, &[("if-match", "\"3\"")], None)
            .await
            .status,
        204
    );
    field(&call(&http, "GET", &one, &[], None).await, 404, "id");
    let list = expect(&call(&http, "GET", &url, &[], None).await, 200);
    assert_eq!(list["events"], json!([]));

    // Every action went to the log system, through the queue.
    let expected = [
        ("create_event", "success"),
        ("get_event", "success"),
        ("update_event", "success"),
        ("update_event", "failure"),
        ("create_event", "failure"),
        ("delete_event", "failure"),
        ("delete_event", "success"),
        ("get_event", "failure"),
        ("list_events", "success"),
        ("list_events", "failure"),
    ];
    let logged = wait_for(
        &http,
        &host,
        "service=event_service&user_id=alice",
        26,
        Duration::from_secs(20),
    )
    .await;
    let seen: BTreeSet<(String, String)> = logged
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (action, result) in expected {
        assert!(
            seen.contains(&(action.to_owned(), result.to_owned())),
            "{action}/{result} not logged: {seen:?}"
        );
    }
    let stale = logged
        .iter()
        .find(|r| r["action"] == "update_event" && r["status"] == 412)
        .expect("the stale update is logged");
    assert!(
        stale["cause"].as_str().unwrap().contains("If-Match"),
        "{stale}"
    );
    assert_eq!(stale["event_id"], id.as_str());
}

/// Listing is by `starts_at` ascending (ties by id), in pages without
/// duplicates or gaps; `from`/`to` bound it; moving an event's start moves
/// it in the list.
async fn time_order_and_pages(backends: Backends) {
    let host = Host::start_with_sections(&backends.sections(), &components());
    let http = Http::new();
    let url = host.url("/events");
    let mut made = Vec::new();
    for i in [5, 1, 9, 3, 3, 7, 0, 11, 3, 8, 2, 6] {
        let starts = format!("2026-04-{:02}T10:00:00Z", i + 1);
        let ends = format!("2026-04-{:02}T12:00:00Z", i + 1);
        let e = expect(
            &call(
                &http,
                "POST",
                &url,
                &[],
                Some(&event(&format!("e{i}"), &starts, &ends)),
            )
            .await,
            201,
        );
        made.push(e);
    }
    made.sort_by_key(|e| {
        (
            e["starts_at"].as_str().unwrap().to_owned(),
            e["id"].as_str().unwrap().to_owned(),
        )
    });
    let page_through = async |query: &str| {
        let mut got: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut u = format!("{url}?limit=5{query}");
            if let Some(c) = &cursor {
                u.push_str(&format!("&cursor={c}"));
            }
            let page = expect(&call(&http, "GET", &u, &[], None).await, 200);
            got.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return got,
            }
        }
    };
    let ids = |list: &[Value]| {
        list.iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&page_through("").await), ids(&made));
    let window: Vec<Value> = made
        .iter()
        .filter(|e| ("2026-04-03".."2026-04-09").contains(&&e["starts_at"].as_str().unwrap()[..10]))
        .cloned()
        .collect();
    let got = page_through("&from=2026-04-03T00:00:00Z&to=2026-04-08T23:59:59Z").await;
    assert_eq!(ids(&got), ids(&window));
    assert_eq!(window.len(), 7);
    // Move the first event to the end.
    let first = &made[0];
    let id = first["id"].as_str().unwrap();
    let moved = event("moved", "2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z");
    expect(
        &call(&http, "PUT", &format!("{url}/{id}"), &[], Some(&moved)).await,
        200,
    );
    let got = page_through("").await;
    assert_eq!(got.last().unwrap()["id"], id);
    assert_eq!(got.len(), 12);
}

/// Eight updates of one version at once: exactly one wins, the others get
/// 412; the event's version went up by one.
async fn concurrent_updates_of_one_version(backends: Backends) {
    let host = Host::start_with_sections(&backends.sections(), &components());
    let http = Http::new();
    let url = host.url("/events");
    let e = expect(
        &call(
            &http,
            "POST",
            &url,
            &[],
            Some(&event(
                "race",
                "2026-06-01T10:00:00Z",
                "2026-06-01T11:00:00Z",
            )),
        )
        .await,
        201,
    );
    let one = format!("{url}/{}", e["id"].as_str().unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (http, one) = (http.clone(), one.clone());
            tokio::spawn(async move {
                let body = event(
                    &format!("winner {i}"),
                    "2026-06-01T10:00:00Z",
                    "2026-06-01T11:00:00Z",
                );
                call(&http, "PUT", &one, &[("if-match", "\"1\"")], Some(&body))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 412, 412, 412, 412, 412, 412, 412],
        "{statuses:?}"
    );
    assert_eq!(
        expect(&call(&http, "GET", &one, &[], None).await, 200)["version"],
        2
    );
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_embedded {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(Backends::Embedded).await;
            })*
        }
        mod on_redis_and_rabbitmq {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backends = Backends::real();
                super::$name(backends).await;
            })*
        }
    };
}

on_both!(
    crud_with_etags_and_errors,
    time_order_and_pages,
    concurrent_updates_of_one_version,
);
