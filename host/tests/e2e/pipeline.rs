//! Seed 001's transaction pipeline end to end: the upload API and page
//! (`transactions`), the queue, the `worker` and its fraud rules, on the
//! embedded backends and on real Redis + RabbitMQ.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend_sections;
use crate::common::*;

/// Which servers back the capabilities.
pub enum Backends {
    Embedded,
    /// Redis and RabbitMQ on this machine and an S3 server (moto) on
    /// loopback, isolated by a fresh prefix (queues and keys are deleted
    /// when the value is dropped).
    Real {
        prefix: String,
        s3: std::sync::Arc<test_support::moto::Moto>,
    },
}

impl Backends {
    pub fn real() -> Self {
        Self::Real {
            prefix: crate::rabbit::random_prefix("pipeline"),
            s3: test_support::moto::shared(),
        }
    }

    /// Whether object `key` of container `transactions` exists.
    /// An object of the `transactions` container, `None` if absent.
    pub async fn object(&self, http: &Http, host: &Host, key: &str) -> Option<Vec<u8>> {
        match self {
            Self::Embedded => std::fs::read(host.path("state/blobs/transactions").join(key)).ok(),
            // The S3 server wants signed requests: ask through the host,
            // with the blob-probe component.
            Self::Real { .. } => {
                let url = host.url(&format!("/blob/object?container=transactions&name={key}"));
                let reply = http.get(&url).await;
                (reply.status == 200).then(|| reply.body.to_vec())
            }
        }
    }

    fn s3_section(&self) -> String {
        match self {
            Self::Embedded => String::new(),
            Self::Real { prefix, s3 } => backend_sections::s3(
                &backend_sections::S3 {
                    endpoint: &s3.endpoint,
                    bucket: test_support::moto::BUCKET,
                    access_key_id: "test",
                    secret_access_key: "test",
                },
                prefix,
            ),
        }
    }

    pub fn sections(&self) -> String {
        self.sections_with_amqp(&crate::rabbit::rabbitmq_url())
    }

    /// The sections, with the broker reached at `amqp_url` (e.g. through a
    /// cuttable proxy).
    pub fn sections_with_amqp(&self, amqp_url: &str) -> String {
        format!("{}{}", self.broker_sections(amqp_url), self.s3_section())
    }

    /// Redis and RabbitMQ only (the blobstore stays on local files).
    pub fn broker_sections(&self, amqp_url: &str) -> String {
        match self {
            Self::Embedded => String::new(),
            Self::Real { prefix, .. } => format!(
                "{}{}",
                backend_sections::redis("redis://127.0.0.1:6379", prefix),
                backend_sections::amqp(amqp_url, prefix)
            ),
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        if let Self::Real { prefix, .. } = self {
            crate::rabbit::delete_queues_blocking(prefix);
            crate::redis_keys::delete_under("redis://127.0.0.1:6379", prefix);
        }
    }
}

pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/transactions/samples")
}

pub fn pipeline_components() -> String {
    format!(
        r#"
[[component]]
name = "transactions"
wasm = "{transactions}"
routes = ["/", "/api/transactions", "/api/clients"]
limits = {{ memory_mb = 64, timeout_ms = 30000 }}
grants.keyvalue = {{ buckets = ["transactions"] }}
grants.messaging = {{ publish = ["transactions", "logs"] }}
grants.blobstore = {{ containers = ["transactions"] }}
grants.logging = {{ file = "logs/transactions.log" }}

[[component]]
name = "worker"
wasm = "{worker}"
queue = {{ name = "transactions", prefetch = 200, concurrency = 4, batch_size = 50, retry_delay_ms = 200 }}
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.messaging = {{ publish = ["logs"] }}
grants.keyvalue = {{ buckets = ["transactions"] }}
grants.blobstore = {{ containers = ["transactions"] }}
grants.logging = {{ file = "logs/worker.log" }}

[[component]]
name = "blob-probe"
wasm = "{blob_probe}"
routes = ["/blob"]
grants.blobstore = {{ containers = ["transactions"] }}
"#,
        transactions = component_artifacts::TRANSACTIONS,
        worker = component_artifacts::WORKER,
        blob_probe = component_artifacts::BLOB_PROBE,
    )
}

pub async fn upload(http: &Http, host: &Host, file: &[u8]) -> Reply {
    http.send(
        http::Request::post(host.url("/api/transactions"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
                file,
            )))
            .unwrap(),
    )
    .await
    .unwrap()
}

/// Polls the batch until nothing is pending.
pub async fn wait_processed(http: &Http, host: &Host, batch: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let reply = http
            .get(&host.url(&format!("/api/transactions/{batch}")))
            .await;
        assert_eq!(
            reply.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&reply.body)
        );
        let status = reply.json();
        if status["pending"] == 0 {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "batch {batch} not processed in {within:?}: {status}\n{}",
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn flags_by_id(status: &Value) -> Vec<(String, Vec<String>)> {
    status["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let flags = r["flags"]
                .as_array()
                .map(|f| f.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            (r["_id"].as_str().unwrap().to_owned(), flags)
        })
        .collect()
}

async fn samples_flow_end_to_end(backends: Backends) {
    let host = Host::start_with_sections(&backends.sections(), &pipeline_components());
    let http = Http::new();

    let clean = std::fs::read(samples().join("Dados.json")).unwrap();
    let reply = upload(&http, &host, &clean).await;
    assert_eq!(
        reply.status,
        202,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let accepted = reply.json();
    assert_eq!(accepted["records"], 5);
    let batch = accepted["batch"].as_str().unwrap().to_owned();
    let status = wait_processed(&http, &host, &batch, Duration::from_secs(30)).await;
    assert_eq!(status["processed"], 5, "{status}");
    assert_eq!(status["flagged"], 0, "{status}");

    // The batch is an object, and each record's result with the client's
    // whole record is in the object its status names (one per message
    // batch the worker took).
    let file = backends
        .object(&http, &host, &format!("batches/{batch}.json"))
        .await;
    assert_eq!(
        file.as_deref(),
        Some(&clean[..]),
        "the batch object is the file"
    );
    for index in 0..5 {
        let key = status["records"][index]["object"]
            .as_str()
            .expect("an object")
            .to_owned();
        assert!(key.starts_with(&format!("results/{batch}/")), "{key}");
        let object = backends.object(&http, &host, &key).await;
        let object: serde_json::Value = serde_json::from_slice(&object.expect(&key)).unwrap();
        let object = object["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["result"]["index"] == index)
            .unwrap_or_else(|| panic!("{key} holds no result for record {index}: {object}"))
            .clone();
        assert_eq!(object["result"]["object"], key.as_str(), "{key}: {object}");
        assert_eq!(object["result"]["status"], "ok", "{key}: {object}");
        assert_eq!(
            object["record"]["_id"],
            format!("cliente{}", index + 1),
            "{key}: {object}"
        );
        assert!(object["record"]["endereco"].is_string(), "{key}: {object}");
    }

    // The client's basic data is cached with the seed's 60 s TTL.
    let client = http.get(&host.url("/api/clients/cliente1")).await;
    assert_eq!(client.status, 200);
    let client = client.json();
    assert_eq!(client["client"]["cliente"], "Cliente fulano");
    let ttl = client["ttl_ms"].as_u64().unwrap();
    assert!(ttl > 30_000 && ttl <= 60_000, "ttl {ttl}");

    let fraud = std::fs::read(samples().join("Dados - Fraude1.json")).unwrap();
    let reply = upload(&http, &host, &fraud).await;
    assert_eq!(reply.status, 202);
    let batch = reply.json()["batch"].as_str().unwrap().to_owned();
    let status = wait_processed(&http, &host, &batch, Duration::from_secs(30)).await;
    let flags = flags_by_id(&status);
    let expect = |id: &str, index: usize, wanted: &[&str]| {
        assert_eq!(flags[index].0, id);
        assert_eq!(flags[index].1, wanted, "{id}: {status}");
    };
    expect("cliente10", 0, &[]);
    expect("cliente11", 1, &["inactive_client"]);
    expect("cliente12", 2, &["malformed_email"]);
    expect("cliente13", 3, &["future_date"]);
    // The repeated _id: exactly one of its two records is flagged.
    let repeats = flags[4..]
        .iter()
        .filter(|(_, f)| f == &["repeated_id"])
        .count();
    assert_eq!(repeats, 1, "{status}");
    assert_eq!(status["flagged"], 4, "{status}");

    // Uploading the same file again is the same batch, not new work.
    let again = upload(&http, &host, &fraud).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["batch"], batch.as_str());

    // Everything carries the batch id into the logs.
    host.wait_log("logs/worker.log", &[&format!("batch={batch}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_flow_end_to_end_on_embedded_backends() {
    samples_flow_end_to_end(Backends::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_flow_end_to_end_on_redis_and_rabbitmq() {
    samples_flow_end_to_end(Backends::real()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_files_are_rejected_naming_record_and_field() {
    let host = Host::start_with_sections("", &pipeline_components());
    let http = Http::new();

    let reply = upload(&http, &host, b"{not json").await;
    let json = assert_error(&reply, 400, "invalid_file");
    assert_eq!(json["error"]["field"], "body");

    let reply = upload(&http, &host, b"{\"_id\": \"x\"}").await;
    assert_error(&reply, 400, "invalid_file");

    let bad = br#"[
      {"_id": "ok1", "isActive": true, "cliente": "A", "email": "a@example.com", "endereco": "C, E, 1", "datatrasancao": "2024-03-11T12:00:00 +00:00"},
      {"_id": "bad1", "isActive": "yes", "cliente": "", "email": "b@example.com", "endereco": "C, E, 1", "datatrasancao": "2024-03-11T12:00:00 +00:00"},
      {"_id": "bad2", "isActive": true, "cliente": "B", "email": "b@example.com", "endereco": "C, E, 1", "datatrasancao": "11/03/2024"}
    ]"#;
    let reply = upload(&http, &host, bad).await;
    let json = assert_error(&reply, 400, "invalid_records");
    let problems: Vec<(u64, String, String)> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["index"].as_u64().unwrap(),
                p["_id"].as_str().unwrap().to_owned(),
                p["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (1, "bad1".into(), "isActive".into()),
            (1, "bad1".into(), "cliente".into()),
            (2, "bad2".into(), "datatrasancao".into()),
        ]
    );

    // Nothing of the rejected file was written: not the valid record's
    // client key, and no batch.
    let reply = http.get(&host.url("/api/clients/ok1")).await;
    assert_error(&reply, 404, "unknown_client");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !host.output().contains("component=\"worker\""),
        "the worker got nothing:\n{}",
        host.output()
    );

    let wrong_type = http
        .send(
            http::Request::post(host.url("/api/transactions"))
                .header("content-type", "application/xml")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"<x/>",
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_error(&wrong_type, 415, "unsupported_media_type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_backend_gives_503_naming_it() {
    // Nothing listens on port 1: every Redis call fails fast.
    let sections =
        "[keyvalue]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\ntimeout_ms = 1000\n";
    let host = Host::start_with_sections(sections, &pipeline_components());
    let http = Http::new();
    let clean = std::fs::read(samples().join("Dados.json")).unwrap();
    let started = Instant::now();
    let reply = upload(&http, &host, &clean).await;
    let json = assert_error(&reply, 503, "backend_unavailable");
    assert_eq!(json["error"]["field"], "keyvalue");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_the_rabbitmq_connection_during_a_10000_record_upload_loses_nothing() {
    let proxy = crate::proxy::Proxy::start(&crate::rabbit::rabbitmq_addr()).await;
    let backends = Backends::real();
    // What is under test is the broker link: the blobstore stays on local
    // files, since moto (one Python process, a few hundred writes a second)
    // would make 10,000 result objects the slowest part of the test. S3 is
    // covered by the samples test above.
    let sections = backends.broker_sections(&proxy.url());
    let host = Host::start_with_sections(&sections, &pipeline_components());
    let http = Http::new();
    let file = crate::records::generated(10_000);

    // Cut the broker connection while the upload publishes.
    let uploading = {
        let (http, url, file) = (http.clone(), host.url("/api/transactions"), file.clone());
        tokio::spawn(async move {
            http.send(
                http::Request::post(url)
                    .header("content-type", "application/json")
                    .body(http_body_util::Full::new(bytes::Bytes::from(file)))
                    .unwrap(),
            )
            .await
            .unwrap()
        })
    };
    // 10,000 confirmed publishes take seconds: 300 ms in, the upload is
    // still publishing, and the cut must find the host's connection open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!uploading.is_finished(), "the upload ended before the cut");
    assert!(proxy.cut() >= 1, "no broker connection was open to cut");
    host.wait_output("lost the RabbitMQ connection", 1);
    let mut reply = uploading.await.unwrap();
    // Either the host rode out the cut, or it said so with a 503: then the
    // same upload is retried, as the API tells clients to.
    let deadline = Instant::now() + Duration::from_secs(60);
    while reply.status == 503 {
        assert!(Instant::now() < deadline, "uploads kept failing");
        assert_error(&reply, 503, "backend_unavailable");
        tokio::time::sleep(Duration::from_millis(500)).await;
        reply = upload(&http, &host, &file).await;
    }
    assert_eq!(
        reply.status,
        202,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let batch = reply.json()["batch"].as_str().unwrap().to_owned();

    // And again while the worker consumes: once it has processed some of
    // the batch and not all of it.
    let lost_before = host
        .output()
        .matches("lost the RabbitMQ connection")
        .count();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = http
            .get(&host.url(&format!("/api/transactions/{batch}")))
            .await
            .json();
        let processed = status["processed"].as_u64().unwrap();
        assert!(
            processed < 10_000,
            "the worker finished before the cut: {status}"
        );
        if processed > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never started: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(proxy.cut() >= 1, "no broker connection was open to cut");
    host.wait_output("lost the RabbitMQ connection", lost_before + 1);

    let status = wait_processed(&http, &host, &batch, Duration::from_secs(180)).await;
    assert_eq!(status["total"], 10_000);
    assert_eq!(status["processed"], 10_000);
    // A redelivered message keeps its id, so it is never mistaken for a
    // second transaction of the same client: nothing is flagged.
    assert_eq!(
        status["flagged"], 0,
        "duplicates were processed as new records"
    );
}

/// The pipeline's services log to the log system too (seed 002): the
/// upload as one `transaction_service` record with its batch id, and every
/// transaction the worker handled as a `worker_service` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_and_every_processed_transaction_reach_the_logger() {
    let components = format!(
        "{}{}",
        pipeline_components(),
        crate::logger::logger_components(36_500)
    );
    let host = Host::start_with_sections("[access_log]\nenabled = false\n", &components);
    let http = Http::new();
    let reply = upload(&http, &host, &crate::records::generated(20)).await;
    assert_eq!(
        reply.status,
        202,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let batch = reply.json()["batch"].as_str().unwrap().to_owned();
    wait_processed(&http, &host, &batch, Duration::from_secs(60)).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let (uploads, processed) = loop {
        let uploads =
            crate::logger::all_pages(&http, &host, "service=transaction_service", 100).await;
        let processed = crate::logger::all_pages(&http, &host, "service=worker_service", 100).await;
        if uploads.len() >= 1 && processed.len() >= 20 {
            break (uploads, processed);
        }
        assert!(
            Instant::now() < deadline,
            "{} upload and {} worker records",
            uploads.len(),
            processed.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(uploads.len(), 1, "{uploads:#?}");
    assert_eq!(uploads[0]["action"], "upload_batch");
    assert_eq!(uploads[0]["result"], "success");
    assert_eq!(uploads[0]["batch"], batch.as_str(), "{:#}", uploads[0]);
    assert_eq!(processed.len(), 20, "each transaction once");
    assert!(
        processed.iter().all(|r| r["batch"] == batch.as_str()
            && ["process_transaction", "flag_transaction"]
                .contains(&r["action"].as_str().unwrap())),
        "{processed:#?}"
    );
}

/// Another site's page cannot make a browser upload here: a multipart form
/// from another origin (or marked cross-site) is refused, a text/plain
/// body is not taken as JSON, and the page's own origin goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_uploads_are_refused() {
    let host = Host::start(&pipeline_components());
    let http = Http::new();
    let file = crate::records::generated(3);
    let boundary = "XyZ";
    let mut form = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"t.json\"\r\ncontent-type: application/json\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&file);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let own = host.http.trim_start_matches("http://").to_owned();
    let post = |headers: Vec<(&'static str, String)>, content_type: &str, body: Vec<u8>| {
        let mut request =
            http::Request::post(host.url("/api/transactions")).header("content-type", content_type);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        http.send(
            request
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap(),
        )
    };
    let multipart = format!("multipart/form-data; boundary={boundary}");
    let reply = post(
        vec![("origin", "http://evil.example".into())],
        &multipart,
        form.clone(),
    )
    .await
    .unwrap();
    let json = assert_error(&reply, 403, "cross_origin");
    assert_eq!(json["error"]["field"], "origin");
    let reply = post(
        vec![("sec-fetch-site", "cross-site".into())],
        &multipart,
        form.clone(),
    )
    .await
    .unwrap();
    assert_error(&reply, 403, "cross_origin");
    let reply = post(vec![], "text/plain", file.clone()).await.unwrap();
    assert_error(&reply, 415, "unsupported_media_type");
    // The upload page's own origin, and clients that send no origin.
    let reply = post(vec![("origin", format!("http://{own}"))], &multipart, form)
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        202,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let reply = post(vec![], "application/json", file).await.unwrap();
    assert_eq!(
        reply.status,
        202,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
}
