//! The storage contract the two key-value backends implement, and the
//! [`KeyValueStore`] in front of them that every caller goes through.
//!
//! The split keeps the rules in one place: [`KeyValueStore`] validates keys, TTLs
//! and batch sizes and bounds every operation by `timeout_ms`, so a backend
//! only stores and loads. Backends take owned arguments and return `'static`
//! boxed futures: that keeps the trait object-safe (one `Arc<dyn Backend>`
//! chosen at start-up) and lets the timeout simply drop a future that hangs.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::index::{Changes, Position, RangePage};
use super::validate;

/// A failed operation. Its message reaches the component as
/// `error::other(message)`, so it names what went wrong in plain words.
///
/// wasi:keyvalue's error type has no case for "the backend is down, try
/// later", which a component must tell apart from a bad argument (503 and
/// a paused queue, not 500 or a dead letter). Such a message starts with
/// [`UNAVAILABLE_PREFIX`]; the SDK reads it (`kv::Error::is_unavailable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

/// How the message of a failure of the backend itself (unreachable, or no
/// answer in time) begins.
pub const UNAVAILABLE_PREFIX: &str = "unavailable: ";

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The backend could not be reached or did not answer in time.
    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        Self(format!("{UNAVAILABLE_PREFIX}{message}"))
    }

    pub fn is_unavailable(&self) -> bool {
        self.0.starts_with(UNAVAILABLE_PREFIX)
    }

    /// The same failure with what was being done in front of its message
    /// (after the unavailable mark, which stays first).
    fn during(self, what: &str) -> Self {
        match self.0.strip_prefix(UNAVAILABLE_PREFIX) {
            Some(rest) => Self::unavailable(format!("keyvalue {what}: {rest}")),
            None => Self(format!("keyvalue {what}: {}", self.0)),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// A backend operation in flight.
pub type Op<T> = BoxFuture<'static, Result<T, Failure>>;

/// One page of `list-keys`: keys without any prefix, and where to go on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    pub keys: Vec<String>,
    /// `None` once the listing is complete.
    pub cursor: Option<u64>,
}

/// A key-value store partitioned into buckets. Bucket names and keys arrive
/// validated; a value without a TTL never expires, and writing a key without
/// a TTL clears any expiry it had (Redis `SET` semantics).
pub trait Backend: Send + Sync + 'static {
    /// What the store is, for log lines and error messages.
    fn describe(&self) -> String;
    fn get(&self, bucket: &str, key: &str) -> Op<Option<Vec<u8>>>;
    fn set(&self, bucket: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Op<()>;
    /// Stores only when `key` is absent (or expired); whether it stored.
    fn set_if_absent(
        &self,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Op<bool>;
    fn delete(&self, bucket: &str, key: &str) -> Op<()>;
    fn exists(&self, bucket: &str, key: &str) -> Op<bool>;
    /// Time left before `key` expires; `None` if absent or without expiry.
    fn ttl(&self, bucket: &str, key: &str) -> Op<Option<Duration>>;
    /// Adds `delta` to the decimal integer stored at `key` (0 if absent),
    /// atomically, keeping its expiry; returns the new value.
    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Op<u64>;
    fn get_many(&self, bucket: &str, keys: Vec<String>) -> Op<Vec<Option<Vec<u8>>>>;
    /// Sets every entry, each with `ttl` when given (without: no expiry).
    fn set_many(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Option<Duration>,
    ) -> Op<()>;
    /// [`Backend::set_if_absent`] for each entry, in order, in one round
    /// trip: whether each entry was stored.
    fn set_many_if_absent(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Option<Duration>,
    ) -> Op<Vec<bool>>;
    fn delete_many(&self, bucket: &str, keys: Vec<String>) -> Op<()>;
    /// About `limit` keys from `cursor` (0 to start). Every key present for
    /// the whole listing is returned at least once.
    fn list_keys(&self, bucket: &str, cursor: u64, limit: usize) -> Op<KeyPage>;

    // Ordered indexes (`corral:platform/keyvalue-index`; see `index`).
    // Scores, bounds and positions arrive within +-`MAX_SCORE`, a range's
    // `min <= max`, and its `after` within `[min, max]`.

    /// Applies `changes` in their documented order, atomically where the
    /// backend can (see the WIT).
    fn index_apply(&self, bucket: &str, changes: Changes) -> Op<()>;
    /// Up to `limit` entries `(member, score)` of `index` with a score in
    /// `[min, max]`, in `(score, member)` order (reversed when
    /// `descending`), strictly after `after` when given.
    fn index_range(&self, bucket: &str, index: &str, range: BackendRange)
    -> Op<Vec<(String, i64)>>;
    /// How many entries of `index` fall in each inclusive `(min, max)`.
    fn index_count(&self, bucket: &str, index: &str, ranges: Vec<(i64, i64)>) -> Op<Vec<u64>>;
    fn index_score(&self, bucket: &str, index: &str, member: &str) -> Op<Option<i64>>;
}

/// A range as the backends see it: bounds inclusive and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRange {
    pub min: i64,
    pub max: i64,
    pub descending: bool,
    pub after: Option<Position>,
    pub limit: usize,
}

/// The page a [`BackendRange`] of `limit + 1` entries makes: `limit`
/// entries, and where to go on if there was one more.
pub fn page_of(mut entries: Vec<(String, i64)>, limit: usize) -> RangePage {
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|(member, score)| Position {
            score: *score,
            member: member.clone(),
        })
    } else {
        None
    };
    RangePage { entries, next }
}

/// How many keys one `list-keys` call returns, about.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// The backend behind its rules: validation and a deadline on every call.
#[derive(Clone)]
pub struct KeyValueStore {
    backend: Arc<dyn Backend>,
    timeout: Duration,
    page_size: usize,
}

impl KeyValueStore {
    pub fn new(backend: Arc<dyn Backend>, timeout: Duration) -> Self {
        Self {
            backend,
            timeout,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// With a small page size, so that tests see several pages.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    pub(super) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Awaits `op` for at most `timeout`: a store that does not answer must
    /// give the component an error, never hold its request hostage.
    pub(super) async fn run<T>(&self, what: &str, op: Op<T>) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result.map_err(|e| e.during(what)),
            Err(_) => Err(Failure::unavailable(format!(
                "keyvalue {what}: {} did not answer within {} ms",
                self.backend.describe(),
                self.timeout.as_millis()
            ))),
        }
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        validate::key(key)?;
        self.run("get", self.backend.get(bucket, key)).await
    }

    pub async fn set(
        &self,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), Failure> {
        validate::key(key)?;
        validate::value(&value)?;
        let ttl = ttl_ms.map(validate::ttl).transpose()?;
        self.run("set", self.backend.set(bucket, key, value, ttl))
            .await
    }

    pub async fn set_if_absent(
        &self,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, Failure> {
        validate::key(key)?;
        validate::value(&value)?;
        let ttl = ttl_ms.map(validate::ttl).transpose()?;
        let op = self.backend.set_if_absent(bucket, key, value, ttl);
        self.run("set-if-absent", op).await
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), Failure> {
        validate::key(key)?;
        self.run("delete", self.backend.delete(bucket, key)).await
    }

    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, Failure> {
        validate::key(key)?;
        self.run("exists", self.backend.exists(bucket, key)).await
    }

    /// Milliseconds left; a key about to expire reports at least 1.
    pub async fn ttl(&self, bucket: &str, key: &str) -> Result<Option<u64>, Failure> {
        validate::key(key)?;
        let left = self.run("ttl", self.backend.ttl(bucket, key)).await?;
        Ok(left.map(|d| (d.as_millis() as u64).max(1)))
    }

    pub async fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, Failure> {
        validate::key(key)?;
        validate::delta(delta)?;
        self.run("increment", self.backend.increment(bucket, key, delta))
            .await
    }

    pub async fn get_many(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, Failure> {
        validate::batch(keys.len())?;
        keys.iter().try_for_each(|k| validate::key(k))?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Each distinct key is read once: a list of one key repeated would
        // otherwise have the backend send (and the host hold) its value
        // once per repetition.
        let mut unique: Vec<String> = Vec::with_capacity(keys.len());
        let mut slot = std::collections::HashMap::with_capacity(keys.len());
        let positions: Vec<usize> = keys
            .iter()
            .map(|key| {
                *slot.entry(key.as_str()).or_insert_with(|| {
                    unique.push(key.clone());
                    unique.len() - 1
                })
            })
            .collect();
        let values = self
            .run("get-many", self.backend.get_many(bucket, unique))
            .await?;
        // The answer copies a value per requested key: bounded, so that
        // repetitions cannot multiply host memory.
        let bytes: usize = positions
            .iter()
            .map(|&p| values[p].as_ref().map_or(0, Vec::len))
            .sum();
        if bytes > validate::MAX_APPLY_BYTES {
            return Err(Failure(format!(
                "get-many would answer {bytes} bytes of values; the limit is {} per call: ask for fewer keys",
                validate::MAX_APPLY_BYTES
            )));
        }
        Ok(keys
            .into_iter()
            .zip(positions)
            .map(|(key, p)| values[p].clone().map(|v| (key, v)))
            .collect())
    }

    pub async fn set_many(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Result<(), Failure> {
        let ttl = validate_entries(&entries, ttl_ms)?;
        if entries.is_empty() {
            return Ok(());
        }
        self.run("set-many", self.backend.set_many(bucket, entries, ttl))
            .await
    }

    pub async fn set_many_if_absent(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Result<Vec<bool>, Failure> {
        let ttl = validate_entries(&entries, ttl_ms)?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let op = self.backend.set_many_if_absent(bucket, entries, ttl);
        self.run("set-many-if-absent", op).await
    }

    pub async fn delete_many(&self, bucket: &str, keys: Vec<String>) -> Result<(), Failure> {
        validate::batch(keys.len())?;
        keys.iter().try_for_each(|k| validate::key(k))?;
        if keys.is_empty() {
            return Ok(());
        }
        self.run("delete-many", self.backend.delete_many(bucket, keys))
            .await
    }

    pub async fn list_keys(&self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, Failure> {
        let op = self
            .backend
            .list_keys(bucket, cursor.unwrap_or(0), self.page_size);
        self.run("list-keys", op).await
    }
}

/// Checks a batch write: its size, each key and value, and the TTL.
fn validate_entries(
    entries: &[(String, Vec<u8>)],
    ttl_ms: Option<u64>,
) -> Result<Option<Duration>, Failure> {
    let ttl = ttl_ms.map(validate::ttl).transpose()?;
    validate::batch(entries.len())?;
    for (key, value) in entries {
        validate::key(key)?;
        validate::value(value)?;
    }
    Ok(ttl)
}
