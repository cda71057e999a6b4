//! Seed 002's `users` service through the real binary, on the embedded
//! backends and on Redis + RabbitMQ: CRUD with ETags and `If-Match`, the
//! errors naming their field, 20 concurrent creates with one email (or
//! username), passwords hashed by the host and never answered, every
//! action logged through the `logs` queue into the `logger`; and a store
//! outage, a busy hasher, and a deploy without the passwords grant.
//!
//! `crud.rs`: the cycle and its errors, pages; `races.rs`: concurrent
//! creates and changes, claims left behind; `failures.rs`: what fails.

mod crud;
mod failures;
mod races;

use serde_json::{Value, json};

use crate::common::*;
use crate::logger::{Backends, logger_components, send};
use crud::{crud_with_etags_and_errors, pages_in_creation_order};
use races::{
    claims_left_behind, concurrent_changes_of_one_version, concurrent_creates_with_one_email,
};

fn users_component(grants: &str) -> String {
    format!(
        r#"
[[component]]
name = "users"
wasm = "{users}"
routes = ["/users"]
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.keyvalue = {{ buckets = ["users"] }}
grants.messaging = {{ publish = ["logs"] }}
grants.logging = {{ file = "logs/users.log" }}
grants.tokens = {{ issue = true }}
{grants}
"#,
        users = component_artifacts::USERS,
    )
}

fn components() -> String {
    format!(
        "{}{}",
        users_component("grants.passwords = { max_concurrent = 2 }"),
        logger_components(36_500)
    )
}

/// The host's hashing: 2 at once, so the component's share of 2 fits on
/// any machine.
const PASSWORDS: &str = "\n[passwords]\nmax_concurrent = 2\n";

fn start(backends: &Backends) -> Host {
    Host::start_with_sections(
        &format!("{}{PASSWORDS}", backends.sections()),
        &components(),
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
        .header("x-user-id", "admin-7");
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
    let reply = http
        .send(request.body(http_body_util::Full::new(bytes)).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        !text.contains("\"password_hash\":") && !text.contains("$argon2"),
        "a password hash was answered: {text}"
    );
    reply
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

fn field(reply: &Reply, status: u16, field: &str) -> Value {
    let json = expect(reply, status);
    assert_eq!(json["error"]["field"], field, "{json}");
    json
}

fn etag(reply: &Reply) -> String {
    reply.headers["etag"].to_str().unwrap().to_owned()
}

const PASSWORD: &str = "correct horse battery";

fn user(name: &str, email: &str) -> Value {
    json!({"name": name, "email": email})
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
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
    concurrent_creates_with_one_email,
    pages_in_creation_order,
    concurrent_changes_of_one_version,
    claims_left_behind,
);
