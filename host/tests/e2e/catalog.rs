//! The product catalog (seed 004) behind gateway auth, against a fake
//! upstream on loopback that answers, is slow, fails, sends malformed JSON
//! or is down: every answer says where it came from.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::auth::{SECRET, challenge, claims, forge, get_with, unsigned};
use crate::common::*;

const OK: u8 = 0;
const SLOW: u8 = 1;
const FAILING: u8 = 2;
const MALFORMED: u8 = 3;

/// A dummyjson stand-in: every listing holds one "Upstream Phone" and
/// echoes the path it was asked, product 1 exists, others are 404s.
struct Upstream {
    port: u16,
    mode: Arc<AtomicU8>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(OK));
        let hits = Arc::new(AtomicUsize::new(0));
        let (m, h) = (mode.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (mode, hits) = (m.clone(), h.clone());
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let (mode, hits) = (mode.clone(), hits.clone());
                            async move { Ok::<_, Infallible>(answer(&request, &mode, &hits).await) }
                        });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            port,
            mode,
            hits,
            task,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops listening: connections are refused from now on.
    fn stop(&self) {
        self.task.abort();
    }
}

async fn answer(
    request: &http::Request<hyper::body::Incoming>,
    mode: &AtomicU8,
    hits: &AtomicUsize,
) -> http::Response<Full<Bytes>> {
    hits.fetch_add(1, Ordering::SeqCst);
    let reply = |status: u16, body: String| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    match mode.load(Ordering::SeqCst) {
        SLOW => tokio::time::sleep(Duration::from_secs(5)).await,
        FAILING => return reply(500, r#"{"message":"boom"}"#.into()),
        MALFORMED => return reply(200, r#"{"products": [{"id": 1,"#.into()),
        _ => {}
    }
    let asked = request.uri().path_and_query().unwrap().to_string();
    let path = request.uri().path();
    let body = if path == "/products/categories" {
        json!([{ "slug": "upstream-things", "name": "Upstream Things", "url": "x" }])
    } else if path == "/products/1" {
        json!({ "id": 1, "title": "Upstream Phone" })
    } else if path.trim_start_matches("/products/").parse::<u64>().is_ok() {
        return reply(404, r#"{"message":"Product not found"}"#.into());
    } else {
        json!({
            "products": [{ "id": 1, "title": "Upstream Phone" }],
            "total": 1, "skip": 0, "limit": 1, "asked": asked,
        })
    };
    reply(200, body.to_string())
}

fn catalog(upstream: u16, cache_ttl_ms: u64, timeout_ms: u64) -> String {
    format!(
        r#"
[[component]]
name = "catalog"
wasm = "{catalog}"
routes = ["/products"]
limits = {{ memory_mb = 64, timeout_ms = 5000 }}
config = {{ upstream = "http://127.0.0.1:{upstream}", cache_ttl_ms = "{cache_ttl_ms}", upstream_timeout_ms = "{timeout_ms}" }}
auth = {{ jwt = true }}
grants.keyvalue = {{ buckets = ["catalog"] }}
grants.outbound_http = {{ allowed_hosts = ["127.0.0.1:{upstream}"] }}

[[component]]
name = "misbehave"
wasm = "{misbehave}"
routes = ["/misbehave"]
limits = {{ memory_mb = 16, timeout_ms = 5000 }}
"#,
        catalog = component_artifacts::CATALOG,
        misbehave = component_artifacts::MISBEHAVE,
    )
}

/// The catalog with an upstream timeout of 500 ms.
fn start(upstream: &Upstream, cache_ttl_ms: u64) -> Host {
    start_with_timeout(upstream, cache_ttl_ms, 500)
}

fn start_with_timeout(upstream: &Upstream, cache_ttl_ms: u64, timeout_ms: u64) -> Host {
    Host::start_with_env(
        &catalog(upstream.port, cache_ttl_ms, timeout_ms),
        &[("CORRAL_JWT_SECRET", SECRET)],
    )
}

fn bearer() -> String {
    format!("Bearer {}", forge(SECRET, claims("alice", json!({}))))
}

/// `GET path` with a good token.
async fn get(host: &Host, path: &str) -> Reply {
    get_with(
        &Http::new(),
        &host.url(path),
        &[("authorization", bearer().as_str())],
    )
    .await
}

fn source(reply: &Reply) -> &str {
    reply.headers["x-catalog-source"].to_str().unwrap()
}

fn age(reply: &Reply) -> u64 {
    reply.headers["age"].to_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_answers_are_cached_and_keep_dummyjsons_shape() {
    let upstream = Upstream::start().await;
    let host = start(&upstream, 60_000);

    let first = get(&host, "/products?limit=5&select=price,title").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!((source(&first), age(&first)), ("upstream", 0));
    let json = first.json();
    assert_eq!(json["products"][0]["title"], "Upstream Phone");
    assert_eq!(json["asked"], "/products?limit=5&skip=0&select=price,title");

    // The same request, spelled differently: one cache entry.
    let second = get(&host, "/products?select=price,title&limit=5&skip=0").await;
    assert_eq!(source(&second), "cache");
    assert_eq!(second.body, first.body);
    assert_eq!(upstream.hits(), 1);

    for (path, check) in [
        ("/products/1", "title"),
        ("/products/categories", "0"),
        ("/products/search?q=phone", "products"),
        ("/products/category/smartphones?limit=2", "products"),
    ] {
        let reply = get(&host, path).await;
        assert_eq!((reply.status, source(&reply)), (200, "upstream"), "{path}");
        let json = reply.json();
        let found = match check.parse::<usize>() {
            Ok(i) => json.get(i).is_some(),
            Err(_) => json.get(check).is_some(),
        };
        assert!(found, "{path}: {json}");
    }
    let missing = get(&host, "/products/999").await;
    let json = assert_error(&missing, 404, "not_found");
    assert_eq!(json["error"]["field"], "id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_answer_is_served_at_once_and_refreshed_after() {
    let upstream = Upstream::start().await;
    // A 3 s upstream timeout: an answer that waited for the (5 s) slow
    // upstream would take that long.
    let host = start_with_timeout(&upstream, 300, 3000);
    assert_eq!(source(&get(&host, "/products").await), "upstream");
    tokio::time::sleep(Duration::from_millis(1300)).await;

    // The upstream is slow now: the stale answer does not wait for it.
    upstream.set(SLOW);
    let started = Instant::now();
    let stale = get(&host, "/products").await;
    assert_eq!((stale.status, source(&stale)), (200, "stale"));
    assert!(age(&stale) >= 1, "{:?}", stale.headers);
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stale.json()["products"][0]["title"], "Upstream Phone");

    // Healthy again: the next stale answer triggers a refresh that lands.
    upstream.set(OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = upstream.hits();
    assert_eq!(source(&get(&host, "/products").await), "stale");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(&host, "/products").await;
        if source(&reply) == "cache" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never refreshed: {}",
            source(&reply)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(upstream.hits() > before);
}

/// With nothing cached, each way the upstream can fail gives the bundled
/// snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cache_a_failing_upstream_gives_the_snapshot() {
    let upstream = Upstream::start().await;
    let host = start(&upstream, 60_000);
    for (mode, path) in [
        (SLOW, "/products?limit=3"),
        (FAILING, "/products?limit=4"),
        (MALFORMED, "/products?limit=5"),
    ] {
        upstream.set(mode);
        let started = Instant::now();
        let reply = get(&host, path).await;
        assert_eq!((reply.status, source(&reply)), (200, "snapshot"), "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path}: {:?}",
            started.elapsed()
        );
        let json = reply.json();
        assert!(json["total"].as_u64().unwrap() >= 100, "{json}");
        assert_ne!(json["products"][0]["title"], "Upstream Phone");
        assert!(age(&reply) > 0);
    }
    upstream.stop();
    let reply = get(&host, "/products/categories").await;
    assert_eq!(source(&reply), "snapshot");
    assert!(reply.json().as_array().unwrap().len() >= 5);
    let missing = get(&host, "/products/99999").await;
    assert_error(&missing, 404, "not_found");
    assert_eq!(source(&missing), "snapshot");
    // Nothing of a failed answer was cached.
    assert_eq!(source(&get(&host, "/products?limit=4").await), "snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cached_answer_a_down_upstream_gives_the_stale_one() {
    let upstream = Upstream::start().await;
    let host = start(&upstream, 300);
    assert_eq!(source(&get(&host, "/products/1").await), "upstream");
    upstream.stop();
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..2 {
        // The refresh after the first fails; the entry stays.
        let reply = get(&host, "/products/1").await;
        assert_eq!((reply.status, source(&reply)), (200, "stale"));
        assert_eq!(reply.json()["title"], "Upstream Phone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400s_naming_them() {
    let upstream = Upstream::start().await;
    let host = start(&upstream, 60_000);
    for (path, field) in [
        ("/products?limit=101", "limit"),
        ("/products?skip=-1", "skip"),
        ("/products?select=title,password", "select"),
        ("/products?sortBy=price&order=sideways", "order"),
        ("/products/search", "q"),
        ("/products/abc", "id"),
    ] {
        let reply = get(&host, path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.json()["error"]["field"], field, "{path}");
    }
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_takes_the_header_or_the_cookie_and_refuses_the_rest() {
    let upstream = Upstream::start().await;
    let host = start(&upstream, 60_000);
    let http = Http::new();
    let url = host.url("/products");
    let good = forge(SECRET, claims("alice", json!({})));

    let with_header = get_with(
        &http,
        &url,
        &[("authorization", format!("Bearer {good}").as_str())],
    )
    .await;
    assert_eq!(with_header.status, 200);
    let with_cookie = get_with(
        &http,
        &url,
        &[("cookie", format!("theme=dark; token={good}").as_str())],
    )
    .await;
    assert_eq!(with_cookie.status, 200);

    let missing = get_with(&http, &url, &[]).await;
    assert_error(&missing, 401, "missing_token");
    assert_eq!(challenge(&missing), r#"Bearer realm="corral""#);

    let now = corral::tokens::unix_now();
    let tampered = {
        let mut t = good.clone().into_bytes();
        let i = t.len() - 3;
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    for (name, token) in [
        (
            "expired",
            forge(
                SECRET,
                claims("alice", json!({ "iat": now - 120, "exp": now - 60 })),
            ),
        ),
        ("tampered", tampered),
        ("alg none", unsigned(&claims("alice", json!({})))),
        (
            "wrong audience",
            forge(SECRET, claims("alice", json!({ "aud": "billing" }))),
        ),
        (
            "wrong issuer",
            forge(SECRET, claims("alice", json!({ "iss": "elsewhere" }))),
        ),
        (
            "other secret",
            forge(
                "another-secret-0123456789abcdef0123",
                claims("alice", json!({})),
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
    ] {
        for header in [
            ("authorization", format!("Bearer {token}")),
            ("cookie", format!("token={token}")),
        ] {
            let reply = get_with(&http, &url, &[(header.0, header.1.as_str())]).await;
            assert_error(&reply, 401, "invalid_token");
            let challenge = challenge(&reply);
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "{name}: {challenge}"
            );
        }
    }
    // Only the two good requests reached the upstream (once, then cache).
    assert_eq!(upstream.hits(), 1);
}

/// A refused request costs no instance: with the only instance slot held,
/// a bad token still gets its 401 at once, where a good one has to wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_takes_no_instance_slot() {
    let upstream = Upstream::start().await;
    let host = Host::start_with_env(
        &catalog(upstream.port, 60_000, 500),
        &[("CORRAL_JWT_SECRET", SECRET), ("CORRAL_MAX_INSTANCES", "1")],
    );
    let holder = {
        let url = host.url("/misbehave/sleep?ms=4000");
        tokio::spawn(async move { Http::new().get(&url).await })
    };
    // Wait until the holder has the slot: a good request then waits.
    let http = Http::new();
    let url = host.url("/products");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for headers in [
        vec![],
        vec![(
            "authorization",
            format!("Bearer {}", unsigned(&claims("a", json!({})))),
        )],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = get_with(&http, &url, &headers).await;
        assert_eq!(reply.status, 401);
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "refusals waited for a slot: {:?}",
        started.elapsed()
    );
    let good = get_with(&http, &url, &[("authorization", bearer().as_str())]).await;
    assert_eq!(good.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(holder.await.unwrap().status, 200);
}
