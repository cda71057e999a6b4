//! What only one backend can show: the embedded file persisting and being
//! swept, and Redis being down or mute without hanging anyone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{TIMEOUT, delete_prefix, redis_url};
use crate::capabilities::keyvalue::backend::KeyValueStore;
use crate::capabilities::keyvalue::embedded::EmbeddedBackend;
use crate::capabilities::keyvalue::redis::RedisBackend;

#[tokio::test]
async fn embedded_store_persists_and_sweeps_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/kv.redb");
    let backend = Arc::new(EmbeddedBackend::new(&path, Duration::from_millis(50)));
    let store = KeyValueStore::new(backend.clone(), TIMEOUT);
    store
        .set("b", "keep", b"v".to_vec(), Some(60_000))
        .await
        .unwrap();
    store
        .set("b", "drop", b"v".to_vec(), Some(30))
        .await
        .unwrap();
    // Nothing reads "drop": only the sweeper can remove it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(backend.stored_entries().unwrap(), 1);
    drop(store);
    drop(backend);
    // Let a sweep in progress let go of the file before it is reopened.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let store = KeyValueStore::new(
        Arc::new(EmbeddedBackend::new(&path, Duration::from_secs(30))),
        TIMEOUT,
    );
    assert_eq!(store.get("b", "keep").await.unwrap(), Some(b"v".to_vec()));
    assert!(store.ttl("b", "keep").await.unwrap().unwrap() > 50_000);
}

#[tokio::test]
async fn a_redis_that_is_down_fails_fast_with_a_clear_error() {
    // Nothing listens on port 1.
    let backend =
        RedisBackend::new("redis://127.0.0.1:1", "x:", Duration::from_millis(800)).unwrap();
    let store = KeyValueStore::new(Arc::new(backend), Duration::from_millis(800));
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.get("b", "k").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert!(
            err.0.contains("127.0.0.1:1")
                && (err.0.contains("unreachable") || err.0.contains("did not answer")),
            "{err}"
        );
        // Marked as the backend's failure, not the call's: components
        // answer 503 and queues pause instead of failing the work.
        assert!(err.is_unavailable(), "{err}");
        assert!(err.0.starts_with("unavailable: keyvalue get: "), "{err}");
    }
}

#[tokio::test]
async fn a_redis_that_never_answers_times_out() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(500);
    let backend = RedisBackend::new(&format!("redis://{addr}"), "x:", timeout).unwrap();
    let store = KeyValueStore::new(Arc::new(backend), timeout);
    let started = Instant::now();
    let err = store.set("b", "k", b"v".to_vec(), None).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(err.0.starts_with("unavailable: keyvalue set: "), "{err}");
    hold.abort();
}

/// Forwards 127.0.0.1:`port` to the real Redis until aborted; aborting it
/// drops the listener and every connection, like a Redis restart.
async fn proxy(listener: tokio::net::TcpListener) {
    let upstream = redis_url().trim_start_matches("redis://").to_owned();
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut client, _)) = listener.accept().await {
        let upstream = upstream.clone();
        connections.spawn(async move {
            if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

#[tokio::test]
async fn redis_errors_while_down_and_reconnects_by_itself() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut outage = tokio::spawn(proxy(listener));
    let prefix = format!("corral-test-{:016x}:", getrandom::u64().unwrap());
    let timeout = Duration::from_millis(800);
    let backend = RedisBackend::new(&format!("redis://{addr}"), &prefix, timeout).unwrap();
    let store = KeyValueStore::new(Arc::new(backend), timeout);
    store.set("b", "k", b"v".to_vec(), None).await.unwrap();

    outage.abort();
    let _ = (&mut outage).await;
    let started = Instant::now();
    assert!(store.get("b", "k").await.is_err(), "Redis is gone");
    assert!(started.elapsed() < Duration::from_millis(1500));

    // Redis is back on the same address: no restart of the host needed.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let back = tokio::spawn(proxy(listener));
    let deadline = Instant::now() + Duration::from_secs(10);
    let value = loop {
        match store.get("b", "k").await {
            Ok(value) => break value,
            Err(e) if Instant::now() > deadline => panic!("never reconnected: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    back.abort();
    delete_prefix(&prefix).await;
    assert_eq!(value, Some(b"v".to_vec()));
}

#[tokio::test]
async fn a_locked_embedded_file_is_an_error_per_operation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let first = KeyValueStore::new(
        Arc::new(EmbeddedBackend::new(&path, Duration::from_secs(30))),
        TIMEOUT,
    );
    first.set("b", "k", b"v".to_vec(), None).await.unwrap();
    // A second host pointed at the same file: redb refuses to share it.
    let second = KeyValueStore::new(
        Arc::new(EmbeddedBackend::new(&path, Duration::from_secs(30))),
        TIMEOUT,
    );
    let err = second.get("b", "k").await.unwrap_err();
    assert!(err.0.contains("cannot open the embedded store"), "{err}");
    assert_eq!(first.get("b", "k").await.unwrap(), Some(b"v".to_vec()));
}
