//! The same behaviour tests, run against both backends: the embedded store
//! in a temporary directory and the real Redis on 127.0.0.1:6379 (or
//! `CORRAL_TEST_REDIS_URL`), each Redis test under a random key prefix that
//! it deletes afterwards, even when it fails. Backend-specific behaviour
//! (persistence, sweeping, an unreachable Redis) is in `failures.rs`.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;

mod failures;
mod index;

use index::*;

use super::backend::{Backend, KeyValueStore};
use super::embedded::EmbeddedBackend;
use super::redis::RedisBackend;

pub(super) const TIMEOUT: Duration = Duration::from_secs(3);

pub(super) fn redis_url() -> String {
    std::env::var("CORRAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Redis,
    Embedded,
}

/// Runs `test` against a fresh store of `kind`, then cleans up.
async fn with_store<F, Fut>(kind: Kind, page_size: usize, test: F)
where
    F: FnOnce(KeyValueStore, Kind) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("corral-test-{:016x}:", getrandom::u64().unwrap());
    let backend: Arc<dyn Backend> = match kind {
        Kind::Redis => Arc::new(RedisBackend::new(&redis_url(), &prefix, TIMEOUT).unwrap()),
        Kind::Embedded => Arc::new(EmbeddedBackend::new(
            &dir.path().join("kv.redb"),
            Duration::from_millis(100),
        )),
    };
    let store = KeyValueStore::new(backend, TIMEOUT).with_page_size(page_size);
    let outcome = std::panic::AssertUnwindSafe(test(store, kind))
        .catch_unwind()
        .await;
    if kind == Kind::Redis {
        delete_prefix(&prefix).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

pub(super) async fn delete_prefix(prefix: &str) {
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .cursor_arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            ::redis::cmd("DEL")
                .arg(keys)
                .exec_async(&mut c)
                .await
                .unwrap();
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// Declares `name` as a test on each backend.
macro_rules! on_both {
    (@page $page:expr) => { $page };
    (@page) => { 100 };
    ($($name:ident $(($page:expr))?),* $(,)?) => {
        mod on_redis {
            $(#[tokio::test]
            async fn $name() {
                super::with_store(super::Kind::Redis, on_both!(@page $($page)?), super::$name).await
            })*
        }
        mod on_embedded {
            $(#[tokio::test]
            async fn $name() {
                super::with_store(super::Kind::Embedded, on_both!(@page $($page)?), super::$name).await
            })*
        }
    };
}

on_both!(
    set_get_exists_delete,
    ttl_expires_and_reports_what_is_left,
    set_many_with_ttl_expires_together,
    concurrent_writes_each_get_their_own_answer,
    set_if_absent_sets_once,
    set_many_if_absent_answers_per_entry,
    increment_counts_in_decimal,
    batch_operations,
    list_keys_pages_through_everything(3),
    buckets_are_isolated,
    keys_are_validated,
    index_orders_by_score_then_member_bytes,
    index_pages_are_exact_under_ties,
    index_moves_removes_and_counts,
    index_apply_writes_values_and_entries,
    indexes_are_isolated,
    index_limits_are_enforced,
    index_matches_a_model_under_random_changes,
);

async fn set_get_exists_delete(store: KeyValueStore, _: Kind) {
    assert_eq!(store.get("b", "k").await.unwrap(), None);
    assert!(!store.exists("b", "k").await.unwrap());
    store.set("b", "k", b"v1".to_vec(), None).await.unwrap();
    assert_eq!(store.get("b", "k").await.unwrap(), Some(b"v1".to_vec()));
    assert!(store.exists("b", "k").await.unwrap());
    store.set("b", "k", b"v2".to_vec(), None).await.unwrap();
    assert_eq!(store.get("b", "k").await.unwrap(), Some(b"v2".to_vec()));
    // Binary values and keys with odd characters are kept as given.
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .set("b", "a:b*c?[d] é", bytes.clone(), None)
        .await
        .unwrap();
    assert_eq!(store.get("b", "a:b*c?[d] é").await.unwrap(), Some(bytes));
    store.delete("b", "k").await.unwrap();
    assert_eq!(store.get("b", "k").await.unwrap(), None);
    assert!(!store.exists("b", "k").await.unwrap());
    // Deleting what is not there is not an error.
    store.delete("b", "k").await.unwrap();
}

async fn ttl_expires_and_reports_what_is_left(store: KeyValueStore, _: Kind) {
    store
        .set("b", "short", b"v".to_vec(), Some(300))
        .await
        .unwrap();
    store
        .set("b", "long", b"v".to_vec(), Some(60_000))
        .await
        .unwrap();
    store
        .set("b", "forever", b"v".to_vec(), None)
        .await
        .unwrap();
    let left = store.ttl("b", "short").await.unwrap().expect("has a ttl");
    assert!(left > 0 && left <= 300, "{left}");
    let left = store.ttl("b", "long").await.unwrap().expect("has a ttl");
    assert!(left > 55_000 && left <= 60_000, "{left}");
    assert_eq!(store.ttl("b", "forever").await.unwrap(), None);
    assert_eq!(store.ttl("b", "missing").await.unwrap(), None);
    assert_eq!(store.get("b", "short").await.unwrap(), Some(b"v".to_vec()));

    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.get("b", "short").await.unwrap(), None);
    assert!(!store.exists("b", "short").await.unwrap());
    assert_eq!(store.ttl("b", "short").await.unwrap(), None);
    assert!(store.exists("b", "long").await.unwrap());

    // A plain set clears an expiry (Redis SET semantics).
    store.set("b", "long", b"w".to_vec(), None).await.unwrap();
    assert_eq!(store.ttl("b", "long").await.unwrap(), None);
    let err = store
        .set("b", "k", b"v".to_vec(), Some(0))
        .await
        .unwrap_err();
    assert!(err.0.contains("ttl-ms must be at least 1"), "{err}");
}

async fn set_many_with_ttl_expires_together(store: KeyValueStore, _: Kind) {
    let entries: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| (format!("client:{i}"), format!("v{i}").into_bytes()))
        .collect();
    store.set_many("b", entries, Some(400)).await.unwrap();
    store.set("b", "other", b"x".to_vec(), None).await.unwrap();
    for i in [0, 567, 999] {
        let key = format!("client:{i}");
        assert_eq!(
            store.get("b", &key).await.unwrap(),
            Some(format!("v{i}").into_bytes())
        );
        let left = store.ttl("b", &key).await.unwrap().expect("has a ttl");
        assert!(left > 0 && left <= 400, "{left}");
    }
    tokio::time::sleep(Duration::from_millis(550)).await;
    for i in [0, 567, 999] {
        assert!(!store.exists("b", &format!("client:{i}")).await.unwrap());
    }
    assert!(
        store.exists("b", "other").await.unwrap(),
        "keys outside the call keep living"
    );
    let err = store
        .set_many("b", vec![("k".into(), vec![])], Some(0))
        .await
        .unwrap_err();
    assert!(err.0.contains("ttl-ms must be at least 1"), "{err}");
}

/// Many writers at once (the embedded store commits them in groups): each
/// gets the answer it would get alone, and a failing one spoils no other.
async fn concurrent_writes_each_get_their_own_answer(store: KeyValueStore, _: Kind) {
    store
        .set("b", "text", b"not a number".to_vec(), None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let won = store
                    .set_if_absent("b", "lock", format!("{i}").into_bytes(), None)
                    .await
                    .unwrap();
                let counted = store.increment("b", "counter", 1).await.unwrap();
                let refused = store.increment("b", "text", 1).await.is_err();
                store
                    .set("b", &format!("own:{i}"), vec![i as u8], None)
                    .await
                    .unwrap();
                (won, counted, refused)
            })
        })
        .collect();
    let mut winners = 0;
    let mut counts = Vec::new();
    for task in tasks {
        let (won, counted, refused) = task.await.unwrap();
        winners += usize::from(won);
        counts.push(counted);
        assert!(refused, "incrementing text must fail");
    }
    assert_eq!(winners, 1, "exactly one set-if-absent wins");
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=64).collect::<Vec<u64>>(),
        "every increment seen once"
    );
    for i in 0..64 {
        assert_eq!(
            store.get("b", &format!("own:{i}")).await.unwrap(),
            Some(vec![i as u8])
        );
    }
    assert_eq!(
        store.get("b", "text").await.unwrap(),
        Some(b"not a number".to_vec())
    );
}

async fn set_if_absent_sets_once(store: KeyValueStore, _: Kind) {
    assert!(
        store
            .set_if_absent("b", "k", b"first".to_vec(), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_if_absent("b", "k", b"second".to_vec(), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("b", "k").await.unwrap(), Some(b"first".to_vec()));
    assert_eq!(store.ttl("b", "k").await.unwrap(), None);

    assert!(
        store
            .set_if_absent("b", "lock", b"a".to_vec(), Some(200))
            .await
            .unwrap()
    );
    assert!(store.ttl("b", "lock").await.unwrap().is_some());
    assert!(
        !store
            .set_if_absent("b", "lock", b"b".to_vec(), Some(200))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Expired counts as absent.
    assert!(
        store
            .set_if_absent("b", "lock", b"c".to_vec(), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("b", "lock").await.unwrap(), Some(b"c".to_vec()));
}

async fn set_many_if_absent_answers_per_entry(store: KeyValueStore, _: Kind) {
    store
        .set("b", "taken", b"old".to_vec(), None)
        .await
        .unwrap();
    let entry = |k: &str, v: &str| (k.to_owned(), v.as_bytes().to_vec());
    let answers = store
        .set_many_if_absent(
            "b",
            vec![
                entry("fresh", "1"),
                entry("taken", "2"),
                entry("twice", "first"),
                entry("twice", "second"),
            ],
            Some(300),
        )
        .await
        .unwrap();
    assert_eq!(answers, [true, false, true, false]);
    assert_eq!(store.get("b", "fresh").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        store.get("b", "taken").await.unwrap(),
        Some(b"old".to_vec())
    );
    assert_eq!(
        store.get("b", "twice").await.unwrap(),
        Some(b"first".to_vec())
    );
    assert!(store.ttl("b", "fresh").await.unwrap().is_some());
    assert_eq!(store.ttl("b", "taken").await.unwrap(), None, "untouched");

    // Expired counts as absent; without a ttl the entry never expires.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let answers = store
        .set_many_if_absent("b", vec![entry("fresh", "3"), entry("taken", "4")], None)
        .await
        .unwrap();
    assert_eq!(answers, [true, false]);
    assert_eq!(store.get("b", "fresh").await.unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.ttl("b", "fresh").await.unwrap(), None);

    assert_eq!(
        store.set_many_if_absent("b", vec![], None).await.unwrap(),
        Vec::<bool>::new()
    );
    let too_many = (0..1001).map(|i| entry(&format!("k{i}"), "v")).collect();
    let err = store
        .set_many_if_absent("b", too_many, None)
        .await
        .unwrap_err();
    assert!(err.0.contains("1000"), "{err}");
    assert!(!store.exists("b", "k0").await.unwrap(), "nothing written");
}

async fn increment_counts_in_decimal(store: KeyValueStore, _: Kind) {
    assert_eq!(store.increment("b", "n", 5).await.unwrap(), 5);
    assert_eq!(store.increment("b", "n", 0).await.unwrap(), 5);
    assert_eq!(store.increment("b", "n", 37).await.unwrap(), 42);
    assert_eq!(store.get("b", "n").await.unwrap(), Some(b"42".to_vec()));
    store.set("b", "n", b"100".to_vec(), None).await.unwrap();
    assert_eq!(store.increment("b", "n", 1).await.unwrap(), 101);

    // An increment keeps the key's expiry, as INCRBY does.
    store
        .set("b", "t", b"7".to_vec(), Some(60_000))
        .await
        .unwrap();
    assert_eq!(store.increment("b", "t", 1).await.unwrap(), 8);
    assert!(store.ttl("b", "t").await.unwrap().is_some());

    store.set("b", "text", b"abc".to_vec(), None).await.unwrap();
    let err = store.increment("b", "text", 1).await.unwrap_err();
    assert!(err.0.contains("integer"), "{err}");
    assert!(store.increment("b", "n", u64::MAX).await.is_err());
    // Concurrent increments are atomic.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.increment("b", "c", 1).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.get("b", "c").await.unwrap(), Some(b"20".to_vec()));
}

async fn batch_operations(store: KeyValueStore, _: Kind) {
    let entries: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("k{i}"), format!("v{i}").into_bytes()))
        .collect();
    store.set_many("b", entries, None).await.unwrap();
    let keys = vec!["k0".to_owned(), "missing".to_owned(), "k4".to_owned()];
    let got = store.get_many("b", keys).await.unwrap();
    assert_eq!(
        got,
        vec![
            Some(("k0".to_owned(), b"v0".to_vec())),
            None,
            Some(("k4".to_owned(), b"v4".to_vec())),
        ]
    );
    store
        .delete_many("b", vec!["k0".into(), "k1".into(), "nope".into()])
        .await
        .unwrap();
    assert!(!store.exists("b", "k0").await.unwrap());
    assert!(!store.exists("b", "k1").await.unwrap());
    assert!(store.exists("b", "k2").await.unwrap());
    assert_eq!(store.get_many("b", vec![]).await.unwrap(), vec![]);
    store.set_many("b", vec![], None).await.unwrap();
    store.delete_many("b", vec![]).await.unwrap();
    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    let err = store.get_many("b", too_many).await.unwrap_err();
    assert!(err.0.contains("limit is 1000"), "{err}");

    // Repeated keys: each position answered, in order.
    let got = store
        .get_many("b", vec!["k2".into(), "k3".into(), "k2".into()])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(("k2".to_owned(), b"v2".to_vec())),
            Some(("k3".to_owned(), b"v3".to_vec())),
            Some(("k2".to_owned(), b"v2".to_vec())),
        ]
    );
    // One 1 MiB value asked for 1000 times would be 1000 MiB of answer:
    // refused, with the limit named, instead of held in host memory.
    store
        .set("b", "big", vec![7u8; 1024 * 1024], None)
        .await
        .unwrap();
    let err = store
        .get_many("b", vec!["big".to_owned(); 1000])
        .await
        .unwrap_err();
    assert!(err.0.contains("ask for fewer keys"), "{err}");
}

async fn list_keys_pages_through_everything(store: KeyValueStore, kind: Kind) {
    let mut expected: Vec<String> = (0..10).map(|i| format!("key-{i}")).collect();
    let entries = expected
        .iter()
        .map(|k| (k.clone(), b"v".to_vec()))
        .collect();
    store.set_many("paged", entries, None).await.unwrap();
    store
        .set("paged", "gone", b"v".to_vec(), Some(1))
        .await
        .unwrap();
    store
        .set("other", "key-x", b"v".to_vec(), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.list_keys("paged", cursor).await.unwrap();
        pages += 1;
        assert!(pages < 100, "listing does not end");
        seen.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    expected.sort();
    assert_eq!(
        seen, expected,
        "every key once, without prefix, none expired or foreign"
    );
    if kind == Kind::Embedded {
        assert!(pages >= 4, "10 keys in pages of 3 took {pages} pages");
    }
}

async fn buckets_are_isolated(store: KeyValueStore, _: Kind) {
    store.set("one", "k", b"1".to_vec(), None).await.unwrap();
    store.set("two", "k", b"2".to_vec(), None).await.unwrap();
    // "one:k" in bucket "o" must not alias "o" + "ne:k".
    store.set("o", "ne:k", b"3".to_vec(), None).await.unwrap();
    assert_eq!(store.get("one", "k").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get("two", "k").await.unwrap(), Some(b"2".to_vec()));
    store.delete("one", "k").await.unwrap();
    assert_eq!(store.get("one", "k").await.unwrap(), None);
    assert_eq!(store.get("two", "k").await.unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.list_keys("two", None).await.unwrap().keys, vec!["k"]);
    assert_eq!(store.list_keys("o", None).await.unwrap().keys, vec!["ne:k"]);
    assert!(store.list_keys("one", None).await.unwrap().keys.is_empty());
}

async fn keys_are_validated(store: KeyValueStore, _: Kind) {
    let err = store.get("b", "").await.unwrap_err();
    assert!(err.0.contains("key is empty"), "{err}");
    assert!(
        !err.is_unavailable(),
        "a bad argument is not an outage: {err}"
    );
    let err = store
        .set("b", &"x".repeat(2000), vec![], None)
        .await
        .unwrap_err();
    assert!(err.0.contains("limit is 1024"), "{err}");
    let err = store
        .set_many(
            "b",
            vec![("ok".into(), vec![]), (String::new(), vec![])],
            None,
        )
        .await
        .unwrap_err();
    assert!(err.0.contains("key is empty"), "{err}");
    assert!(
        !store.exists("b", "ok").await.unwrap(),
        "a bad batch writes nothing"
    );
}
