//! The access log against a stand-in broker that can be taken down: the
//! batching, the retries, the drops past the bound, the shutdown flush,
//! and what `observe` records of a request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;

use super::record::tests::sample;
use super::*;
use crate::broker::{Message, PublishError};
use crate::responses::{HostError, full};

/// A queue that is up or down, and remembers every attempt.
#[derive(Default)]
struct FakeQueue {
    down: AtomicBool,
    attempts: AtomicU64,
    /// The message id of every attempt.
    attempt_ids: Mutex<Vec<String>>,
    stored: Mutex<Vec<(String, Message)>>,
}

impl Destination for FakeQueue {
    fn publish<'a>(
        &'a self,
        queue: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            self.attempt_ids
                .lock()
                .unwrap()
                .push(message.message_id.clone().unwrap());
            if self.down.load(Ordering::SeqCst) {
                return Err(PublishError::Unavailable("the queue is down".into()));
            }
            self.stored
                .lock()
                .unwrap()
                .push((queue.to_owned(), message));
            Ok(())
        })
    }
}

impl FakeQueue {
    fn down() -> Arc<Self> {
        let queue = Self::default();
        queue.down.store(true, Ordering::SeqCst);
        Arc::new(queue)
    }

    /// The records stored, each batch a JSON array.
    fn batches(&self) -> Vec<Vec<Value>> {
        self.stored
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| serde_json::from_slice::<Vec<Value>>(&m.body).unwrap())
            .collect()
    }

    fn records(&self) -> Vec<Value> {
        self.batches().into_iter().flatten().collect()
    }
}

fn settings(buffer: usize, batch_size: usize, flush_ms: u64) -> AccessLogSettings {
    AccessLogSettings {
        buffer,
        batch_size,
        flush_interval_ms: flush_ms,
        max_retry_delay_ms: 20,
        ..AccessLogSettings::default()
    }
}

/// Waits (polling) until `done` holds; fails after 10 s.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn emit_n(log: &AccessLog, from: u64, n: u64) {
    for i in from..from + n {
        log.emit(sample(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_fill_to_their_size_then_go_on_time() {
    let queue = Arc::new(FakeQueue::default());
    let log = AccessLog::start(&settings(100, 10, 150), queue.clone());
    let emitted = Instant::now();
    emit_n(&log, 0, 25);
    until("25 records", || queue.records().len() == 25).await;
    let sizes: Vec<usize> = queue.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    // The last five waited for the flush interval.
    assert!(emitted.elapsed() >= Duration::from_millis(150));
    let stored = queue.stored.lock().unwrap();
    assert!(
        stored
            .iter()
            .all(|(q, m)| q == "logs" && m.content_type.as_deref() == Some("application/json"))
    );
    let ids: std::collections::HashSet<_> = stored.iter().map(|(_, m)| &m.message_id).collect();
    assert_eq!(ids.len(), 3);
    drop(stored);
    let paths: Vec<String> = queue
        .records()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("/users/{i}")).collect();
    assert_eq!(paths, expected, "records keep their order");
    let s = log.snapshot();
    assert_eq!((s.sent, s.dropped, s.buffered, s.batches), (25, 0, 0, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_broker_is_retried_with_the_same_message_then_delivered() {
    let queue = FakeQueue::down();
    let log = AccessLog::start(&settings(100, 10, 5), queue.clone());
    emit_n(&log, 0, 5);
    until("three failed attempts", || {
        queue.attempts.load(Ordering::SeqCst) >= 3
    })
    .await;
    let s = log.snapshot();
    assert_eq!((s.sent, s.dropped, s.buffered), (0, 0, 5));
    assert!(s.failed_publishes >= 3);
    assert!(s.last_error.as_deref().unwrap().contains("down"), "{s:?}");
    assert!(s.last_error_at.is_some());
    queue.down.store(false, Ordering::SeqCst);
    until("delivery", || queue.records().len() == 5).await;
    let ids = queue.attempt_ids.lock().unwrap().clone();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "a retry is the same message"
    );
    let s = log.snapshot();
    assert_eq!((s.sent, s.dropped, s.buffered), (5, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_bound_records_are_dropped_and_counted() {
    let queue = FakeQueue::down();
    let log = AccessLog::start(&settings(10, 5, 1000), queue.clone());
    emit_n(&log, 0, 5);
    // The batcher holds a full batch and retries it.
    until("a batch in hand", || {
        queue.attempts.load(Ordering::SeqCst) >= 1 && log.snapshot().buffered == 5
    })
    .await;
    emit_n(&log, 5, 20);
    let s = log.snapshot();
    assert_eq!((s.dropped, s.buffered, s.sent), (10, 15, 0), "{s:?}");
    queue.down.store(false, Ordering::SeqCst);
    until("the buffered records", || queue.records().len() == 15).await;
    let s = log.snapshot();
    assert_eq!((s.dropped, s.buffered, s.sent), (10, 0, 15));
    // Which ones went: the first fifteen, in order.
    let paths: Vec<String> = queue
        .records()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..15).map(|i| format!("/users/{i}")).collect();
    assert_eq!(paths, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_the_buffer_within_its_bound() {
    // Up: a batch that would wait 60 s goes at once.
    let queue = Arc::new(FakeQueue::default());
    let log = AccessLog::start(&settings(100, 50, 60_000), queue.clone());
    emit_n(&log, 0, 3);
    let started = Instant::now();
    log.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(queue.records().len(), 3);
    // A record after shutdown is dropped, counted.
    log.emit(sample(9));
    assert_eq!(log.snapshot().dropped, 1);

    // Down: shutdown gives up at its deadline and counts what was left.
    let queue = FakeQueue::down();
    let mut s = settings(100, 2, 5);
    s.shutdown_flush_ms = 300;
    let log = AccessLog::start(&s, queue.clone());
    emit_n(&log, 0, 5);
    until("a failed attempt", || {
        queue.attempts.load(Ordering::SeqCst) >= 1
    })
    .await;
    let started = Instant::now();
    log.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1300), "{took:?}");
    let s = log.snapshot();
    assert_eq!((s.sent, s.dropped, s.buffered), (0, 5, 0), "{s:?}");
}

/// Runs one request through `observe`; `answer` plays the dispatch,
/// given the request head and its body (read as a component would).
async fn through(
    log: &Arc<AccessLog>,
    request: Request<Full<Bytes>>,
    served: Option<(&str, &str)>,
    answer: impl FnOnce(Request<()>, Bytes) -> Response<crate::responses::Body> + Send + 'static,
) -> (Response<()>, Bytes) {
    let response = log
        .observe(request, served, |request| async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            answer(Request::from_parts(parts, ()), bytes)
        })
        .await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (Response::from_parts(parts, ()), bytes)
}

fn answer(status: u16, body: &'static str) -> Response<crate::responses::Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_gets_one_record_with_its_id_sizes_and_user() {
    let queue = Arc::new(FakeQueue::default());
    let log = AccessLog::start(&settings(100, 1, 1), queue.clone());
    let request = Request::post("/users/new?secret=1")
        .header("x-request-id", "client-id-1")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let (response, body) = through(
        &log,
        request,
        Some(("/users", "users")),
        |mut request, body| {
            assert_eq!(body, "hello");
            // The component sees the id too.
            assert_eq!(request.headers()["x-request-id"], "client-id-1");
            set_user(&mut request, "user-1");
            answer(201, "created")
        },
    )
    .await;
    assert_eq!(response.headers()["x-request-id"], "client-id-1");
    assert_eq!(body, "created");
    until("the record", || queue.records().len() == 1).await;
    let r = &queue.records()[0];
    assert_eq!(r["kind"], "access");
    assert_eq!(r["service"], "users");
    assert_eq!(r["component"], "users");
    assert_eq!(r["action"], "POST /users");
    assert_eq!(
        r["path"], "/users/new",
        "no query string: it may hold secrets"
    );
    assert_eq!(r["status"], 201);
    assert_eq!(r["result"], "success");
    assert_eq!(r["request_id"], "client-id-1");
    assert_eq!(r["user_id"], "user-1");
    assert_eq!(
        (r["bytes_in"].as_u64(), r["bytes_out"].as_u64()),
        (Some(5), Some(7))
    );
    assert!(r["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(r.get("cause").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_unrouted_requests_and_bad_ids() {
    let queue = Arc::new(FakeQueue::default());
    let log = AccessLog::start(&settings(100, 1, 1), queue.clone());
    // A host error (503) on a routed request, with an id we do not keep.
    let request = Request::get("/hello")
        .header("x-request-id", "has space")
        .body(Full::default())
        .unwrap();
    let (response, _) = through(&log, request, Some(("/hello", "hello")), |_, _| {
        HostError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "every slot busy",
        )
        .component("hello")
        .into_response()
    })
    .await;
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, "has space");
    // No route: the gateway's record. A client's user header means nothing.
    let request = Request::get("/nowhere")
        .header("x-user-id", "mallory")
        .body(Full::default())
        .unwrap();
    through(&log, request, None, |_, _| {
        HostError::new(StatusCode::NOT_FOUND, "no_route", "nothing here").into_response()
    })
    .await;
    // A component's own 500.
    let request = Request::get("/hello/x").body(Full::default()).unwrap();
    through(&log, request, Some(("/hello", "hello")), |_, _| {
        answer(500, "oops")
    })
    .await;
    until("three records", || queue.records().len() == 3).await;
    let r = queue.records();
    assert_eq!(r[0]["status"], 503);
    assert_eq!(r[0]["result"], "failure");
    assert_eq!(r[0]["cause"], "overloaded: every slot busy");
    assert_eq!(r[0]["request_id"], id.as_str());
    assert_eq!(r[1]["service"], "gateway");
    assert_eq!(r[1]["component"], Value::Null);
    assert_eq!(r[1]["status"], 404);
    assert_eq!(r[1]["user_id"], "");
    assert!(r[1].get("cause").is_none(), "4xx have no cause");
    assert_eq!(
        r[2]["cause"],
        "the component answered 500 Internal Server Error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_and_sampled_requests_are_counted_not_sent() {
    let queue = Arc::new(FakeQueue::default());
    let mut s = settings(100, 1, 1);
    s.skip = vec!["/status".into()];
    s.sample = vec![settings::SampleRule {
        path: "/hello".into(),
        rate: 0.5,
    }];
    let log = AccessLog::start(&s, queue.clone());
    let get = |path: &str| Request::get(path).body(Full::default()).unwrap();
    for _ in 0..3 {
        through(&log, get("/status"), Some(("/status", "status")), |_, _| {
            answer(200, "ok")
        })
        .await;
    }
    through(&log, get("/status"), Some(("/status", "status")), |_, _| {
        answer(500, "no")
    })
    .await;
    for _ in 0..4 {
        through(&log, get("/hello"), Some(("/hello", "hello")), |_, _| {
            answer(200, "hi")
        })
        .await;
    }
    until("three records", || queue.records().len() == 3).await;
    let s = log.snapshot();
    assert_eq!((s.skipped, s.sampled_out, s.sent), (3, 2, 3));
    let statuses: Vec<u64> = queue
        .records()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 200, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_it_still_gives_request_ids() {
    let log = AccessLog::disabled();
    let request = Request::get("/x").body(Full::default()).unwrap();
    let (response, _) = through(&log, request, None, |_, _| answer(200, "ok")).await;
    assert!(request_id::valid(&response.headers()["x-request-id"]));
    let s = log.snapshot();
    assert!(!s.enabled);
    assert_eq!((s.sent, s.dropped, s.buffered), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_given_up_before_its_answer_is_recorded_as_499() {
    let queue = Arc::new(FakeQueue::default());
    let log = AccessLog::start(&settings(100, 1, 1), queue.clone());
    let request: Request<Full<Bytes>> = Request::get("/slow").body(Full::default()).unwrap();
    let answered = log.observe(request, Some(("/slow", "slow")), |_| async {
        std::future::pending::<Response<crate::responses::Body>>().await
    });
    // The connection goes away while the dispatch runs: hyper drops it.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), answered)
            .await
            .is_err()
    );
    until("the record", || queue.records().len() == 1).await;
    let r = &queue.records()[0];
    assert_eq!(r["status"], 499);
    assert_eq!(r["result"], "failure");
    assert_eq!(r["service"], "slow");
    assert_eq!(r["cause"], "the client went away before the response");
}
