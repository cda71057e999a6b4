//! `users`: seed 002's user service.
//!
//! | method | path           | does                                                      |
//! |--------|----------------|-----------------------------------------------------------|
//! | POST   | `/users`       | create; 201 with the user, `Location`, `ETag`; 409 on a taken email or username |
//! | GET    | `/users`       | list in creation order: `limit`, `cursor`, `email`, `username` |
//! | GET    | `/users/{id}`  | one user, with its `ETag` (`If-None-Match`: 304)           |
//! | PUT    | `/users/{id}`  | replace its fields; `If-Match` (412 when stale)            |
//! | PATCH  | `/users/{id}`  | change the fields given; `If-Match` (412 when stale)       |
//! | DELETE | `/users/{id}`  | delete; `If-Match` (412 when stale); 204                   |
//!
//! The fields and their checks are in [`user`], the storage (and how
//! email and username stay unique under concurrent creates) in [`store`].
//! Passwords are hashed by the host (`corral:platform/passwords`,
//! argon2id) and only the hash is stored; no answer ever carries it.
//!
//! Every action is logged (`user_service` / `create_user`, `get_user`,
//! `list_users`, `update_user`, `delete_user`, success or failure with its
//! cause) through the `logs` queue (config `log_queue`): `user_id` is the
//! user acted on, else the caller's `x-user-id` header, else `-`; a caller
//! named by `x-user-id` is also `actor`.
//!
//! A key-value store that is down answers 503 `backend_unavailable` with
//! `retry-after`; so does (as `busy`) a host whose password hashing stays
//! busy.
//!
//! Configuration (`[component.config]`): `bucket` (default `users`),
//! `log_queue` (default `logs`).

mod login;
mod store;
mod user;

use corral_sdk::audit::Record;
use corral_sdk::http::{self, Handler, Request, Response, etag_matches, percent_decode};
use corral_sdk::kv::{self, Bucket, Changes, Position, Range};
use corral_sdk::{id, passwords, time};
use serde_json::{Value, json};

use store::{Lock, Unique};
use user::{Mode, Problem};

const SERVICE: &str = "user_service";
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

struct Users;

/// What one request did, for its log record.
struct Outcome {
    action: &'static str,
    /// The user acted on, when there is one.
    subject: Option<String>,
    response: Response,
}

impl Handler for Users {
    fn handle(request: Request) -> Result<Response, http::Error> {
        let actor = request
            .header("x-user-id")
            .map(str::trim)
            .filter(|u| !u.is_empty() && u.len() <= 128)
            .map(str::to_owned);
        let Some(outcome) = route(&request) else {
            return Err(http::Error::not_found(&request.path));
        };
        if !outcome.action.is_empty() {
            let user_id = outcome
                .subject
                .as_deref()
                .or(actor.as_deref())
                .unwrap_or("-");
            let mut record =
                Record::new(SERVICE, user_id, outcome.action).outcome_of(&outcome.response);
            if let Some(actor) = actor {
                record = record.with("actor", actor);
            }
            record.send();
        }
        Ok(outcome.response)
    }
}

fn route(request: &Request) -> Option<Outcome> {
    if request.path == "/auth" {
        return Some(match request.method.as_str() {
            "POST" => {
                let (id, result) = login::login(request);
                Outcome {
                    action: "login",
                    subject: id,
                    response: result.unwrap_or_else(Response::from),
                }
            }
            method => plain(Response::method_not_allowed(method, "POST")),
        });
    }
    let segments = request.segments_after("/users")?;
    let method = request.method.as_str();
    // Only an id this service could have made names the user acted on.
    let done = |action, subject: Option<&str>, result: Result<Response, http::Error>| Outcome {
        action,
        subject: subject.filter(|s| id::is_valid(s)).map(str::to_owned),
        response: result.unwrap_or_else(Response::from),
    };
    Some(match (method, segments.as_slice()) {
        ("POST", []) => {
            let (id, result) = create(request);
            done("create_user", id.as_deref(), result)
        }
        ("GET" | "HEAD", []) => done("list_users", None, list(request)),
        (_, []) => plain(Response::method_not_allowed(method, "GET, POST")),
        ("GET" | "HEAD", [id]) => done("get_user", Some(id), get(request, id)),
        ("PUT", [id]) => done("update_user", Some(id), update(request, id, Mode::Replace)),
        ("PATCH", [id]) => done("update_user", Some(id), update(request, id, Mode::Patch)),
        ("DELETE", [id]) => done("delete_user", Some(id), delete(request, id)),
        (_, [_]) => plain(Response::method_not_allowed(
            method,
            "GET, PUT, PATCH, DELETE",
        )),
        _ => return None,
    })
}

/// A response that is no action of the service (405): not logged as one.
fn plain(response: Response) -> Outcome {
    Outcome {
        action: "",
        subject: None,
        response,
    }
}

fn bad(p: Problem) -> http::Error {
    http::Error::new(400, p.code, p.message).with_field(p.field)
}

/// The platform's answer for a store error: an outage (the host marks it)
/// is 503 `backend_unavailable` with `Retry-After`; anything else (a
/// bucket the grant does not give, a value the store refused) is the
/// deployment's fault, 500.
fn store_error(e: kv::Error) -> http::Error {
    http::Error::from(e)
}

fn not_found(id: &str) -> http::Error {
    http::Error::new(404, "not_found", format!("no user {id:?}")).with_field("id")
}

fn conflict(unique: Unique, value: &str) -> http::Error {
    let field = unique.field();
    http::Error::new(
        409,
        "conflict",
        format!("{field} {value:?} belongs to another user"),
    )
    .with_field(field)
}

fn etag(user: &Value) -> String {
    format!("\"{}\"", user["version"].as_u64().unwrap_or(0))
}

/// The user as shown, with its ETag.
fn shown(status: u16, user: &Value) -> Response {
    Response::json(status, &user::public(user)).with_header("etag", &etag(user))
}

fn open() -> Result<Bucket, http::Error> {
    store::open().map_err(store_error)
}

/// Hashes a new password through the host (an update hashes before it
/// takes the user's lock: hashing takes tens of milliseconds).
fn hash(password: Option<&Option<String>>) -> Result<Option<Option<String>>, http::Error> {
    Ok(match password {
        None => None,
        Some(None) => Some(None),
        Some(Some(p)) => Some(Some(passwords::hash(p)?)),
    })
}

fn create(request: &Request) -> (Option<String>, Result<Response, http::Error>) {
    let mut made = None;
    let result = (|| {
        let body: Value = request.json_body()?;
        let fields = user::check(&body, Mode::Create, None).map_err(bad)?;
        let bucket = open()?;
        let now = time::now_millis();
        let id = id::new(now);
        let mut unique = vec![(Unique::Email, fields.email.clone().unwrap_or_default())];
        if let Some(Some(username)) = &fields.username {
            unique.push((Unique::Username, username.clone()));
        }
        if let Err(taken) = store::claim(&bucket, &id, &unique).map_err(store_error)? {
            let value = unique
                .iter()
                .find(|(u, _)| *u == taken)
                .map(|(_, v)| v.as_str());
            return Err(conflict(taken, value.unwrap_or_default()));
        }
        // Hashing after the claim: a duplicate is refused without spending
        // a hash. A failure gives the claims back.
        let hash = match hash(fields.password.as_ref()) {
            Ok(hash) => hash.flatten(),
            Err(e) => {
                store::release(&bucket, &id, unique);
                return Err(e);
            }
        };
        let stamp = time::format_unix_millis(now);
        let stored = user::stored(&id, &fields, hash.as_deref(), &stamp, &stamp, 1);
        let changes = Changes::new()
            .set(
                store::user_key(&id),
                serde_json::to_vec(&stored).expect("serialisable"),
            )
            .add(store::INDEX, id.clone(), now);
        if let Err(e) = bucket.apply(&changes) {
            store::release(&bucket, &id, unique);
            return Err(store_error(e));
        }
        made = Some(id.clone());
        Ok(shown(201, &stored).with_header("location", &format!("/users/{id}")))
    })();
    (made, result)
}

fn get(request: &Request, id: &str) -> Result<Response, http::Error> {
    if !id::is_valid(id) {
        return Err(not_found(id));
    }
    let bucket = open()?;
    let user = store::load(&bucket, id)
        .map_err(store_error)?
        .ok_or_else(|| not_found(id))?;
    let tag = etag(&user);
    if request
        .header("if-none-match")
        .is_some_and(|h| etag_matches(h, &tag))
    {
        return Ok(Response::new(304, "application/json", Vec::new()).with_header("etag", &tag));
    }
    Ok(shown(200, &user))
}

/// Runs `change` on user `id` under its lock, after the `If-Match` check.
fn locked_change(
    request: &Request,
    id: &str,
    change: impl FnOnce(&Bucket, Value) -> Result<Response, http::Error>,
) -> Result<Response, http::Error> {
    if !id::is_valid(id) {
        return Err(not_found(id));
    }
    let bucket = open()?;
    let Some(lock) = Lock::take(&bucket, &format!("lock:{id}")).map_err(store_error)? else {
        return Err(http::Error::new(
            503,
            "busy",
            "the user is being changed by another request; try again",
        )
        .with_field("id")
        .with_header("retry-after", "1"));
    };
    let result = (|| {
        let user = store::load(&bucket, id)
            .map_err(store_error)?
            .ok_or_else(|| not_found(id))?;
        let tag = etag(&user);
        if let Some(header) = request.header("if-match") {
            if !etag_matches(header, &tag) {
                return Err(http::Error::new(
                    412,
                    "precondition_failed",
                    format!("the user changed: If-Match {header} but its ETag is {tag}"),
                )
                .with_field("if-match")
                .with_header("etag", &tag));
            }
        }
        change(&bucket, user)
    })();
    lock.release(&bucket);
    result
}

fn update(request: &Request, id: &str, mode: Mode) -> Result<Response, http::Error> {
    let body: Value = request.json_body()?;
    let fields = user::check(&body, mode, Some(id)).map_err(bad)?;
    let new_hash = hash(fields.password.as_ref())?;
    locked_change(request, id, |bucket, old| {
        let text = |field: &str| old[field].as_str().map(str::to_owned);
        let merged = user::Changes {
            name: fields.name.clone().or_else(|| text("name")),
            email: fields.email.clone().or_else(|| text("email")),
            username: Some(fields.username.clone().unwrap_or_else(|| text("username"))),
            password: None,
        };
        let hash = new_hash.unwrap_or_else(|| text("password_hash"));
        // New unique values are claimed first; the old claims go with the
        // write.
        let mut wanted = Vec::new();
        let mut dropped = Vec::new();
        for (unique, new) in [
            (Unique::Email, merged.email.clone()),
            (Unique::Username, merged.username.clone().flatten()),
        ] {
            let old = text(unique.field());
            if new != old {
                wanted.extend(new.map(|v| (unique, v)));
                dropped.extend(old.map(|v| unique.key(&v)));
            }
        }
        if let Err(taken) = store::claim(bucket, id, &wanted).map_err(store_error)? {
            let value = wanted
                .iter()
                .find(|(u, _)| *u == taken)
                .map(|(_, v)| v.as_str());
            return Err(conflict(taken, value.unwrap_or_default()));
        }
        let version = old["version"].as_u64().unwrap_or(0) + 1;
        let created = text("created_at").unwrap_or_default();
        let stored = user::stored(
            id,
            &merged,
            hash.as_deref(),
            &created,
            &time::now_rfc3339(),
            version,
        );
        let mut changes = Changes::new().set(
            store::user_key(id),
            serde_json::to_vec(&stored).expect("serialisable"),
        );
        for key in dropped {
            changes = changes.delete(key);
        }
        if let Err(e) = bucket.apply(&changes) {
            store::release(bucket, id, wanted);
            return Err(store_error(e));
        }
        Ok(shown(200, &stored))
    })
}

fn delete(request: &Request, id: &str) -> Result<Response, http::Error> {
    locked_change(request, id, |bucket, old| {
        let mut changes = Changes::new()
            .delete(store::user_key(id))
            .remove(store::INDEX, id);
        for unique in [Unique::Email, Unique::Username] {
            if let Some(value) = old[unique.field()].as_str() {
                changes = changes.delete(unique.key(value));
            }
        }
        bucket.apply(&changes).map_err(store_error)?;
        Ok(Response::new(204, "application/json", Vec::new()))
    })
}

/// `GET /users`: creation order, `limit`/`cursor` pages; `email` or
/// `username` narrows it to the user holding that value.
fn list(request: &Request) -> Result<Response, http::Error> {
    let query = list_query(request).map_err(bad)?;
    let bucket = open()?;
    if let Some((unique, value)) = &query.only {
        let found = store::find(&bucket, *unique, value).map_err(store_error)?;
        let users: Vec<Value> = found.iter().map(user::public).collect();
        return Ok(Response::json(
            200,
            &json!({ "users": users, "count": users.len(), "next_cursor": null }),
        ));
    }
    let page = bucket
        .range(store::INDEX, &query.range.limit(query.limit))
        .map_err(store_error)?;
    let keys: Vec<String> = page
        .entries
        .iter()
        .map(|(id, _)| store::user_key(id))
        .collect();
    let values = bucket.get_many(&keys).map_err(store_error)?;
    // A user deleted meanwhile is skipped.
    let users: Vec<Value> = values
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_slice::<Value>(&v).ok())
        .map(|u| user::public(&u))
        .collect();
    let next = page.next.map(|p| p.to_cursor());
    Ok(Response::json(
        200,
        &json!({ "users": users, "count": users.len(), "next_cursor": next }),
    ))
}

struct ListQuery {
    range: Range,
    limit: u32,
    only: Option<(Unique, String)>,
}

fn list_query(request: &Request) -> Result<ListQuery, Problem> {
    let known = ["limit", "cursor", "email", "username"];
    let mut query = ListQuery {
        range: Range::ascending(),
        limit: DEFAULT_LIMIT,
        only: None,
    };
    let mut seen: Vec<String> = Vec::new();
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
            return Err(user::problem(
                &k,
                format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
            ));
        }
        if seen.contains(&k) {
            return Err(user::problem(&k, format!("{k} is given twice")));
        }
        seen.push(k.clone());
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "limit" => {
                query.limit = match v.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(user::problem(
                            "limit",
                            format!("limit is a whole number from 1 to {MAX_LIMIT}, not {v:?}"),
                        ));
                    }
                }
            }
            "cursor" => {
                let position = Position::from_cursor(&v).ok_or_else(|| {
                    user::problem(
                        "cursor",
                        "not a cursor this service gave out (use next_cursor as it is)",
                    )
                })?;
                query.range = query.range.clone().after(position);
            }
            "email" => {
                if query.only.is_some() {
                    return Err(user::problem("email", "give email or username, not both"));
                }
                query.only = Some((Unique::Email, user::email(Some(&Value::String(v)))?));
            }
            _ => {
                if query.only.is_some() {
                    return Err(user::problem(
                        "username",
                        "give email or username, not both",
                    ));
                }
                query.only = Some((Unique::Username, user::username(&Value::String(v))?));
            }
        }
    }
    Ok(query)
}

corral_sdk::http_component!(Users);
