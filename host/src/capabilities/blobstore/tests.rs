//! The blobstore against both backends: every test body runs on the local
//! store and on an S3 server (moto, started on loopback by `moto.rs`).

#[path = "../../../tests/support/moto.rs"]
mod moto;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::settings::{Backend, BackendConfig};
use super::{BlobView, Container, Granted, Store};
use crate::bindings::wasi::blobstore::blobstore::Host as _;
use crate::bindings::wasi::blobstore::container::{HostContainer as _, HostStreamObjectNames as _};
use crate::bindings::wasi::blobstore::types::{
    HostIncomingValue as _, HostOutgoingValue as _, ObjectId,
};

/// A store to test, with what keeps it alive.
struct Backing {
    store: Arc<Store>,
    _dir: Option<tempfile::TempDir>,
    _moto: Option<Arc<moto::Moto>>,
}

fn local() -> Backing {
    let dir = tempfile::tempdir().unwrap();
    let config = BackendConfig {
        path: dir.path().join("blobs"),
        ..BackendConfig::default()
    };
    Backing {
        store: Arc::new(Store::new(&config).unwrap()),
        _dir: Some(dir),
        _moto: None,
    }
}

fn s3() -> Backing {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let moto = moto::shared();
    let config = BackendConfig {
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
        ..BackendConfig::default()
    };
    Backing {
        store: Arc::new(Store::new(&config).unwrap()),
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

async fn names(store: &Store, container: &str) -> Vec<String> {
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
    assert_eq!(
        s.get("data", "a.txt", 0, u64::MAX).await.unwrap(),
        "hello world"
    );
    assert_eq!(s.get("data", "a.txt", 0, 4).await.unwrap(), "hello");
    assert_eq!(s.get("data", "a.txt", 6, 1000).await.unwrap(), "world");
    assert_eq!(s.get("data", "a.txt", 10, 10).await.unwrap(), "d");
    assert_eq!(s.get("data", "empty", 0, u64::MAX).await.unwrap(), "");
    assert_eq!(s.get("data", "empty", 0, 10).await.unwrap(), "");
    let past = s.get("data", "a.txt", 11, 20).await.unwrap_err();
    assert!(
        past.contains("past the end") && past.contains("11 bytes"),
        "{past}"
    );
    let backwards = s.get("data", "a.txt", 5, 4).await.unwrap_err();
    assert!(backwards.contains("after end"), "{backwards}");
    let missing = s.get("data", "nope", 0, u64::MAX).await.unwrap_err();
    assert!(
        missing.contains("\"nope\"") && missing.contains("not found"),
        "{missing}"
    );

    let meta = s.head("data", "a.txt").await.unwrap().unwrap();
    assert_eq!(meta.size, 11);
    assert!(s.head("data", "nope").await.unwrap().is_none());
    assert_eq!(names(s, "data").await, ["2024/03/b.json", "a.txt", "empty"]);

    // Replacing is whole.
    s.put("data", "a.txt", Bytes::from("bye")).await.unwrap();
    assert_eq!(s.get("data", "a.txt", 0, u64::MAX).await.unwrap(), "bye");

    s.delete("data", &["a.txt".into()]).await.unwrap();
    s.delete("data", &["a.txt".into(), "never-there".into()])
        .await
        .unwrap();
    assert_eq!(names(s, "data").await, ["2024/03/b.json", "empty"]);
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
    let missing = s.copy(("src", "a"), ("dst", "x"), false).await.unwrap_err();
    assert!(missing.contains("not found"), "{missing}");
}

fn granted(b: &Backing, containers: &[&str]) -> Granted {
    Granted {
        store: b.store.clone(),
        containers: containers.iter().map(|c| c.to_string()).collect(),
    }
}

/// The WIT-facing layer: grants, names, values and streams, as a component
/// sees them.
async fn component_view(b: &Backing) {
    let blob = granted(b, &["transactions", "archive"]);
    let mut table = ResourceTable::new();
    let mut view = BlobView {
        table: &mut table,
        blob: &blob,
    };

    // Ungranted and malformed containers never reach the store.
    let refused = view
        .create_container("secrets".into())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        refused.contains("not granted") && refused.contains("transactions"),
        "{refused}"
    );
    let refused = view
        .get_container("../transactions".into())
        .await
        .unwrap()
        .unwrap_err();
    assert!(refused.contains("invalid container name"), "{refused}");
    assert!(
        view.get_container("archive".into())
            .await
            .unwrap()
            .unwrap_err()
            .contains("does not exist")
    );

    let c = view
        .create_container("transactions".into())
        .await
        .unwrap()
        .unwrap();
    write(&mut view, &c, "batch-1.json", b"[1,2,3]")
        .await
        .unwrap();
    for bad in ["../../escape", "/abs", "a\\b", "nul\0"] {
        let err = write(&mut view, &c, bad, b"x").await.unwrap_err();
        assert!(err.contains("invalid object name"), "{bad:?}: {err}");
        let err = view
            .get_data(own(&c), bad.into(), 0, 10)
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.contains("invalid object name"), "{err}");
    }
    assert_eq!(names(&blob.store, "transactions").await, ["batch-1.json"]);
    if let Some(dir) = &b._dir {
        let files: Vec<_> = walk(dir.path());
        assert!(
            files
                .iter()
                .all(|f| f.starts_with(dir.path().join("blobs"))),
            "{files:?}"
        );
    }

    // Reads: bytes, a range, and a stream.
    let value = view
        .get_data(own(&c), "batch-1.json".into(), 0, u64::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.size(own(&value)).await.unwrap(), 7);
    assert_eq!(
        view.incoming_value_consume_sync(value)
            .await
            .unwrap()
            .unwrap(),
        b"[1,2,3]"
    );
    let value = view
        .get_data(own(&c), "batch-1.json".into(), 1, 3)
        .await
        .unwrap()
        .unwrap();
    let stream = view
        .incoming_value_consume_async(value)
        .await
        .unwrap()
        .unwrap();
    let input: &mut DynInputStream = view.table.get_mut(&stream).unwrap();
    assert_eq!(input.read(100).unwrap(), "1,2");
    view.table.delete(stream).unwrap();

    // Listing in batches.
    for i in 0..5 {
        write(&mut view, &c, &format!("more/{i}"), b"")
            .await
            .unwrap();
    }
    let listing = view.list_objects(own(&c)).await.unwrap().unwrap();
    let (first, done) = view
        .read_stream_object_names(own(&listing), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.len(), done), (2, false));
    let (skipped, _) = view
        .skip_stream_object_names(own(&listing), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped, 1);
    let (rest, done) = view
        .read_stream_object_names(own(&listing), 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rest.len(), done), (3, true));

    // Copy and move only between granted, existing containers.
    let id = |container: &str, object: &str| ObjectId {
        container: container.into(),
        object: object.into(),
    };
    let err = view
        .copy_object(id("transactions", "batch-1.json"), id("archive", "b"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
    view.create_container("archive".into())
        .await
        .unwrap()
        .unwrap();
    view.copy_object(id("transactions", "batch-1.json"), id("archive", "b"))
        .await
        .unwrap()
        .unwrap();
    let err = view
        .move_object(id("transactions", "batch-1.json"), id("secrets", "b"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("not granted"), "{err}");
    let err = view
        .move_object(id("transactions", "../x"), id("archive", "b"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("invalid object name"), "{err}");
    view.move_object(id("archive", "b"), id("transactions", "restored"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        view.has_object(own(&c), "restored".into())
            .await
            .unwrap()
            .unwrap()
    );
    let info = view
        .object_info(own(&c), "restored".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((info.size, info.container.as_str()), (7, "transactions"));

    view.clear(own(&c)).await.unwrap().unwrap();
    assert!(
        view.container_exists("transactions".into())
            .await
            .unwrap()
            .unwrap()
    );
    view.delete_container("transactions".into())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !view
            .container_exists("transactions".into())
            .await
            .unwrap()
            .unwrap()
    );
}

/// Writes an object the way a component does: value, body stream, write-data, finish.
async fn write(
    view: &mut BlobView<'_>,
    c: &Resource<Container>,
    name: &str,
    bytes: &[u8],
) -> Result<(), String> {
    let value = view.new_outgoing_value().await.unwrap();
    let stream = view
        .outgoing_value_write_body(own(&value))
        .await
        .unwrap()
        .unwrap();
    assert!(
        view.outgoing_value_write_body(own(&value))
            .await
            .unwrap()
            .is_err(),
        "one stream only"
    );
    let output: &mut DynOutputStream = view.table.get_mut(&stream).unwrap();
    output.write(Bytes::copy_from_slice(bytes)).unwrap();
    view.table.delete(stream).unwrap();
    let result = view
        .write_data(own(c), name.into(), own(&value))
        .await
        .unwrap();
    view.finish(value).await.unwrap().unwrap();
    result
}

/// Another handle to the same resource, as a `borrow` argument is.
fn own<T: 'static>(resource: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(resource.rep())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A store that never answers: TCP connections are accepted, then ignored.
fn silent_s3(timeout_ms: u64) -> (Arc<Store>, std::net::TcpListener) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = BackendConfig {
        backend: Backend::S3,
        endpoint: Some(format!("http://{}", listener.local_addr().unwrap())),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        timeout_ms,
        ..BackendConfig::default()
    };
    (Arc::new(Store::new(&config).unwrap()), listener)
}

#[tokio::test]
async fn every_call_is_bounded_by_the_timeout() {
    let (store, _listener) = silent_s3(300);
    let started = std::time::Instant::now();
    let err = store.put("c", "o", Bytes::from("x")).await.unwrap_err();
    assert!(
        err.contains("did not answer within 300 ms") && err.contains("\"o\""),
        "{err}"
    );
    let err = store.container_created("c").await.unwrap_err();
    assert!(err.contains("did not answer"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn refused_names_never_reach_the_store() {
    // Any call that reached this store would hang until the timeout.
    let (store, _listener) = silent_s3(60_000);
    let blob = Granted {
        store,
        containers: ["transactions".to_owned()].into(),
    };
    let mut table = ResourceTable::new();
    let c = table
        .push(Container {
            name: "transactions".into(),
        })
        .unwrap();
    let mut view = BlobView {
        table: &mut table,
        blob: &blob,
    };
    let started = std::time::Instant::now();
    let err = write(&mut view, &c, "../../etc/passwd", b"x")
        .await
        .unwrap_err();
    assert!(
        err.starts_with("invalid object name") && err.contains(".."),
        "{err}"
    );
    let err = view
        .delete_objects(own(&c), vec!["fine".into(), "/abs".into()])
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("invalid object name \"/abs\""), "{err}");
    let err = view
        .create_container("other".into())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("not granted"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn grants_name_valid_containers() {
    let backing = local();
    let blobstore = super::Blobstore {
        store: backing.store.clone(),
    };
    let component: crate::config::ComponentConfig =
        toml::from_str("name = \"c\"\nwasm = \"c.wasm\"").unwrap();
    let prepare = |containers: &[&str]| {
        let grant = super::Grant {
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
