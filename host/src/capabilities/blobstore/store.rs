//! The blobstore's backend: one `object_store` (S3/MinIO, or a local folder)
//! seen as containers of objects.
//!
//! Layout: container `c` is the key prefix `<key_prefix>c/` and object `o`
//! in it is the key `<key_prefix>c/o`. `create-container` writes an empty
//! marker object (`names::MARKER`) so that an empty container exists;
//! listings hide it. On S3 everything shares one bucket and the prefix is
//! the only wall between containers, which is why names are checked
//! (`names`) before they get here: every method assumes checked names.
//!
//! Object names may contain `/`. S3 keys are flat, but the local store makes
//! folders of them, so there an object cannot also be the folder of others
//! (`a` and `a/b`): the second write fails with the file system's error.
//!
//! Every call is bounded by `timeout_ms`, and every failure is a
//! [`BlobError`] naming the operation, container and object, because its
//! text is all a component gets (`wasi:blobstore` errors are strings).

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt as _};

pub use super::error::BlobError;
use super::names::MARKER;
use super::settings::{Backend, BlobstoreSettings};

/// The most bytes one read or write may move: values pass through the
/// host's memory (not the component's), so they are bounded here.
pub const MAX_VALUE_BYTES: u64 = 64 << 20;

/// Describes the operation, for error messages (built only on failure).
type What<'a> = &'a (dyn Fn() -> String + Send + Sync);

/// A container's object names, fetched from the store as they are read.
pub type Names = BoxStream<'static, Result<String, BlobError>>;

pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    backend: &'static str,
    key_prefix: String,
    timeout: Duration,
    /// Containers known to exist: opening one of them (which every
    /// `get-container` does, typically once per request or message) costs
    /// no round trip. Only this host's own `delete-container` forgets one;
    /// a container deleted behind its back still takes writes, as a prefix.
    known: Mutex<HashSet<String>>,
}

impl BlobStore {
    /// Builds the configured backend; the local one creates its folder.
    pub fn new(config: &BlobstoreSettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let (inner, backend): (Arc<dyn ObjectStore>, _) = match config.backend {
            Backend::Local => {
                std::fs::create_dir_all(&config.path).map_err(|e| {
                    anyhow::anyhow!("blobstore: cannot create {}: {e}", config.path.display())
                })?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&config.path)?
                    // Deleting a container leaves no empty folders behind.
                    .with_automatic_cleanup(true)
                    .with_fsync(config.fsync);
                (Arc::new(local), "local")
            }
            Backend::S3 => (Arc::new(s3(config, timeout)?), "s3"),
        };
        // A prefix that does not make valid keys would fail every call later.
        let probe = format!("{}c/o", config.key_prefix);
        if Path::parse(&probe).map(String::from).ok() != Some(probe) {
            anyhow::bail!(
                "blobstore.key_prefix {:?}: must not start with \"/\" or contain \"//\", \".\" or \"..\" parts or control characters",
                config.key_prefix
            );
        }
        Ok(Self {
            inner,
            backend,
            key_prefix: config.key_prefix.clone(),
            timeout,
            known: Mutex::default(),
        })
    }

    /// The folder of a container (keys under it are its objects).
    fn folder(&self, container: &str) -> Path {
        Path::parse(format!("{}{container}", self.key_prefix))
            .expect("checked names make valid keys")
    }

    /// The key of an object. `parse` (unlike `from`) keeps the name byte for
    /// byte, so listing gives back exactly the names that were written.
    fn key(&self, container: &str, object: &str) -> Path {
        Path::parse(format!("{}{container}/{object}", self.key_prefix))
            .expect("checked names make valid keys")
    }

    /// Runs a store call within the time limit; only a timeout is turned
    /// into the final error here.
    async fn timed<T>(
        &self,
        what: What<'_>,
        call: impl Future<Output = object_store::Result<T>>,
    ) -> Result<object_store::Result<T>, BlobError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| self.too_slow(what))
    }

    fn too_slow(&self, what: What<'_>) -> BlobError {
        BlobError::Timeout {
            what: what(),
            backend: self.backend,
            ms: self.timeout.as_millis(),
        }
    }

    fn failed(&self, what: What<'_>, error: object_store::Error) -> BlobError {
        match error {
            object_store::Error::NotFound { .. } => BlobError::NotFound { what: what() },
            source => BlobError::Store {
                what: what(),
                backend: self.backend,
                source,
            },
        }
    }

    /// Runs a store call within the time limit, with a readable error.
    async fn run<T>(
        &self,
        what: What<'_>,
        call: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, BlobError> {
        self.timed(what, call)
            .await?
            .map_err(|e| self.failed(what, e))
    }

    /// An object's metadata, `None` where it does not exist.
    async fn head_key(&self, key: &Path, what: What<'_>) -> Result<Option<ObjectMeta>, BlobError> {
        match self.timed(what, self.inner.head(key)).await? {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(what, e)),
        }
    }

    /// Creates a container; creating one that exists leaves it as it is.
    pub async fn create_container(&self, container: &str) -> Result<(), BlobError> {
        let what = || format!("creating container {container:?}");
        let marker = self.key(container, MARKER);
        if self.head_key(&marker, &what).await?.is_none() {
            self.run(&what, self.inner.put(&marker, Bytes::new().into()))
                .await?;
        }
        Ok(())
    }

    /// Whether a container exists, from memory once it was seen to.
    pub async fn container_exists(&self, container: &str) -> Result<bool, BlobError> {
        if self.known.lock().contains(container) {
            return Ok(true);
        }
        let exists = self.container_created(container).await?.is_some();
        if exists {
            self.known.lock().insert(container.to_owned());
        }
        Ok(exists)
    }

    /// When a container was created (Unix seconds), or `None` if it does not
    /// exist. A folder of objects put there by other means (say, uploaded
    /// to MinIO by hand) counts as a container too.
    pub async fn container_created(&self, container: &str) -> Result<Option<u64>, BlobError> {
        let what = || format!("looking up container {container:?}");
        if let Some(meta) = self.head_key(&self.key(container, MARKER), &what).await? {
            return Ok(Some(seconds(&meta)));
        }
        let mut objects = self.inner.list(Some(&self.folder(container)));
        let first = self.run(&what, objects.try_next()).await?;
        Ok(first.map(|meta| seconds(&meta)))
    }

    /// Deletes a container with every object in it.
    pub async fn delete_container(&self, container: &str) -> Result<(), BlobError> {
        self.known.lock().remove(container);
        self.delete_all(container, true).await
    }

    /// Deletes every object of a container, keeping the container.
    pub async fn clear(&self, container: &str) -> Result<(), BlobError> {
        self.delete_all(container, false).await
    }

    async fn delete_all(&self, container: &str, with_marker: bool) -> Result<(), BlobError> {
        let what = || format!("deleting the objects of container {container:?}");
        let marker = self.key(container, MARKER);
        let keys = self
            .inner
            .list(Some(&self.folder(container)))
            .map_ok(|meta| meta.location)
            .try_filter(move |key| std::future::ready(with_marker || *key != marker))
            .boxed();
        let deleted = self.inner.delete_stream(keys).or_else(ignore_missing);
        self.run(&what, deleted.try_for_each(|_| async { Ok(()) }))
            .await
    }

    /// Writes a whole object. Both stores write atomically (an S3 PUT; a
    /// temporary file renamed into place), so no reader sees half of it.
    pub async fn put(&self, container: &str, object: &str, data: Bytes) -> Result<(), BlobError> {
        let what = || format!("writing {object:?} to container {container:?}");
        let key = self.key(container, object);
        self.run(&what, self.inner.put(&key, data.into()))
            .await
            .map(drop)
    }

    /// Reads bytes `start..=end` of an object; an `end` past the object's
    /// end reads to its end.
    pub async fn get(
        &self,
        container: &str,
        object: &str,
        start: u64,
        end: u64,
    ) -> Result<Bytes, BlobError> {
        let what = || format!("reading {object:?} from container {container:?}");
        if start > end {
            return Err(BlobError::Invalid {
                what: what(),
                problem: format!("start {start} is after end {end}"),
            });
        }
        let key = self.key(container, object);
        // The whole object is asked for without a range, so that empty
        // objects read fine too.
        let range =
            (start > 0 || end < u64::MAX).then(|| GetRange::Bounded(start..end.saturating_add(1)));
        let ranged = range.is_some();
        let result = match self
            .timed(
                &what,
                self.inner
                    .get_opts(&key, GetOptions::new().with_range(range)),
            )
            .await?
        {
            Ok(result) => result,
            Err(e @ object_store::Error::NotFound { .. }) => return Err(self.failed(&what, e)),
            Err(e) if ranged => return self.explain_range(&key, start, e, &what).await,
            Err(e) => return Err(self.failed(&what, e)),
        };
        let len = result.range.end - result.range.start;
        if len > MAX_VALUE_BYTES {
            return Err(BlobError::Invalid {
                what: what(),
                problem: format!(
                    "{len} bytes is more than one read may return ({MAX_VALUE_BYTES}); read it in ranges"
                ),
            });
        }
        self.run(&what, result.bytes()).await
    }

    /// A ranged read failed: most likely the range starts past the end,
    /// which stores report in their own words. Say it plainly (or read the
    /// empty object that any range of it is).
    async fn explain_range(
        &self,
        key: &Path,
        start: u64,
        error: object_store::Error,
        what: What<'_>,
    ) -> Result<Bytes, BlobError> {
        match self.head_key(key, what).await? {
            Some(meta) if meta.size == 0 => Ok(Bytes::new()),
            Some(meta) if start >= meta.size => Err(BlobError::Invalid {
                what: what(),
                problem: format!(
                    "start {start} is past the end (the object has {} bytes)",
                    meta.size
                ),
            }),
            _ => Err(self.failed(what, error)),
        }
    }

    /// An object's metadata, `None` if it does not exist.
    pub async fn head(
        &self,
        container: &str,
        object: &str,
    ) -> Result<Option<ObjectMeta>, BlobError> {
        let what = || format!("looking up {object:?} in container {container:?}");
        self.head_key(&self.key(container, object), &what).await
    }

    /// A container's object names, fetched as they are read.
    pub fn list(&self, container: &str) -> Names {
        let folder = self.folder(container);
        let strip = format!("{folder}/");
        let (backend, container) = (self.backend, container.to_owned());
        self.inner
            .list(Some(&folder))
            .map(move |item| match item {
                Ok(meta) => Ok(meta
                    .location
                    .as_ref()
                    .strip_prefix(&strip)
                    .map(str::to_owned)),
                Err(source) => Err(BlobError::Store {
                    what: format!("listing container {container:?}"),
                    backend,
                    source,
                }),
            })
            .try_filter_map(|name| std::future::ready(Ok(name.filter(|n| n != MARKER))))
            .boxed()
    }

    /// The next name of a listing, within the time limit.
    pub async fn next_name(&self, names: &mut Names) -> Result<Option<String>, BlobError> {
        let what = || "listing a container".to_owned();
        tokio::time::timeout(self.timeout, names.try_next())
            .await
            .unwrap_or_else(|_| Err(self.too_slow(&what)))
    }

    /// Deletes objects; missing ones are not an error.
    pub async fn delete(&self, container: &str, objects: &[String]) -> Result<(), BlobError> {
        let what = || match objects {
            [one] => format!("deleting {one:?} from container {container:?}"),
            many => format!(
                "deleting {} objects from container {container:?}",
                many.len()
            ),
        };
        let keys: Vec<_> = objects.iter().map(|o| Ok(self.key(container, o))).collect();
        let deleted = self
            .inner
            .delete_stream(futures::stream::iter(keys).boxed())
            .or_else(ignore_missing);
        self.run(&what, deleted.try_for_each(|_| async { Ok(()) }))
            .await
    }

    /// Copies an object (`(container, object)` pairs) over the destination;
    /// with `remove_source` it is a move.
    pub async fn copy(
        &self,
        src: (&str, &str),
        dest: (&str, &str),
        remove_source: bool,
    ) -> Result<(), BlobError> {
        let verb = if remove_source { "moving" } else { "copying" };
        let what = || {
            format!(
                "{verb} {:?} of container {:?} to {:?} of container {:?}",
                src.1, src.0, dest.1, dest.0
            )
        };
        let (from, to) = (self.key(src.0, src.1), self.key(dest.0, dest.1));
        if remove_source {
            self.run(&what, self.inner.rename(&from, &to)).await
        } else {
            self.run(&what, self.inner.copy(&from, &to)).await
        }
    }
}

/// S3 or MinIO: one bucket. The operation's time limit is `BlobStore::timed`'s;
/// the client's own request timeout is set past it so that a slow store
/// gets the one clear "did not answer within" error, and retries (of
/// failed requests) stop when the limit would be reached anyway.
fn s3(
    config: &BlobstoreSettings,
    timeout: Duration,
) -> anyhow::Result<object_store::aws::AmazonS3> {
    let client = object_store::ClientOptions::new()
        .with_timeout(timeout * 2)
        .with_connect_timeout(timeout.min(Duration::from_secs(5)));
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_client_options(client)
        .with_retry(object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: timeout,
            backoff: Default::default(),
        });
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(id) = &config.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &config.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    builder.build().map_err(|e| {
        anyhow::anyhow!(
            "blobstore: cannot set up S3 bucket {:?}: {e}",
            config.bucket
        )
    })
}

pub fn seconds(meta: &ObjectMeta) -> u64 {
    meta.last_modified.timestamp().max(0) as u64
}

/// Deleting what is already gone succeeds (the local store says NotFound).
async fn ignore_missing(error: object_store::Error) -> object_store::Result<Path> {
    match error {
        object_store::Error::NotFound { path, .. } => Ok(Path::from(path)),
        e => Err(e),
    }
}
