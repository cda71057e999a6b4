//! The embedded backend: a redb file in the state directory, so a host with
//! no Redis still has a persistent store that honours TTLs.
//!
//! Layout (two tables):
//! * `entries`: `(bucket, hash(key), key)` → `expires_at_ms (u64 BE, 0 =
//!   never) ++ value`. Ordering by a stable hash gives `list-keys` a `u64`
//!   cursor that survives concurrent writes: a key's position never moves,
//!   so every key present for the whole listing is seen exactly once.
//! * `expiries`: `(expires_at_ms, bucket, key)` → `()`, an index so that the
//!   periodic sweep touches only what has expired.
//! * ordered indexes (`keyvalue-index`): `index_entries` `(bucket, index,
//!   score, member)` → `()` is the order itself, so a page is one range
//!   scan (reversed for descending) from the cursor; `index_members`
//!   `(bucket, index, member)` → score finds an entry to move or remove it;
//!   `index_sizes` `(bucket, index)` → count keeps each index's size.
//!
//! An expired entry is absent to every read at once; it is physically removed
//! by the read that finds it (lazily), by any write to it, or by the sweep.
//! redb is blocking, so reads run on tokio's blocking pool and durable
//! writes go to one writer thread that commits them in groups (`commits`).
//! The file is opened on first use, not at start-up, so that `corral check` and
//! hosts whose components use no key-value never create or lock it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::FutureExt as _;
use redb::{Database, ReadableDatabase as _};

use super::backend::{Backend, BackendRange, Failure, KeyPage, Op};
use super::index::Changes;
use super::validate::{self, MAX_SCORE};
use commits::{Committer, now_ms};
use tables::{
    ENTRIES, Lookup, Write, decode, expiry, fail, index_count, index_range, index_score, live,
    open, read, read_many, read_one, sweep,
};

mod commits;
mod tables;

/// How often expired entries are swept when nothing reads them.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

pub struct EmbeddedBackend(Arc<Inner>);

struct Inner {
    path: PathBuf,
    sweep_interval: Duration,
    db: Mutex<Option<Opened>>,
}

/// The open database and its writer.
#[derive(Clone)]
struct Opened {
    db: Arc<Database>,
    committer: Arc<Committer>,
}

impl EmbeddedBackend {
    pub fn new(path: &Path, sweep_interval: Duration) -> Self {
        Self(Arc::new(Inner {
            path: path.to_owned(),
            sweep_interval,
            db: Mutex::new(None),
        }))
    }

    /// Runs `f` on the blocking pool with the open database.
    fn op<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, u64) -> Result<T, Failure> + Send + 'static,
    ) -> Op<T> {
        let inner = self.0.clone();
        async move {
            tokio::task::spawn_blocking(move || f(&inner.database()?.db, now_ms()))
                .await
                .map_err(|e| Failure(format!("embedded store task failed: {e}")))?
        }
        .boxed()
    }

    /// Commits `f` durably, grouped with concurrent writes (`commits`).
    fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Write<'_>, u64) -> Result<T, Failure> + Send + 'static,
    ) -> Op<T> {
        let inner = self.0.clone();
        async move {
            let opened = match inner.opened() {
                Some(opened) => opened,
                // Opening reads the file: not on a runtime thread.
                None => tokio::task::spawn_blocking(move || inner.database())
                    .await
                    .map_err(|e| Failure(format!("embedded store task failed: {e}")))??,
            };
            opened.committer.submit(f).await
        }
        .boxed()
    }

    /// How many entries the file holds, expired or not (for tests).
    #[cfg(test)]
    pub fn stored_entries(&self) -> Result<u64, Failure> {
        use redb::ReadableTableMetadata as _;
        let db = self.0.database()?.db;
        let txn = db.begin_read().map_err(fail)?;
        txn.open_table(ENTRIES).map_err(fail)?.len().map_err(fail)
    }
}

impl Inner {
    /// The database if it is open already.
    fn opened(&self) -> Option<Opened> {
        self.db.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The database, opened (and its tables created) on first use. A failure
    /// is not remembered: the next operation tries again.
    fn database(&self) -> Result<Opened, Failure> {
        let mut slot = self.db.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(opened) = slot.as_ref() {
            return Ok(opened.clone());
        }
        let db = open(&self.path).map_err(|e| {
            let message = format!(
                "cannot open the embedded store {}: {e}",
                self.path.display()
            );
            tracing::warn!("keyvalue: {message}");
            Failure(message)
        })?;
        let db = Arc::new(db);
        let committer = Committer::start(db.clone())
            .map_err(|e| Failure(format!("cannot start the embedded store's writer: {e}")))?;
        spawn_sweeper(Arc::downgrade(&db), self.sweep_interval);
        tracing::info!(path = %self.path.display(), "keyvalue: embedded store opened");
        let opened = Opened {
            db,
            committer: Arc::new(committer),
        };
        *slot = Some(opened.clone());
        Ok(opened)
    }
}

/// Sweeps on a plain thread that holds only a weak reference, so it ends by
/// itself once the backend is dropped.
fn spawn_sweeper(db: Weak<Database>, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("kv-sweep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(db) = db.upgrade() else { return };
                match sweep(&db, now_ms()) {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "keyvalue: swept expired entries"),
                    Err(e) => tracing::warn!(error = %e, "keyvalue: sweep failed"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "keyvalue: cannot start the expiry sweeper");
    }
}

impl Backend for EmbeddedBackend {
    fn describe(&self) -> String {
        format!("the embedded store {}", self.0.path.display())
    }

    fn get(&self, bucket: &str, key: &str) -> Op<Option<Vec<u8>>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.op(move |db, now| Ok(read_one(db, &bucket, &key, now)?.map(|(_, v)| v)))
    }

    fn set(&self, bucket: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Op<()> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.write(move |w, now| w.put(&bucket, &key, &value, expiry(now, ttl)))
    }

    fn set_if_absent(
        &self,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Op<bool> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.write(move |w, now| {
            if let Lookup::Live(..) = read(&w.entries, &bucket, &key, now)? {
                return Ok(false);
            }
            w.put(&bucket, &key, &value, expiry(now, ttl))?;
            Ok(true)
        })
    }

    fn delete(&self, bucket: &str, key: &str) -> Op<()> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.write(move |w, _| w.remove(&bucket, &key))
    }

    fn exists(&self, bucket: &str, key: &str) -> Op<bool> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.op(move |db, now| Ok(read_one(db, &bucket, &key, now)?.is_some()))
    }

    fn ttl(&self, bucket: &str, key: &str) -> Op<Option<Duration>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.op(move |db, now| {
            Ok(read_one(db, &bucket, &key, now)?
                .and_then(|(at, _)| (at != 0).then(|| Duration::from_millis(at - now))))
        })
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Op<u64> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.write(move |w, now| {
            let (at, current) = match read(&w.entries, &bucket, &key, now)? {
                Lookup::Live(at, value) => (at, validate::counter(&value)?),
                Lookup::Absent | Lookup::Expired => (0, 0),
            };
            let new = validate::add(current, delta)?;
            w.put(&bucket, &key, new.to_string().as_bytes(), at)?;
            validate::counter_result(new)
        })
    }

    fn get_many(&self, bucket: &str, keys: Vec<String>) -> Op<Vec<Option<Vec<u8>>>> {
        let bucket = bucket.to_owned();
        self.op(move |db, now| {
            Ok(read_many(db, &bucket, &keys, now)?
                .into_iter()
                .map(|l| match l {
                    Lookup::Live(_, value) => Some(value),
                    _ => None,
                })
                .collect())
        })
    }

    fn set_many(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Option<Duration>,
    ) -> Op<()> {
        let bucket = bucket.to_owned();
        self.write(move |w, now| {
            let expires = expiry(now, ttl);
            entries
                .iter()
                .try_for_each(|(k, v)| w.put(&bucket, k, v, expires))
        })
    }

    fn set_many_if_absent(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Option<Duration>,
    ) -> Op<Vec<bool>> {
        let bucket = bucket.to_owned();
        self.write(move |w, now| {
            let expires = expiry(now, ttl);
            // Reads inside the write transaction see its own earlier puts,
            // so a key given twice is set by its first entry only.
            entries
                .iter()
                .map(|(k, v)| {
                    if let Lookup::Live(..) = read(&w.entries, &bucket, k, now)? {
                        return Ok(false);
                    }
                    w.put(&bucket, k, v, expires)?;
                    Ok(true)
                })
                .collect()
        })
    }

    fn delete_many(&self, bucket: &str, keys: Vec<String>) -> Op<()> {
        let bucket = bucket.to_owned();
        self.write(move |w, _| keys.iter().try_for_each(|k| w.remove(&bucket, k)))
    }

    fn list_keys(&self, bucket: &str, cursor: u64, limit: usize) -> Op<KeyPage> {
        let bucket = bucket.to_owned();
        self.op(move |db, now| {
            let txn = db.begin_read().map_err(fail)?;
            let table = txn.open_table(ENTRIES).map_err(fail)?;
            let mut page = KeyPage::default();
            let mut last_hash = None;
            for row in table.range((bucket.as_str(), cursor, "")..).map_err(fail)? {
                let (k, v) = row.map_err(fail)?;
                let (b, h, key) = k.value();
                if b != bucket {
                    return Ok(page);
                }
                // A page ends between two hashes, never inside one, so the
                // cursor (the next hash) cannot skip a colliding key.
                if page.keys.len() >= limit && last_hash != Some(h) {
                    page.cursor = Some(h);
                    return Ok(page);
                }
                last_hash = Some(h);
                if live(decode(v.value()).0, now) {
                    page.keys.push(key.to_owned());
                }
            }
            Ok(page)
        })
    }

    fn index_apply(&self, bucket: &str, changes: Changes) -> Op<()> {
        let bucket = bucket.to_owned();
        self.write(move |w, _| {
            let b = bucket.as_str();
            for (key, value) in &changes.set {
                w.put(b, key, value, 0)?;
            }
            for key in &changes.delete {
                w.remove(b, key)?;
            }
            for (index, member, score) in &changes.add {
                w.index_add(b, index, member, *score)?;
            }
            for (index, member) in &changes.remove {
                w.index_remove(b, index, member)?;
            }
            Ok(())
        })
    }

    fn index_range(
        &self,
        bucket: &str,
        index: &str,
        range: BackendRange,
    ) -> Op<Vec<(String, i64)>> {
        let (bucket, index) = (bucket.to_owned(), index.to_owned());
        self.op(move |db, _| index_range(db, &bucket, &index, &range))
    }

    fn index_count(&self, bucket: &str, index: &str, ranges: Vec<(i64, i64)>) -> Op<Vec<u64>> {
        let (bucket, index) = (bucket.to_owned(), index.to_owned());
        self.op(move |db, _| index_count(db, &bucket, &index, &ranges, (-MAX_SCORE, MAX_SCORE)))
    }

    fn index_score(&self, bucket: &str, index: &str, member: &str) -> Op<Option<i64>> {
        let (bucket, index, member) = (bucket.to_owned(), index.to_owned(), member.to_owned());
        self.op(move |db, _| index_score(db, &bucket, &index, &member))
    }
}
