//! `kv-probe`: a test component that exposes the `keyvalue` capability over
//! HTTP, so end-to-end tests can drive it through the real host.
//!
//! Routes (the bucket is any name; the host decides whether it is granted):
//! - `GET    /kv/{bucket}/{key}`          → `{"key", "value", "ttl_ms"}` or 404
//! - `PUT    /kv/{bucket}/{key}`          body = value; `?ttl_ms=N` to expire,
//!   `?if_absent=1` for set-if-absent → `{"set": bool}`
//! - `DELETE /kv/{bucket}/{key}`          → `{"deleted": true}`
//! - `GET    /kv/{bucket}/{key}/ttl`      → `{"ttl_ms": n | null}`
//! - `POST   /kv/{bucket}/{key}/incr?by=N` → `{"value": n}`
//! - `GET    /kv/{bucket}`                → `{"keys": [...]}` (sorted)
//!
//! A key-value error answers `{"error": {"code", "message"}}` with 403
//! (`access_denied`), 404 (`no_such_store`) or 500 (`keyvalue_error`).

use std::time::Duration;

use corral_sdk::http::{Error, Handler, Request, Response, percent_decode};
use corral_sdk::kv::{self, Bucket};
use serde_json::json;

struct Probe;

fn handle_key(
    request: &Request,
    bucket: &Bucket,
    key: &str,
    action: Option<&str>,
) -> Result<Response, Error> {
    let number = |name: &str| {
        request
            .query_param(name)
            .and_then(|v| v.parse::<u64>().ok())
    };
    Ok(match (request.method.as_str(), action) {
        ("GET", None) => match bucket.get(key)? {
            Some(value) => Response::json(
                200,
                &json!({
                    "key": key,
                    "value": String::from_utf8_lossy(&value),
                    "ttl_ms": bucket.ttl(key)?.map(|d| d.as_millis() as u64),
                }),
            ),
            None => Response::error(404, "not_found", Some("key"), &format!("no key {key:?}")),
        },
        ("PUT", None) => {
            let ttl = number("ttl_ms").map(Duration::from_millis);
            let set = if request.query_param("if_absent").is_some() {
                bucket.set_if_absent(key, &request.body, ttl)?
            } else {
                match ttl {
                    Some(ttl) => bucket.set_with_ttl(key, &request.body, ttl)?,
                    None => bucket.set(key, &request.body)?,
                }
                true
            };
            Response::json(200, &json!({ "set": set }))
        }
        ("DELETE", None) => {
            bucket.delete(key)?;
            Response::json(200, &json!({ "deleted": true }))
        }
        ("GET", Some("ttl")) => Response::json(
            200,
            &json!({ "ttl_ms": bucket.ttl(key)?.map(|d| d.as_millis() as u64) }),
        ),
        ("POST", Some("incr")) => {
            let value = bucket.increment(key, number("by").unwrap_or(1))?;
            Response::json(200, &json!({ "value": value }))
        }
        (method, _) => Response::method_not_allowed(method, "GET, PUT, DELETE, POST"),
    })
}

impl Handler for Probe {
    fn handle(request: Request) -> Result<Response, Error> {
        let not_found = || Error::not_found(&request.path);
        let segments = request.segments_after("/kv").ok_or_else(not_found)?;
        let segments: Vec<String> = segments.iter().map(|s| percent_decode(s)).collect();
        let bucket_name = segments.first().ok_or_else(not_found)?;
        let bucket = kv::open(bucket_name)?;
        match (segments.get(1), segments.get(2), segments.len()) {
            (None, _, _) if request.method == "GET" => {
                let mut keys = bucket.keys().collect::<Result<Vec<_>, _>>()?;
                keys.sort();
                Ok(Response::json(200, &json!({ "keys": keys })))
            }
            (Some(key), action, 2 | 3) => {
                handle_key(&request, &bucket, key, action.map(String::as_str))
            }
            _ => Err(not_found()),
        }
    }
}

corral_sdk::http_component!(Probe);
