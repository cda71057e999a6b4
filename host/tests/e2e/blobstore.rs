//! The blobstore capability through the real binary: the `blob-probe`
//! component drives `wasi:blobstore` over HTTP, on the embedded local store
//! and on S3 (moto on loopback, started by the test).

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use test_support::moto;

use crate::common::*;

fn probe() -> String {
    format!(
        r#"
[[component]]
name = "blob-probe"
wasm = "{wasm}"
routes = ["/blob"]
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.blobstore = {{ containers = ["transactions", "archive"] }}
"#,
        wasm = component_artifacts::BLOB_PROBE,
    )
}

/// Starts a host whose `[blobstore]` section holds `settings`.
fn start(settings: &str) -> Host {
    Host::start_with_sections(&format!("[blobstore]\n{settings}"), &probe())
}

fn url(host: &Host, path: &str, query: &[(&str, &str)]) -> String {
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    host.url(&format!("{path}?{}", query.join("&")))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn send(http: &Http, method: &str, url: String, body: impl Into<Bytes>) -> Reply {
    let request = http::Request::builder().method(method).uri(url);
    http.send(request.body(Full::new(body.into())).unwrap())
        .await
        .unwrap()
}

/// One pass over everything a component can do, the same on every backend.
async fn scenario(host: &Host) {
    let http = Http::new();
    let c = |name| ("container", name);
    let obj = |container, name| [("container", container), ("name", name)];

    let created = send(
        &http,
        "POST",
        url(host, "/blob/container", &[c("transactions")]),
        "",
    )
    .await;
    assert_eq!(created.status, 201, "{:?}\n{}", created.body, host.output());

    // Ungranted containers are refused, naming the field.
    for (method, path) in [("POST", "/blob/container"), ("GET", "/blob/list")] {
        let reply = send(&http, method, url(host, path, &[c("secrets")]), "").await;
        let json = assert_error(&reply, 403, "not_granted");
        assert_eq!(json["error"]["field"], "container", "{json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("secrets"),
            "{json}"
        );
    }

    // Put, get whole / a range / streamed, info.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for (name, body) in [
        ("batches/1.json", b"[{\"_id\":\"c1\"}]".to_vec()),
        ("big.bin", big.clone()),
    ] {
        let put = send(
            &http,
            "PUT",
            url(host, "/blob/object", &obj("transactions", name)),
            body,
        )
        .await;
        assert_eq!(put.status, 201, "{:?}", put.body);
    }
    let get = http
        .get(&url(
            host,
            "/blob/object",
            &obj("transactions", "batches/1.json"),
        ))
        .await;
    assert_eq!(
        (get.status, &get.body[..]),
        (200, &b"[{\"_id\":\"c1\"}]"[..])
    );
    let mut ranged = obj("transactions", "batches/1.json").to_vec();
    ranged.extend([("start", "2"), ("end", "6")]);
    assert_eq!(
        http.get(&url(host, "/blob/object", &ranged)).await.body,
        "\"_id\""
    );
    let mut streamed = obj("transactions", "big.bin").to_vec();
    streamed.push(("stream", "1"));
    let reply = http.get(&url(host, "/blob/object", &streamed)).await;
    assert!(
        reply.status == 200 && reply.body == big,
        "streamed read: status {}",
        reply.status
    );
    let info = http
        .get(&url(host, "/blob/info", &obj("transactions", "big.bin")))
        .await
        .json();
    assert_eq!(info["size"], 200_000, "{info}");

    // A traversal attempt is refused before the store sees it.
    for name in ["../../../etc/passwd", "/abs", "a\\b"] {
        let reply = send(
            &http,
            "PUT",
            url(host, "/blob/object", &obj("transactions", name)),
            "x",
        )
        .await;
        let json = assert_error(&reply, 400, "invalid");
        assert_eq!(json["error"]["field"], "name", "{json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid object name"),
            "{json}"
        );
    }
    let list = http
        .get(&url(host, "/blob/list", &[c("transactions")]))
        .await
        .json();
    assert_eq!(
        list["objects"],
        serde_json::json!(["batches/1.json", "big.bin"]),
        "{list}"
    );

    // Copy and move between granted containers; the target must exist.
    let copy = |to_name: &str, moving: bool| {
        let mut query = vec![
            ("container", "transactions"),
            ("name", "batches/1.json"),
            ("to", "archive"),
        ];
        query.push(("as", to_name));
        if moving {
            query.push(("move", "1"));
        }
        url(host, "/blob/copy", &query)
    };
    assert_error(
        &send(&http, "POST", copy("copied.json", false), "").await,
        404,
        "not_found",
    );
    send(
        &http,
        "POST",
        url(host, "/blob/container", &[c("archive")]),
        "",
    )
    .await;
    assert_eq!(
        send(&http, "POST", copy("copied.json", false), "")
            .await
            .status,
        200
    );
    assert_eq!(
        send(&http, "POST", copy("moved.json", true), "")
            .await
            .status,
        200
    );
    let archive = http
        .get(&url(host, "/blob/list", &[c("archive")]))
        .await
        .json();
    assert_eq!(
        archive["objects"],
        serde_json::json!(["copied.json", "moved.json"]),
        "{archive}"
    );
    let gone = http
        .get(&url(
            host,
            "/blob/object",
            &obj("transactions", "batches/1.json"),
        ))
        .await;
    assert_error(&gone, 404, "not_found");

    // Delete an object, then a whole container.
    let deleted = send(
        &http,
        "DELETE",
        url(host, "/blob/object", &obj("archive", "copied.json")),
        "",
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_error(
        &http
            .get(&url(host, "/blob/object", &obj("archive", "copied.json")))
            .await,
        404,
        "not_found",
    );
    send(
        &http,
        "DELETE",
        url(host, "/blob/container", &[c("transactions")]),
        "",
    )
    .await;
    let exists = http
        .get(&url(host, "/blob/container", &[c("transactions")]))
        .await
        .json();
    assert_eq!(exists["exists"], false, "{exists}");
    let exists = http
        .get(&url(host, "/blob/container", &[c("archive")]))
        .await
        .json();
    assert_eq!(exists["exists"], true, "{exists}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobstore_on_the_local_store() {
    let host = start("backend = \"local\"");
    scenario(&host).await;
    // Everything stayed inside the store's folder.
    let blobs = host.path("state/blobs");
    assert!(blobs.join("archive/moved.json").is_file());
    assert!(!host.path("state/etc").exists() && !host.path("etc").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobstore_on_s3() {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let moto = moto::shared();
    let host = start(&format!(
        r#"backend = "s3"
endpoint = "{endpoint}"
bucket = "{bucket}"
access_key_id = "test"
secret_access_key = "test"
key_prefix = "e2e-{pid}-{run}/""#,
        endpoint = moto.endpoint,
        bucket = moto::BUCKET,
        pid = std::process::id(),
        run = RUN.fetch_add(1, Ordering::SeqCst),
    ));
    scenario(&host).await;
}
