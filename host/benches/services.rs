//! The seed services against hello, on the release binary, same run:
//! what issue 13 and 14 ask of the users service, the catalog and the
//! gateway's token check.
//!
//! One host serves, with the access log at its default (on):
//! - `hello` at `/hello`, and the same component at `/guarded` behind
//!   gateway auth (`auth = { jwt = true }`);
//! - the `catalog`, behind gateway auth, its upstream a small dummyjson
//!   lookalike on loopback (warmed first, so answers come from the cache);
//! - `users` on Redis (`SERVICES_REDIS`, default 127.0.0.1:6379, under a
//!   random key prefix deleted afterwards).
//!
//! Targets, each for `SERVICES_SECS` (10) seconds with `SERVICES_CLIENTS`
//! (32) closed-loop clients, rounds alternating (`SERVICES_ROUNDS`, 2),
//! the best round kept:
//! `hello`, `guarded` (good token), `bad_token` (`/guarded` with a
//! tampered token: 401 without an instance), `catalog` (`GET
//! /products?limit=30`, warm cache), `users_get` (`GET /users/{id}`),
//! `users_post` (`POST /users` without a password, a new email each).
//! Ratios to hello are printed and put in the JSON on stdout.
//!
//! Run with `cargo bench -p corral --bench services`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::host::{Host, Http, http, rate, send_with};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

static NEXT_EMAIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const SECRET: &str = "services-bench-secret-0123456789abcdef";

/// A dummyjson lookalike: 100 products, `limit`/`skip` honoured.
async fn upstream() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let products: Arc<Vec<Value>> = Arc::new(
        (1..=100)
            .map(|id| {
                let category = ["phones", "laptops", "groceries"][id % 3];
                json!({
                    "id": id, "title": format!("Product {id}"), "description": "A thing.",
                    "category": category, "price": 9.99 + id as f64,
                    "rating": 4.5, "stock": 10, "brand": "Acme", "thumbnail": "https://example.com/t.png",
                })
            })
            .collect(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let products = products.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let products = products.clone();
                    async move {
                        let query = request.uri().query().unwrap_or_default().to_owned();
                        let param = |name: &str, default: usize| {
                            query
                                .split('&')
                                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(default)
                        };
                        let (limit, skip) = (param("limit", 30), param("skip", 0));
                        let page: Vec<&Value> = products.iter().skip(skip).take(limit).collect();
                        let body = json!({ "products": page, "total": products.len(), "skip": skip, "limit": page.len() });
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(port)
}

fn config(prefix: &str, redis: &str, upstream: u16) -> String {
    format!(
        r#"
{kv}
[passwords]
max_concurrent = 2

[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]

[[component]]
name = "guarded"
wasm = "{hello}"
routes = ["/guarded"]
auth = {{ jwt = true }}

[[component]]
name = "catalog"
wasm = "{catalog}"
routes = ["/products"]
limits = {{ memory_mb = 64, timeout_ms = 10000 }}
config = {{ upstream = "http://127.0.0.1:{upstream}", cache_ttl_ms = "3600000", upstream_timeout_ms = "3000" }}
auth = {{ jwt = true }}
grants.keyvalue = {{ buckets = ["catalog"] }}
grants.outbound_http = {{ allowed_hosts = ["127.0.0.1:{upstream}"] }}

[[component]]
name = "users"
wasm = "{users}"
routes = ["/users", "/auth"]
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.keyvalue = {{ buckets = ["users"] }}
grants.messaging = {{ publish = ["logs"] }}
grants.passwords = {{ max_concurrent = 2 }}
grants.tokens = {{ issue = true }}
"#,
        kv = test_support::backend_sections::redis(redis, prefix),
        hello = component_artifacts::HELLO,
        catalog = component_artifacts::CATALOG,
        users = component_artifacts::USERS,
    )
}

/// A bearer token for `sub`, from the CLI (signed with the host's secret).
fn token(host: &Host) -> anyhow::Result<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["token", "issue", "--sub", "bench", "--config"])
        .arg(&host.config)
        .env("CORRAL_JWT_SECRET", SECRET)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// One request of `target`; `Err` unless it got the answer it should.
async fn one(
    client: &Http,
    base: &str,
    bearer: &str,
    target: &str,
    client_no: usize,
    n: u64,
    user: &str,
) -> anyhow::Result<()> {
    let auth = [("authorization", bearer)];
    let bad = format!("{bearer}x");
    let (status, want) = match target {
        "hello" => (
            send_with(client, "GET", &format!("{base}/hello"), &[], Vec::new())
                .await?
                .0,
            200,
        ),
        "guarded" => (
            send_with(client, "GET", &format!("{base}/guarded"), &auth, Vec::new())
                .await?
                .0,
            200,
        ),
        "bad_token" => (
            send_with(
                client,
                "GET",
                &format!("{base}/guarded"),
                &[("authorization", &bad)],
                Vec::new(),
            )
            .await?
            .0,
            401,
        ),
        "catalog" => (
            send_with(
                client,
                "GET",
                &format!("{base}/products?limit=30"),
                &auth,
                Vec::new(),
            )
            .await?
            .0,
            200,
        ),
        "users_get" => (
            send_with(
                client,
                "GET",
                &format!("{base}/users/{user}"),
                &[],
                Vec::new(),
            )
            .await?
            .0,
            200,
        ),
        "users_post" => {
            // Unique across clients, rounds and warm-ups.
            let k = NEXT_EMAIL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body =
                json!({ "name": "Bench", "email": format!("c{client_no}-{n}-{k}@example.com") });
            (
                send_with(
                    client,
                    "POST",
                    &format!("{base}/users"),
                    &[],
                    body.to_string().into_bytes(),
                )
                .await?
                .0,
                201,
            )
        }
        other => anyhow::bail!("unknown target {other}"),
    };
    anyhow::ensure!(status == want, "{target} answered {status}, not {want}");
    Ok(())
}

const TARGETS: [&str; 6] = [
    "hello",
    "guarded",
    "bad_token",
    "catalog",
    "users_get",
    "users_post",
];

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let redis: String = env_or("SERVICES_REDIS", "redis://127.0.0.1:6379".to_owned());
        let prefix = format!("bench-services-{}:", std::process::id());
        let port = upstream().await?;
        let host = Host::start(
            &config(&prefix, &redis, port),
            &[("CORRAL_JWT_SECRET", SECRET)],
        )?;
        let result = measure(&host).await;
        drop(host);
        test_support::redis_keys::delete_under(&redis, &prefix);
        let out = result?;
        println!("{out}");
        Ok(())
    })
}

async fn measure(host: &Host) -> anyhow::Result<Value> {
    let (rounds, secs, clients): (usize, f64, usize) = (
        env_or("SERVICES_ROUNDS", 2),
        env_or("SERVICES_SECS", 10.0),
        env_or("SERVICES_CLIENTS", 32),
    );
    let client = http();
    let bearer = format!("Bearer {}", token(host)?);
    let base = host.url.clone();
    // Warm the catalog's cache and make the user the GETs read.
    let (status, body) = send_with(
        &client,
        "GET",
        &format!("{base}/products?limit=30"),
        &[("authorization", &bearer)],
        Vec::new(),
    )
    .await?;
    anyhow::ensure!(status == 200, "catalog warm-up: {status} {body:?}");
    let (status, body) = send_with(
        &client,
        "POST",
        &format!("{base}/users"),
        &[],
        json!({"name": "Ada", "email": "ada@example.com"})
            .to_string()
            .into_bytes(),
    )
    .await?;
    anyhow::ensure!(status == 201, "creating the user: {status} {body:?}");
    let user: Value = serde_json::from_slice(&body)?;
    let user = user["id"].as_str().unwrap_or_default().to_owned();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); TARGETS.len()];
    for round in 0..rounds {
        for (t, target) in TARGETS.iter().enumerate() {
            let run = |secs: f64| {
                let (client, base, bearer, user) =
                    (client.clone(), base.clone(), bearer.clone(), user.clone());
                rate(clients, secs, move |c, n| {
                    let (client, base, bearer, user) =
                        (client.clone(), base.clone(), bearer.clone(), user.clone());
                    async move { one(&client, &base, &bearer, target, c, n, &user).await }
                })
            };
            run(1.0).await?; // warm-up
            let r = run(secs).await?;
            eprintln!("  .. round {}: {target}: {r:.0} req/s", round + 1);
            rates[t].push(r);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let best: Vec<f64> = rates
        .iter()
        .map(|r| r.iter().cloned().fold(0.0, f64::max))
        .collect();
    let mut out = json!({ "clients": clients, "seconds_per_round": secs, "rounds": rounds });
    eprintln!("\nservices, best of {rounds} rounds, {clients} clients, {secs} s each:");
    for (t, target) in TARGETS.iter().enumerate() {
        let ratio = best[t] / best[0];
        eprintln!(
            "  {target:<11} {:>8.0} req/s   {:>5.2}x hello",
            best[t], ratio
        );
        out[*target] = json!({
            "req_per_s": rates[t].iter().map(|r| r.round()).collect::<Vec<_>>(),
            "best_vs_hello": (ratio * 100.0).round() / 100.0,
        });
    }
    let cost = (1.0 - best[1] / best[0]) * 100.0;
    eprintln!("  gateway auth costs {cost:.1}% (guarded vs hello)");
    out["gateway_auth_cost_percent"] = json!((cost * 100.0).round() / 100.0);
    Ok(out)
}
