//! Seed 004 end to end: a user created through `POST /users` logs in at
//! `POST /auth` and reads the catalog with the token it got, in the header
//! or as the cookie; bad credentials are 401 alike, and repeated failures
//! are limited.

use std::time::Instant;

use serde_json::{Value, json};

use crate::common::*;

const SECRET: &str = "login-test-secret-0123456789abcdef";

/// users with `/auth`, and the catalog behind gateway auth, its upstream a
/// port nobody listens on (so the bundled snapshot answers).
fn components() -> String {
    format!(
        r#"
[[component]]
name = "users"
wasm = "{users}"
routes = ["/users", "/auth"]
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.keyvalue = {{ buckets = ["users"] }}
grants.messaging = {{ publish = ["logs"] }}
grants.passwords = {{ max_concurrent = 2 }}
grants.tokens = {{ issue = true }}

[[component]]
name = "catalog"
wasm = "{catalog}"
routes = ["/products"]
limits = {{ memory_mb = 64, timeout_ms = 5000 }}
config = {{ upstream = "http://127.0.0.1:1", upstream_timeout_ms = "500" }}
auth = {{ jwt = true }}
grants.keyvalue = {{ buckets = ["catalog"] }}
grants.outbound_http = {{ allowed_hosts = ["127.0.0.1:1"] }}
"#,
        users = component_artifacts::USERS,
        catalog = component_artifacts::CATALOG,
    )
}

fn start() -> Host {
    Host::start_with_sections_and_env(
        "[passwords]\nmax_concurrent = 2\n",
        &components(),
        &[("CORRAL_JWT_SECRET", SECRET)],
    )
}

async fn post(http: &Http, url: &str, body: &Value) -> Reply {
    http.send(
        http::Request::post(url)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap(),
    )
    .await
    .unwrap()
}

async fn get_with(http: &Http, url: &str, header: (&str, &str)) -> Reply {
    http.send(
        http::Request::get(url)
            .header(header.0, header.1)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await
    .unwrap()
}

async fn create_user(http: &Http, host: &Host, username: &str, password: &str) {
    let reply = post(
        http,
        &host.url("/users"),
        &json!({
            "name": "Ada Lovelace",
            "email": format!("{username}@example.com"),
            "username": username,
            "password": password,
        }),
    )
    .await;
    assert_eq!(
        reply.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_logs_in_and_reads_the_catalog_with_its_token() {
    let host = start();
    let http = Http::new();
    create_user(&http, &host, "ada", "correct horse battery").await;

    // Without a token the catalog is closed.
    let reply = http.get(&host.url("/products")).await;
    assert_eq!(reply.status, 401);

    let reply = post(
        &http,
        &host.url("/auth"),
        &json!({ "username": "Ada", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(json["token_type"], "Bearer");
    assert!(json["expires_in"].as_u64().unwrap() > 0, "{json}");
    let token = json["token"].as_str().unwrap().to_owned();
    let cookie = reply.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with(&format!("token={token};")), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(reply.headers["cache-control"], "no-store");

    // The token opens the catalog, in the header and as the cookie.
    for header in [
        ("authorization", format!("Bearer {token}")),
        ("cookie", format!("token={token}")),
    ] {
        let reply = get_with(&http, &host.url("/products?limit=3"), (header.0, &header.1)).await;
        assert_eq!(
            reply.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["products"].as_array().unwrap().len(), 3);
    }

    // Its subject is the user's id; the email logs in too.
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["username"], "ada", "{claims}");
    let by_email = post(
        &http,
        &host.url("/auth"),
        &json!({ "username": "ada@example.com", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(by_email.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_401_alike_and_bad_input_names_the_field() {
    let host = start();
    let http = Http::new();
    create_user(&http, &host, "bob", "correct horse battery").await;
    let url = host.url("/auth");

    let started = Instant::now();
    let wrong = post(
        &http,
        &url,
        &json!({ "username": "bob", "password": "nope nope" }),
    )
    .await;
    let wrong_took = started.elapsed();
    let started = Instant::now();
    let unknown = post(
        &http,
        &url,
        &json!({ "username": "nobody", "password": "nope nope" }),
    )
    .await;
    let unknown_took = started.elapsed();
    for reply in [&wrong, &unknown] {
        assert_error(reply, 401, "invalid_credentials");
    }
    assert_eq!(wrong.body, unknown.body, "the same answer for both");
    // The same work for both: a hash check each (loose bounds, a loaded
    // machine varies).
    let (fast, slow) = if wrong_took < unknown_took {
        (wrong_took, unknown_took)
    } else {
        (unknown_took, wrong_took)
    };
    assert!(
        slow < fast * 4 + std::time::Duration::from_millis(50),
        "{wrong_took:?} vs {unknown_took:?}"
    );

    for (body, field) in [
        (json!({ "password": "x" }), "username"),
        (json!({ "username": "bob" }), "password"),
        (json!({ "username": "bob", "password": 7 }), "password"),
        (json!({ "username": "", "password": "x" }), "username"),
    ] {
        let reply = post(&http, &url, &body).await;
        let json = assert_error(&reply, 400, "invalid");
        assert_eq!(json["error"]["field"], field, "{json}");
    }
    let reply = http.post(&url, "username=bob").await;
    assert_eq!(reply.status, 415);
    let reply = http.get(&url).await;
    assert_eq!(reply.status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_limited_per_username() {
    let host = start();
    let http = Http::new();
    create_user(&http, &host, "carol", "correct horse battery").await;
    let url = host.url("/auth");
    for _ in 0..5 {
        let reply = post(
            &http,
            &url,
            &json!({ "username": "carol", "password": "guess" }),
        )
        .await;
        assert_error(&reply, 401, "invalid_credentials");
    }
    // Even the right password is refused now, without a hash being checked.
    let reply = post(
        &http,
        &url,
        &json!({ "username": "carol", "password": "correct horse battery" }),
    )
    .await;
    assert_error(&reply, 429, "too_many_attempts");
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}
