//! `events`: seed 002's extra CRUD service, events with a time and a
//! place, listed in time order.
//!
//! | method | path            | does                                                   |
//! |--------|-----------------|--------------------------------------------------------|
//! | POST   | `/events`       | create; 201 with the event, `Location`, `ETag`          |
//! | GET    | `/events`       | list by `starts_at` ascending: `from`, `to`, `limit`, `cursor` |
//! | GET    | `/events/{id}`  | one event, with its `ETag`                              |
//! | PUT    | `/events/{id}`  | replace its fields; `If-Match` (412 when stale)         |
//! | DELETE | `/events/{id}`  | delete; `If-Match` (412 when stale); 204                |
//!
//! Storage (key-value bucket `events`): `e:<id>` holds the event's JSON
//! (with its `version`, the ETag), and the ordered index `by-start` holds
//! every id scored by its `starts_at` in milliseconds; an event and its
//! index entry are written by one `apply`. A change takes the key
//! `lock:<id>` (set-if-absent, expiring after 5 s) while it reads, checks
//! `If-Match` and writes, so two updates of one version cannot both win.
//!
//! Every action is logged (`event_service` / `create_event`, `get_event`,
//! `list_events`, `update_event`, `delete_event`, success or failure with
//! its cause) through the `logs` queue (config `log_queue`); the user is
//! the `x-user-id` header, `-` without one. A log that cannot be
//! published is written to the component's own log; the action stands.
//!
//! Configuration (`[component.config]`): `bucket` (default `events`),
//! `log_queue` (default `logs`).

mod event;

use std::time::Duration;

use corral_sdk::audit::Record;
use corral_sdk::http::{Handler, Request, Response, etag_matches, percent_decode};
use corral_sdk::kv::{self, Bucket, Changes, Position, Range};
use corral_sdk::{config, id, time};
use serde_json::{Value, json};

use event::Problem;

const SERVICE: &str = "event_service";
const INDEX: &str = "by-start";
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const LOCK_TTL: Duration = Duration::from_secs(5);

struct Events;

/// What one request did, for its log record: the action and its outcome.
struct Outcome {
    response: Response,
    action: &'static str,
    event_id: Option<String>,
}

impl Handler for Events {
    fn handle(request: Request) -> Result<Response, corral_sdk::http::Error> {
        let user = request
            .header("x-user-id")
            .map(str::trim)
            .filter(|u| !u.is_empty() && u.len() <= 128)
            .unwrap_or("-")
            .to_owned();
        let Some(outcome) = route(&request) else {
            return Err(corral_sdk::http::Error::not_found(&request.path));
        };
        if !outcome.action.is_empty() {
            let mut record =
                Record::new(SERVICE, &user, outcome.action).outcome_of(&outcome.response);
            if let Some(id) = outcome.event_id {
                record = record.with("event_id", id);
            }
            record.send();
        }
        Ok(outcome.response)
    }
}

fn route(request: &Request) -> Option<Outcome> {
    let segments = request.segments_after("/events")?;
    let method = request.method.as_str();
    let (action, id, response) = match (method, segments.as_slice()) {
        ("POST", []) => {
            let (id, response) = create(request);
            ("create_event", id, response)
        }
        ("GET" | "HEAD", []) => ("list_events", None, list(request)),
        (_, []) => return Some(plain(Response::method_not_allowed(method, "GET, POST"))),
        ("GET" | "HEAD", [id]) => ("get_event", Some(id.to_string()), get(request, id)),
        ("PUT", [id]) => ("update_event", Some(id.to_string()), update(request, id)),
        ("DELETE", [id]) => ("delete_event", Some(id.to_string()), delete(request, id)),
        (_, [_]) => {
            return Some(plain(Response::method_not_allowed(
                method,
                "GET, PUT, DELETE",
            )));
        }
        _ => return None,
    };
    Some(Outcome {
        response,
        action,
        event_id: id,
    })
}

/// A response that is no action of the service (405): not logged as one.
fn plain(response: Response) -> Outcome {
    Outcome {
        response,
        action: "",
        event_id: None,
    }
}

fn bad(p: Problem) -> Response {
    Response::error(400, p.code, Some(&p.field), &p.message)
}

fn store_error(e: &kv::Error) -> Response {
    Response::error(e.http_status(), e.code(), None, &e.to_string())
}

fn not_found(id: &str) -> Response {
    Response::error(404, "not_found", Some("id"), &format!("no event {id:?}"))
}

fn open() -> Result<Bucket, kv::Error> {
    kv::open(&config::get_or("bucket", "events"))
}

fn key(id: &str) -> String {
    format!("e:{id}")
}

fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The JSON body of a POST or PUT: 415 unless it says it is JSON, 400
/// unless it is.
fn json_body(request: &Request) -> Result<Value, Response> {
    request.json_body().map_err(Response::from)
}

fn with_etag(response: Response, event: &Value) -> Response {
    let version = event["version"].as_u64().unwrap_or(0);
    response.with_header("etag", &etag(version))
}

fn create(request: &Request) -> (Option<String>, Response) {
    let body = match json_body(request) {
        Ok(body) => body,
        Err(response) => return (None, response),
    };
    let fields = match event::check(&body, None) {
        Ok(fields) => fields,
        Err(p) => return (None, bad(p)),
    };
    let now = time::now_millis();
    let id = id::new(now);
    let stamp = time::format_unix_millis(now);
    let event = fields.to_json(&id, &stamp, &stamp, 1);
    let changes = Changes::new()
        .set(key(&id), serde_json::to_vec(&event).expect("serialisable"))
        .add(INDEX, id.clone(), fields.starts_at_ms);
    if let Err(e) = open().and_then(|b| b.apply(&changes)) {
        return (None, store_error(&e));
    }
    let response = with_etag(Response::json(201, &event), &event)
        .with_header("location", &format!("/events/{id}"));
    (Some(id), response)
}

fn load(bucket: &Bucket, id: &str) -> Result<Option<Value>, kv::Error> {
    bucket.get_json(&key(id))
}

fn get(request: &Request, id: &str) -> Response {
    let found = open().and_then(|b| load(&b, id));
    match found {
        Ok(Some(event)) => {
            let tag = etag(event["version"].as_u64().unwrap_or(0));
            if request
                .header("if-none-match")
                .is_some_and(|h| etag_matches(h, &tag))
            {
                return Response::new(304, "application/json", Vec::new())
                    .with_header("etag", &tag);
            }
            with_etag(Response::json(200, &event), &event)
        }
        Ok(None) => not_found(id),
        Err(e) => store_error(&e),
    }
}

/// Runs `change` on event `id` under its lock, after the `If-Match` check.
fn locked_change(
    request: &Request,
    id: &str,
    change: impl FnOnce(&Bucket, Value) -> Response,
) -> Response {
    let bucket = match open() {
        Ok(b) => b,
        Err(e) => return store_error(&e),
    };
    let lock = format!("lock:{id}");
    let token = id::new(time::now_millis());
    let mut taken = false;
    // Up to 3 s: a change holds the lock for milliseconds.
    for _ in 0..150 {
        match bucket.set_if_absent(&lock, token.as_bytes(), Some(LOCK_TTL)) {
            Ok(true) => {
                taken = true;
                break;
            }
            Ok(false) => {
                corral_sdk::wasip2::clocks::monotonic_clock::subscribe_duration(20_000_000).block()
            }
            Err(e) => return store_error(&e),
        }
    }
    if !taken {
        return Response::error(
            503,
            "busy",
            Some("id"),
            "the event is being changed by another request; try again",
        )
        .with_header("retry-after", "1");
    }
    let response = match load(&bucket, id) {
        Ok(None) => not_found(id),
        Err(e) => store_error(&e),
        Ok(Some(event)) => {
            let tag = etag(event["version"].as_u64().unwrap_or(0));
            match request.header("if-match") {
                Some(header) if !etag_matches(header, &tag) => Response::error(
                    412,
                    "precondition_failed",
                    Some("if-match"),
                    &format!("the event changed: If-Match {header} but its ETag is {tag}"),
                )
                .with_header("etag", &tag),
                _ => change(&bucket, event),
            }
        }
    };
    // Release only our own lock (it may have expired and been taken).
    if bucket.get(&lock).ok().flatten().as_deref() == Some(token.as_bytes()) {
        let _ = bucket.delete(&lock);
    }
    response
}

fn update(request: &Request, id: &str) -> Response {
    let body = match json_body(request) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let fields = match event::check(&body, Some(id)) {
        Ok(fields) => fields,
        Err(p) => return bad(p),
    };
    locked_change(request, id, |bucket, old| {
        let version = old["version"].as_u64().unwrap_or(0) + 1;
        let created = old["created_at"].as_str().unwrap_or_default().to_owned();
        let event = fields.to_json(id, &created, &time::now_rfc3339(), version);
        let changes = Changes::new()
            .set(key(id), serde_json::to_vec(&event).expect("serialisable"))
            .add(INDEX, id, fields.starts_at_ms);
        match bucket.apply(&changes) {
            Ok(()) => with_etag(Response::json(200, &event), &event),
            Err(e) => store_error(&e),
        }
    })
}

fn delete(request: &Request, id: &str) -> Response {
    locked_change(request, id, |bucket, _| {
        let changes = Changes::new().delete(key(id)).remove(INDEX, id);
        match bucket.apply(&changes) {
            Ok(()) => Response::new(204, "application/json", Vec::new()),
            Err(e) => store_error(&e),
        }
    })
}

/// `GET /events`: by `starts_at` ascending, `from`/`to` bounding it.
fn list(request: &Request) -> Response {
    let query = match list_query(request) {
        Ok(q) => q,
        Err(p) => return bad(p),
    };
    let (range, limit) = query;
    let bucket = match open() {
        Ok(b) => b,
        Err(e) => return store_error(&e),
    };
    let page = match bucket.range(INDEX, &range.limit(limit)) {
        Ok(page) => page,
        Err(e) => return store_error(&e),
    };
    let keys: Vec<String> = page.entries.iter().map(|(id, _)| key(id)).collect();
    let values = match bucket.get_many(&keys) {
        Ok(values) => values,
        Err(e) => return store_error(&e),
    };
    // An entry whose event was deleted meanwhile is skipped.
    let events: Vec<Value> = values
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_slice(&v).ok())
        .collect();
    let next = page.next.map(|p| p.to_cursor());
    Response::json(
        200,
        &json!({ "events": events, "count": events.len(), "next_cursor": next }),
    )
}

fn list_query(request: &Request) -> Result<(Range, u32), Problem> {
    let known = ["from", "to", "limit", "cursor"];
    let mut range = Range::ascending();
    let mut limit = DEFAULT_LIMIT;
    let mut seen: Vec<String> = Vec::new();
    let problem = |field: &str, message: String| event::problem(field, message);
    for pair in request
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        if !known.contains(&k.as_str()) {
            return Err(problem(
                &k,
                format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
            ));
        }
        if seen.contains(&k) {
            return Err(problem(&k, format!("{k} is given twice")));
        }
        seen.push(k.clone());
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "from" | "to" => {
                let ms = time::parse_timestamp(&v).map_err(|m| problem(&k, m))?;
                range = if k == "from" {
                    range.min(Some(ms))
                } else {
                    range.max(Some(ms))
                };
            }
            "limit" => {
                limit = match v.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(problem(
                            "limit",
                            format!("limit is a whole number from 1 to {MAX_LIMIT}, not {v:?}"),
                        ));
                    }
                };
            }
            _ => {
                let position = Position::from_cursor(&v).ok_or_else(|| {
                    problem(
                        "cursor",
                        "not a cursor this service gave out (use next_cursor as it is)".into(),
                    )
                })?;
                range = range.after(position);
            }
        }
    }
    Ok((range, limit))
}

corral_sdk::http_component!(Events);
