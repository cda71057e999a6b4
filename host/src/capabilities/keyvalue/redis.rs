//! The Redis backend: one multiplexed `ConnectionManager` for the whole host.
//!
//! Keys are `<key_prefix><bucket>:<key>`; bucket names cannot contain ':'
//! or glob characters (see `validate`), so prefixes of different buckets
//! never overlap. The manager is created on first use, not at start-up: the
//! host must come up and serve its other components while Redis is down,
//! and each operation then fails on its own, quickly, with a message that
//! says Redis is unreachable. It reconnects by itself once Redis is back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Value};

use super::backend::{Backend, Failure, KeyPage, Op};
use super::validate;

/// The backend as shared by every instance.
pub struct RedisBackend(Arc<Inner>);

struct Inner {
    client: Client,
    prefix: String,
    timeout: Duration,
    manager: Mutex<Option<ConnectionManager>>,
}

impl RedisBackend {
    /// Parses `url` (a malformed URL is a start-up error) without connecting.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = Client::open(url).map_err(|e| anyhow::anyhow!("keyvalue.url: {e}"))?;
        Ok(Self(Arc::new(Inner {
            client,
            prefix: prefix.to_owned(),
            timeout,
            manager: Mutex::new(None),
        })))
    }

    /// Runs `f` with a connection, mapping errors to [`Failure`]s.
    fn op<T, F, Fut>(&self, f: F) -> Op<T>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, OpError>> + Send + 'static,
    {
        let inner = self.0.clone();
        async move {
            let connection = inner.connection()?;
            f(connection).await.map_err(|e| match e {
                OpError::Redis(e) => inner.failure(e),
                OpError::Domain(f) => f,
            })
        }
        .boxed()
    }

    /// `entries` with their keys made full (see [`Self::full_key`]).
    fn full_entries(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Vec<(String, Vec<u8>)> {
        entries
            .into_iter()
            .map(|(k, v)| (self.full_key(bucket, &k), v))
            .collect()
    }

    fn full_key(&self, bucket: &str, key: &str) -> String {
        format!("{}{bucket}:{key}", self.0.prefix)
    }
}

impl Inner {
    /// The shared manager, created lazily (it needs a running tokio runtime,
    /// which every operation has but `KeyValue::new` may not).
    fn connection(&self) -> Result<ConnectionManager, Failure> {
        let mut slot = self.manager.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        // Few, short retries: an operation waiting on a reconnect is bounded
        // by `timeout` anyway, and the next operation starts a new attempt.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.failure(e))?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    fn failure(&self, e: RedisError) -> Failure {
        let addr = self.client.get_connection_info().addr().to_string();
        if e.is_connection_refusal() || e.is_io_error() || e.is_timeout() {
            Failure(format!("redis at {addr} is unreachable: {e}"))
        } else {
            Failure(format!("redis at {addr}: {e}"))
        }
    }
}

/// Either Redis failed or the data was not what the operation needs.
enum OpError {
    Redis(RedisError),
    Domain(Failure),
}

impl From<RedisError> for OpError {
    fn from(e: RedisError) -> Self {
        Self::Redis(e)
    }
}

impl From<Failure> for OpError {
    fn from(e: Failure) -> Self {
        Self::Domain(e)
    }
}

/// Escapes `*?[]\` so that `text` matches itself in a `SCAN MATCH` pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Keys per command inside a batch pipeline: big batches go out as several
/// commands in one round trip instead of one huge command.
const CHUNK: usize = 100;

impl Backend for RedisBackend {
    fn describe(&self) -> String {
        format!("redis at {}", self.0.client.get_connection_info().addr())
    }

    fn get(&self, bucket: &str, key: &str) -> Op<Option<Vec<u8>>> {
        let key = self.full_key(bucket, key);
        self.op(
            move |mut c| async move { Ok(redis::cmd("GET").arg(key).query_async(&mut c).await?) },
        )
    }

    fn set(&self, bucket: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Op<()> {
        let key = self.full_key(bucket, key);
        self.op(move |mut c| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ttl.as_millis() as u64);
            }
            cmd.exec_async(&mut c).await?;
            Ok(())
        })
    }

    fn set_if_absent(
        &self,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Op<bool> {
        let key = self.full_key(bucket, key);
        self.op(move |mut c| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value).arg("NX");
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ttl.as_millis() as u64);
            }
            // `OK` when set, nil when the key already existed.
            let reply: Value = cmd.query_async(&mut c).await?;
            Ok(!matches!(reply, Value::Nil))
        })
    }

    fn delete(&self, bucket: &str, key: &str) -> Op<()> {
        let key = self.full_key(bucket, key);
        self.op(move |mut c| async move {
            redis::cmd("DEL").arg(key).exec_async(&mut c).await?;
            Ok(())
        })
    }

    fn exists(&self, bucket: &str, key: &str) -> Op<bool> {
        let key = self.full_key(bucket, key);
        self.op(move |mut c| async move {
            let n: i64 = redis::cmd("EXISTS").arg(key).query_async(&mut c).await?;
            Ok(n > 0)
        })
    }

    fn ttl(&self, bucket: &str, key: &str) -> Op<Option<Duration>> {
        let key = self.full_key(bucket, key);
        self.op(move |mut c| async move {
            // -2: no such key, -1: no expiry.
            let ms: i64 = redis::cmd("PTTL").arg(key).query_async(&mut c).await?;
            Ok((ms >= 0).then(|| Duration::from_millis(ms as u64)))
        })
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> Op<u64> {
        let key = self.full_key(bucket, key);
        self.op(move |mut c| async move {
            let value: i64 = redis::cmd("INCRBY")
                .arg(key)
                .arg(delta as i64)
                .query_async(&mut c)
                .await?;
            Ok(validate::counter_result(value)?)
        })
    }

    fn get_many(&self, bucket: &str, keys: Vec<String>) -> Op<Vec<Option<Vec<u8>>>> {
        let keys: Vec<String> = keys.iter().map(|k| self.full_key(bucket, k)).collect();
        self.op(
            move |mut c| async move { Ok(redis::cmd("MGET").arg(keys).query_async(&mut c).await?) },
        )
    }

    fn set_many(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Option<Duration>,
    ) -> Op<()> {
        let entries = self.full_entries(bucket, entries);
        self.op(move |mut c| async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            match ttl {
                // MSET cannot set expiries: one SET PX each, still one
                // round trip.
                Some(ttl) => {
                    let ms = ttl.as_millis() as u64;
                    for (key, value) in &entries {
                        pipe.cmd("SET")
                            .arg(key)
                            .arg(value)
                            .arg("PX")
                            .arg(ms)
                            .ignore();
                    }
                }
                None => {
                    for chunk in entries.chunks(CHUNK) {
                        pipe.cmd("MSET").arg(chunk).ignore();
                    }
                }
            }
            pipe.exec_async(&mut c).await?;
            Ok(())
        })
    }

    fn set_many_if_absent(
        &self,
        bucket: &str,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Option<Duration>,
    ) -> Op<Vec<bool>> {
        let entries = self.full_entries(bucket, entries);
        self.op(move |mut c| async move {
            let mut pipe = redis::pipe();
            for (key, value) in &entries {
                let cmd = pipe.cmd("SET").arg(key).arg(value).arg("NX");
                if let Some(ttl) = ttl {
                    cmd.arg("PX").arg(ttl.as_millis() as u64);
                }
            }
            // One reply per SET, in order: `OK` when set, nil when not.
            let replies: Vec<Value> = pipe.query_async(&mut c).await?;
            Ok(replies.iter().map(|r| !matches!(r, Value::Nil)).collect())
        })
    }

    fn delete_many(&self, bucket: &str, keys: Vec<String>) -> Op<()> {
        let keys: Vec<String> = keys.iter().map(|k| self.full_key(bucket, k)).collect();
        self.op(move |mut c| async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for chunk in keys.chunks(CHUNK) {
                pipe.cmd("DEL").arg(chunk).ignore();
            }
            pipe.exec_async(&mut c).await?;
            Ok(())
        })
    }

    fn list_keys(&self, bucket: &str, cursor: u64, limit: usize) -> Op<KeyPage> {
        let prefix = self.full_key(bucket, "");
        let budget = self.0.timeout / 2;
        self.op(move |mut c| async move {
            let pattern = format!("{}*", glob_escape(&prefix));
            // SCAN may answer an empty batch with more to come (it examines
            // `COUNT` slots of the whole keyspace, not `COUNT` matches), so
            // keep going until there is something to return, for at most
            // half the deadline: then an empty page with a cursor is still a
            // valid answer, where running into the deadline would be an error.
            let mut cursor = cursor;
            let mut keys = Vec::new();
            let started = std::time::Instant::now();
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .cursor_arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut c)
                    .await?;
                keys.extend(
                    batch
                        .into_iter()
                        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)),
                );
                cursor = next;
                if cursor == 0 || !keys.is_empty() || started.elapsed() > budget {
                    break;
                }
            }
            Ok(KeyPage {
                keys,
                cursor: (cursor != 0).then_some(cursor),
            })
        })
    }
}
