//! The WIT-facing layer (`BlobView`) as a component sees it: grants,
//! names, values and streams.

use bytes::Bytes;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::{Backing, names, silent_s3};
use crate::bindings::wasi::blobstore::blobstore::Host as _;
use crate::bindings::wasi::blobstore::container::{HostContainer as _, HostStreamObjectNames as _};
use crate::bindings::wasi::blobstore::types::{
    HostIncomingValue as _, HostOutgoingValue as _, ObjectId,
};
use crate::capabilities::blobstore::{BlobView, Container, Granted};

fn granted(b: &Backing, containers: &[&str]) -> Granted {
    Granted {
        store: b.store.clone(),
        containers: containers.iter().map(|c| c.to_string()).collect(),
    }
}

/// The WIT-facing layer: grants, names, values and streams, as a component
/// sees them.
pub(super) async fn component_view(b: &Backing) {
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
