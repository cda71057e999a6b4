//! The HTTP API: routes, request parsing, responses. Errors are the
//! platform's JSON shape, `{"error": {"code", "message", "field"?}}`;
//! a 400 names the field (`[3].service` inside a batch).

use corral_sdk::http::{Request, Response, percent_decode};
use corral_sdk::{config, kv, time};
use serde_json::{Value, json};

use crate::record::{self, IdSource, MAX_NAME, Problem, RESULTS, check};
use crate::store::{Cursor, FILTERS, Filters, Query};
use crate::{PAGE, open};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;
/// Most records in one `POST /logs` (one all-or-nothing write).
const MAX_BATCH: usize = 1000;
const MAX_BUCKETS: i64 = 1440;

pub fn route(request: &Request) -> Response {
    let method = request.method.as_str();
    match (method, request.path.as_str()) {
        ("POST", "/log") => post(request, false),
        (_, "/log") => Response::method_not_allowed(method, "POST"),
        ("GET" | "HEAD", "/logs/") => Response::html(200, PAGE),
        ("GET" | "HEAD", "/logs") => list(request),
        ("POST", "/logs") => post(request, true),
        (_, "/logs") => Response::method_not_allowed(method, "GET, POST"),
        ("GET" | "HEAD", "/logs/stats") => stats(request),
        ("GET" | "HEAD", path) if path.starts_with("/logs/") => one(&path["/logs/".len()..]),
        (_, path) if path.starts_with("/logs/") => Response::method_not_allowed(method, "GET"),
        (_, path) => Response::not_found(path),
    }
}

fn bad(problem: Problem) -> Response {
    Response::error(400, problem.code, Some(&problem.field), &problem.message)
}

fn store_error(e: &kv::Error) -> Response {
    Response::error(e.http_status(), e.code(), None, &e.to_string())
}

/// Whether the request says its body is JSON (`application/json`, or any
/// `+json` type, with or without parameters).
fn is_json(request: &Request) -> bool {
    request.header("content-type").is_some_and(|ct| {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    })
}

fn max_batch() -> usize {
    config::get("max_batch")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH)
}

/// `POST /log` (one record) and `POST /logs` (an array): checked whole
/// before anything is stored; 201 once stored and readable.
fn post(request: &Request, many: bool) -> Response {
    if !is_json(request) {
        let got = request.header("content-type").unwrap_or("none");
        return Response::error(
            415,
            "unsupported_media_type",
            Some("content-type"),
            &format!("send the records as JSON (content-type: application/json); got {got}"),
        );
    }
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(e) => {
            return bad(Problem::coded(
                "invalid_json",
                "body",
                format!("the body is not valid JSON: {e}"),
            ));
        }
    };
    let now = time::now_millis();
    let records = match (many, body) {
        (false, Value::Array(_)) => {
            return bad(Problem::new(
                "body",
                "POST /log takes one record (an object); send arrays to POST /logs",
            ));
        }
        (false, one) => match check(one, now, IdSource::Random) {
            Ok(record) => vec![record],
            Err(problem) => return bad(problem),
        },
        (true, Value::Array(items)) => {
            if items.is_empty() {
                return bad(Problem::new("body", "the array holds no records"));
            }
            let limit = max_batch();
            if items.len() > limit {
                return bad(Problem::new(
                    "body",
                    format!(
                        "{} records in one request; the limit is {limit}",
                        items.len()
                    ),
                ));
            }
            let checked: Result<Vec<_>, Problem> = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| check(item, now, IdSource::Random).map_err(|p| p.at(i)))
                .collect();
            match checked {
                Ok(records) => records,
                Err(problem) => return bad(problem),
            }
        }
        (true, other) => {
            return bad(Problem::new(
                "body",
                format!(
                    "POST /logs takes a JSON array of records, not {}; one record goes to POST /log",
                    record::kind_of(&other)
                ),
            ));
        }
    };
    let stored = open().and_then(|store| store.write(&records));
    if let Err(e) = stored {
        return store_error(&e);
    }
    if many {
        let ids: Vec<String> = records.iter().map(|r| r.id.to_string()).collect();
        let json: Vec<&serde_json::Map<String, Value>> = records.iter().map(|r| &r.json).collect();
        Response::json(
            201,
            &json!({ "count": records.len(), "ids": ids, "records": json }),
        )
    } else {
        let record = &records[0];
        Response::json(201, &record.json).with_header("location", &format!("/logs/{}", record.id))
    }
}

/// `GET /logs/{id}`.
fn one(id: &str) -> Response {
    if crate::id::Id::parse(id).is_none() {
        return Response::error(
            404,
            "not_found",
            Some("id"),
            &format!("no log record {id:?}"),
        );
    }
    match open().and_then(|store| store.get(&id.to_ascii_uppercase())) {
        Ok(Some(json)) => Response::new(200, "application/json", json),
        Ok(None) => Response::error(
            404,
            "not_found",
            Some("id"),
            &format!("no log record {id:?}"),
        ),
        Err(e) => store_error(&e),
    }
}

/// The query string as decoded pairs; a parameter given twice is an error.
fn params(request: &Request, known: &[&str]) -> Result<Vec<(String, String)>, Problem> {
    let mut out: Vec<(String, String)> = Vec::new();
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
            return Err(Problem::new(
                k.clone(),
                format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
            ));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(Problem::new(k.clone(), format!("{k} is given twice")));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A time bound: Unix milliseconds, RFC 3339 or the seed-001 form.
fn time_param(params: &[(String, String)], name: &str) -> Result<Option<i64>, Problem> {
    let Some(text) = param(params, name).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Some)
            .map_err(|_| Problem::new(name, format!("{name}={text} is too large")));
    }
    record::parse_time(text)
        .map(Some)
        .map_err(|m| Problem::new(name, format!("{name}: {m} (or Unix milliseconds)")))
}

fn filters(params: &[(String, String)]) -> Result<Filters, Problem> {
    let mut filters = Filters::default();
    for (i, (name, _)) in FILTERS.iter().enumerate() {
        let Some(value) = param(params, name) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        if value.len() > MAX_NAME {
            return Err(Problem::new(
                *name,
                format!("{name} is longer than {MAX_NAME} bytes"),
            ));
        }
        if *name == "result" && !RESULTS.contains(&value) {
            return Err(Problem::new(
                "result",
                format!("result is \"success\" or \"failure\", not {value:?}"),
            ));
        }
        filters.0[i] = Some(value.to_owned());
    }
    Ok(filters)
}

fn range(params: &[(String, String)]) -> Result<(Option<i64>, Option<i64>), Problem> {
    let (from, to) = (time_param(params, "from")?, time_param(params, "to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(Problem::new("from", "from is after to"));
    }
    Ok((from, to))
}

const QUERY_PARAMS: [&str; 8] = [
    "service", "user_id", "action", "result", "from", "to", "limit", "cursor",
];

fn parse_query(request: &Request) -> Result<Query, Problem> {
    let params = params(request, &QUERY_PARAMS)?;
    let filters = filters(&params)?;
    let (from, to) = range(&params)?;
    let limit = match param(&params, "limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(Problem::new(
                    "limit",
                    format!("limit is a whole number from 1 to {MAX_LIMIT}, not {text:?}"),
                ));
            }
        },
    };
    let cursor = match param(&params, "cursor") {
        None | Some("") => None,
        Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
            Problem::new(
                "cursor",
                "not a cursor this service gave out (use next_cursor as it is)",
            )
        })?),
    };
    Ok(Query {
        filters,
        from,
        to,
        limit,
        cursor,
    })
}

/// `GET /logs`: newest first. The records go out as stored, without
/// being parsed again.
fn list(request: &Request) -> Response {
    let query = match parse_query(request) {
        Ok(query) => query,
        Err(problem) => return bad(problem),
    };
    let found = match open().and_then(|store| store.query(&query)) {
        Ok(found) => found,
        Err(e) => return store_error(&e),
    };
    let mut body = Vec::with_capacity(found.records.iter().map(Vec::len).sum::<usize>() + 128);
    body.extend_from_slice(b"{\"records\":[");
    for (i, stored) in found.records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(stored);
    }
    let next = found.next.map(|c| c.encode());
    body.extend_from_slice(
        format!(
            "],\"count\":{},\"scanned\":{},\"next_cursor\":{}}}",
            found.records.len(),
            found.scanned,
            serde_json::to_string(&next).expect("serialisable"),
        )
        .as_bytes(),
    );
    Response::new(200, "application/json", body)
}

/// `GET /logs/stats?from=&to=&bucket=60&<filters>`: records per time
/// bucket (seconds) and result; the last hour by default.
fn stats(request: &Request) -> Response {
    let parsed = (|| {
        let known = [
            "service", "user_id", "action", "result", "from", "to", "bucket",
        ];
        let params = params(request, &known)?;
        let filters = filters(&params)?;
        let (from, to) = range(&params)?;
        let to = to.unwrap_or_else(time::now_millis);
        let from = from.unwrap_or(to - 3_600_000);
        if from > to {
            return Err(Problem::new("from", "from is after to"));
        }
        let bucket_s = match param(&params, "bucket") {
            None | Some("") => 60,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=86_400).contains(&n) => n,
                _ => {
                    return Err(Problem::new(
                        "bucket",
                        format!("bucket is a number of seconds from 1 to 86400, not {text:?}"),
                    ));
                }
            },
        };
        let bucket_ms = bucket_s * 1000;
        let buckets = (to - from.div_euclid(bucket_ms) * bucket_ms) / bucket_ms + 1;
        if buckets > MAX_BUCKETS {
            return Err(Problem::new(
                "bucket",
                format!(
                    "from..to in buckets of {bucket_s} s makes {buckets} buckets; the limit is {MAX_BUCKETS}: choose a larger bucket"
                ),
            ));
        }
        Ok((filters, from, to, bucket_s))
    })();
    let (filters, from, to, bucket_s) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return bad(problem),
    };
    let stats = match open().and_then(|store| store.stats(&filters, from, to, bucket_s * 1000)) {
        Ok(stats) => stats,
        Err(e) => return store_error(&e),
    };
    let mut total = [0u64; 2];
    let buckets: Vec<Value> = stats
        .counts
        .iter()
        .enumerate()
        .map(|(i, [success, failure])| {
            total[0] += success;
            total[1] += failure;
            let start = stats.first + i as i64 * stats.bucket_ms;
            json!({
                "start": time::format_unix_millis(start),
                "start_ms": start,
                "success": success,
                "failure": failure,
            })
        })
        .collect();
    Response::json(
        200,
        &json!({
            "from": time::format_unix_millis(from),
            "to": time::format_unix_millis(to),
            "bucket_seconds": bucket_s,
            "buckets": buckets,
            "total": { "success": total[0], "failure": total[1] },
            "complete": stats.complete,
        }),
    )
}
