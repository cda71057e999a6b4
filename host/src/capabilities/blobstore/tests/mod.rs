//! The blobstore against both backends: every test body runs on the local
//! store and on an S3 server (moto, started on loopback by
//! `test_support::moto`). `view` drives the WIT-facing layer the way a
//! component does.

mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use test_support::moto;

use super::BlobStore;
use super::settings::{Backend, BlobstoreSettings};
use view::component_view;

/// A store to test, with what keeps it alive.
struct Backing {
    store: Arc<BlobStore>,
    _dir: Option<tempfile::TempDir>,
    _moto: Option<Arc<moto::Moto>>,
}

fn local() -> Backing {
    let dir = tempfile::tempdir().unwrap();
    let config = BlobstoreSettings {
        path: dir.path().join("blobs"),
        ..BlobstoreSettings::default()
    };
    Backing {
        store: Arc::new(BlobStore::new(&config).unwrap()),
        _dir: Some(dir),
        _moto: None,
    }
}

fn s3() -> Backing {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let moto = moto::shared();
    let config = BlobstoreSettings {
        backend: Backend::S3,
        endpoint: Some(moto.endpoint.clone()),
        bucket: moto::BUCKET.into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        // Tests share the bucket; each keeps to its own prefix.
        key_prefix: format!(
            "unit-{}-{}/",
            std::process::id(),
            RUN.fetch_add(1, Ordering::SeqCst)
        ),
        timeout_ms: 10_000,
        ..BlobstoreSettings::default()
    };
    Backing {
        store: Arc::new(BlobStore::new(&config).unwrap()),
        _dir: None,
        _moto: Some(moto),
    }
}

/// Runs `$body` (an async fn taking `&Backing`) once per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local_backend { $( #[tokio::test] async fn $name() { super::$name(&super::local()).await } )* }
        mod s3_backend { $( #[tokio::test] async fn $name() { super::$name(&super::s3()).await } )* }
    };
}

both_backends!(
    objects_round_trip,
    containers_are_isolated,
    copy_and_move,
    component_view
);

async fn names(store: &BlobStore, container: &str) -> Vec<String> {
    let mut listing = store.list(container);
    let mut names = Vec::new();
    while let Some(name) = store.next_name(&mut listing).await.unwrap() {
        names.push(name);
    }
    names.sort();
    names
}

async fn objects_round_trip(b: &Backing) {
    let s = &b.store;
    assert_eq!(s.container_created("data").await.unwrap(), None);
    s.create_container("data").await.unwrap();
    s.create_container("data").await.unwrap(); // again: kept as it is
    assert!(s.container_created("data").await.unwrap().is_some());
    assert_eq!(
        names(s, "data").await,
        Vec::<String>::new(),
        "the marker is hidden"
    );

    s.put("data", "a.txt", Bytes::from("hello world"))
        .await
        .unwrap();
    s.put("data", "2024/03/b.json", Bytes::from("{}"))
        .await
        .unwrap();
    s.put("data", "empty", Bytes::new()).await.unwrap();
    // Names are kept byte for byte: spaces, non-ASCII, URL-special characters.
    let odd = "notas/ação 1+2=3 #x?&%.txt";
    s.put("data", odd, Bytes::from("odd")).await.unwrap();
    assert_eq!(s.get("data", odd, 0, u64::MAX).await.unwrap(), "odd");
    assert_eq!(
        s.get("data", "a.txt", 0, u64::MAX).await.unwrap(),
        "hello world"
    );
    assert_eq!(s.get("data", "a.txt", 0, 4).await.unwrap(), "hello");
    assert_eq!(s.get("data", "a.txt", 6, 1000).await.unwrap(), "world");
    assert_eq!(s.get("data", "a.txt", 10, 10).await.unwrap(), "d");
    assert_eq!(s.get("data", "empty", 0, u64::MAX).await.unwrap(), "");
    assert_eq!(s.get("data", "empty", 0, 10).await.unwrap(), "");
    let past = s
        .get("data", "a.txt", 11, 20)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        past.contains("past the end") && past.contains("11 bytes"),
        "{past}"
    );
    let backwards = s.get("data", "a.txt", 5, 4).await.unwrap_err().to_string();
    assert!(backwards.contains("after end"), "{backwards}");
    let missing = s
        .get("data", "nope", 0, u64::MAX)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("\"nope\"") && missing.contains("not found"),
        "{missing}"
    );

    let meta = s.head("data", "a.txt").await.unwrap().unwrap();
    assert_eq!(meta.size, 11);
    assert!(s.head("data", "nope").await.unwrap().is_none());
    assert_eq!(
        names(s, "data").await,
        [
            "2024/03/b.json",
            "a.txt",
            "empty",
            "notas/ação 1+2=3 #x?&%.txt"
        ]
    );

    // Replacing is whole.
    s.put("data", "a.txt", Bytes::from("bye")).await.unwrap();
    assert_eq!(s.get("data", "a.txt", 0, u64::MAX).await.unwrap(), "bye");

    s.delete("data", &["a.txt".into()]).await.unwrap();
    s.delete("data", &["a.txt".into(), "never-there".into()])
        .await
        .unwrap();
    assert_eq!(
        names(s, "data").await,
        ["2024/03/b.json", "empty", "notas/ação 1+2=3 #x?&%.txt"]
    );
}

async fn containers_are_isolated(b: &Backing) {
    let s = &b.store;
    for c in ["c1", "c10", "c1-x"] {
        s.create_container(c).await.unwrap();
        s.put(c, "same-name", Bytes::from(c.to_owned()))
            .await
            .unwrap();
    }
    s.put("c1", "only-in-c1", Bytes::from("x")).await.unwrap();
    assert_eq!(names(s, "c1").await, ["only-in-c1", "same-name"]);
    assert_eq!(names(s, "c10").await, ["same-name"]);
    assert_eq!(s.get("c10", "same-name", 0, u64::MAX).await.unwrap(), "c10");

    s.clear("c1").await.unwrap();
    assert!(
        s.container_created("c1").await.unwrap().is_some(),
        "clear keeps the container"
    );
    assert_eq!(names(s, "c1").await, Vec::<String>::new());
    s.delete_container("c10").await.unwrap();
    assert_eq!(s.container_created("c10").await.unwrap(), None);
    assert_eq!(names(s, "c1-x").await, ["same-name"]);
    s.delete_container("c10").await.unwrap(); // again: nothing to do
}

async fn copy_and_move(b: &Backing) {
    let s = &b.store;
    s.create_container("src").await.unwrap();
    s.create_container("dst").await.unwrap();
    s.put("src", "a", Bytes::from("payload")).await.unwrap();
    s.put("dst", "b", Bytes::from("old")).await.unwrap();
    s.copy(("src", "a"), ("dst", "b"), false).await.unwrap();
    assert_eq!(s.get("dst", "b", 0, u64::MAX).await.unwrap(), "payload");
    assert_eq!(s.get("src", "a", 0, u64::MAX).await.unwrap(), "payload");
    s.copy(("src", "a"), ("dst", "moved/c"), true)
        .await
        .unwrap();
    assert_eq!(
        s.get("dst", "moved/c", 0, u64::MAX).await.unwrap(),
        "payload"
    );
    assert!(s.head("src", "a").await.unwrap().is_none());
    let missing = s
        .copy(("src", "a"), ("dst", "x"), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("not found"), "{missing}");
}

/// A store that never answers: TCP connections are accepted, then ignored.
fn silent_s3(timeout_ms: u64) -> (Arc<BlobStore>, std::net::TcpListener) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = BlobstoreSettings {
        backend: Backend::S3,
        endpoint: Some(format!("http://{}", listener.local_addr().unwrap())),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        timeout_ms,
        ..BlobstoreSettings::default()
    };
    (Arc::new(BlobStore::new(&config).unwrap()), listener)
}

#[tokio::test]
async fn every_call_is_bounded_by_the_timeout() {
    let (store, _listener) = silent_s3(300);
    let started = std::time::Instant::now();
    let err = store.put("c", "o", Bytes::from("x")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // What the component reads: marked as an outage.
    let err = String::from(err);
    assert!(
        err.starts_with("unavailable: ")
            && err.contains("did not answer within 300 ms")
            && err.contains("\"o\""),
        "{err}"
    );
    let err = store.container_created("c").await.unwrap_err().to_string();
    assert!(err.contains("did not answer"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn grants_name_valid_containers() {
    let backing = local();
    let blobstore = crate::capabilities::blobstore::Blobstore {
        store: backing.store.clone(),
    };
    let component: crate::config::ComponentConfig =
        toml::from_str("name = \"c\"\nwasm = \"c.wasm\"").unwrap();
    let prepare = |containers: &[&str]| {
        let grant = crate::capabilities::blobstore::Grant {
            containers: containers.iter().map(|c| c.to_string()).collect(),
        };
        crate::capabilities::Capability::prepare(&blobstore, &component, grant).map(|_| ())
    };
    prepare(&["transactions", "results"]).unwrap();
    let err = prepare(&[]).unwrap_err().to_string();
    assert!(
        err.contains("grants.blobstore.containers") && err.contains("at least one"),
        "{err}"
    );
    let err = prepare(&["ok", "../up"]).unwrap_err().to_string();
    assert!(err.contains("invalid container name \"../up\""), "{err}");
}
