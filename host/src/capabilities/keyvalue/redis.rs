//! The Redis backend: one multiplexed `ConnectionManager` for the whole host.
//!
//! Keys are `<key_prefix><bucket>:<key>`; bucket names cannot contain ':'
//! or glob characters (see `validate`), so prefixes of different buckets
//! never overlap. An ordered index is a sorted set at
//! `<key_prefix><bucket>#<index>`: '#' cannot be in a bucket name either,
//! so an index never meets a key, nor another bucket's index, and `SCAN`
//! for a bucket's keys never lists it. The manager is created on first use, not at start-up: the
//! host must come up and serve its other components while Redis is down,
//! and each operation then fails on its own, quickly, with a message that
//! says Redis is unreachable. It reconnects by itself once Redis is back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Value};

use super::backend::{Backend, BackendRange, Failure, KeyPage, Op};
use super::index::Changes;
use super::validate;

/// The backend as shared by every instance.
pub struct RedisBackend(Arc<Inner>);

struct Inner {
    client: Client,
    prefix: String,
    timeout: Duration,
    manager: Mutex<Option<ConnectionManager>>,
    /// The SHA1 of [`RANGE_SCRIPT`] once Redis has loaded it.
    range_sha: Mutex<Option<String>>,
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
            range_sha: Mutex::new(None),
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

    fn index_key(&self, bucket: &str, index: &str) -> String {
        format!("{}{bucket}#{index}", self.0.prefix)
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
            Failure::unavailable(format!("redis at {addr} is unreachable: {e}"))
        } else {
            Failure(format!("redis at {addr}: {e}"))
        }
    }
}

/// One page of an index in `(score, member)` order, computed in Redis so
/// that a cursor costs no extra round trip and ties are exact.
///
/// Ranks do the work: a position's rank is the number of entries before it
/// (`ZCOUNT` below its score, plus the members of its score that sort
/// before it, found by a binary search over that score's ranks, each probe
/// a `ZRANGE i i`). The page is then one `ZRANGE` by rank, cut where the
/// scores leave `[min, max]`. Every step is logarithmic, however many
/// entries share a score. Members compare by bytes, as Redis orders them
/// (Lua's `<` follows the locale). Scores go to Redis as the strings they
/// came as: Lua would print a large number as `9.007e+15`.
///
/// KEYS[1]: the sorted set. ARGV: min, max, descending (1/0), limit,
/// has-cursor (1/0), cursor score, cursor member. Returns
/// `[member, score, member, score, ...]`.
const RANGE_SCRIPT: &str = r"
local key = KEYS[1]
local min, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local descending, limit = ARGV[3] == '1', tonumber(ARGV[4])
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
-- entries before (score, member): after it too when `inclusive`
local function rank(score, member, inclusive)
  local first = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local lo, hi = 0, redis.call('ZCOUNT', key, score, score)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local probe = redis.call('ZRANGE', key, first + mid, first + mid)[1]
    if less(probe, member) or (inclusive and probe == member) then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return first + lo
end
local out = {}
if not descending then
  local start
  if ARGV[5] == '1' then
    start = rank(ARGV[6], ARGV[7], true)
  else
    start = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[1])
  end
  local got = redis.call('ZRANGE', key, start, start + limit - 1, 'WITHSCORES')
  for i = 1, #got, 2 do
    if tonumber(got[i + 1]) > max then break end
    out[#out + 1] = got[i]
    out[#out + 1] = got[i + 1]
  end
else
  local stop
  if ARGV[5] == '1' then
    stop = rank(ARGV[6], ARGV[7], false)
  else
    stop = redis.call('ZCOUNT', key, '-inf', ARGV[2])
  end
  if stop == 0 then return out end
  local got = redis.call('ZRANGE', key, math.max(stop - limit, 0), stop - 1, 'WITHSCORES')
  for i = #got - 1, 1, -2 do
    if tonumber(got[i + 1]) < min then break end
    out[#out + 1] = got[i]
    out[#out + 1] = got[i + 1]
  end
end
return out
";

/// Runs [`RANGE_SCRIPT`] by its SHA1 (loading it first, and again after
/// Redis forgot it: a restart, `SCRIPT FLUSH`).
async fn run_range_script(
    inner: &Inner,
    c: &mut ConnectionManager,
    key: &str,
    args: &[String],
) -> Result<Vec<String>, RedisError> {
    for _ in 0..2 {
        let known = inner
            .range_sha
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let sha = match known {
            Some(sha) => sha,
            None => {
                let sha: String = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(RANGE_SCRIPT)
                    .query_async(c)
                    .await?;
                *inner.range_sha.lock().unwrap_or_else(|e| e.into_inner()) = Some(sha.clone());
                sha
            }
        };
        match redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(key)
            .arg(args)
            .query_async(c)
            .await
        {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                *inner.range_sha.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            other => return other,
        }
    }
    // Loaded twice and forgotten twice: run it by its text.
    redis::cmd("EVAL")
        .arg(RANGE_SCRIPT)
        .arg(1)
        .arg(key)
        .arg(args)
        .query_async(c)
        .await
}

/// A score as Redis returns it (a double printed in full).
fn parse_score(text: &str) -> Result<i64, Failure> {
    text.parse::<i64>()
        .ok()
        .or_else(|| text.parse::<f64>().ok().map(|f| f as i64))
        .ok_or_else(|| Failure(format!("redis returned {text:?} as a score")))
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

    fn index_apply(&self, bucket: &str, changes: Changes) -> Op<()> {
        let set = self.full_entries(bucket, changes.set);
        let delete: Vec<String> = changes
            .delete
            .iter()
            .map(|k| self.full_key(bucket, k))
            .collect();
        // Consecutive changes of one index go out as one command; the
        // order between commands is the order of the changes.
        let mut adds: Vec<(String, Vec<(i64, String)>)> = Vec::new();
        for (index, member, score) in changes.add {
            let key = self.index_key(bucket, &index);
            match adds.last_mut() {
                Some((last, entries)) if *last == key && entries.len() < CHUNK * 5 => {
                    entries.push((score, member));
                }
                _ => adds.push((key, vec![(score, member)])),
            }
        }
        let mut removes: Vec<(String, Vec<String>)> = Vec::new();
        for (index, member) in changes.remove {
            let key = self.index_key(bucket, &index);
            match removes.last_mut() {
                Some((last, members)) if *last == key && members.len() < CHUNK * 5 => {
                    members.push(member);
                }
                _ => removes.push((key, vec![member])),
            }
        }
        self.op(move |mut c| async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for chunk in set.chunks(CHUNK) {
                pipe.cmd("MSET").arg(chunk).ignore();
            }
            for chunk in delete.chunks(CHUNK) {
                pipe.cmd("DEL").arg(chunk).ignore();
            }
            for (key, entries) in &adds {
                pipe.cmd("ZADD").arg(key).arg(entries).ignore();
            }
            for (key, members) in &removes {
                pipe.cmd("ZREM").arg(key).arg(members).ignore();
            }
            pipe.exec_async(&mut c).await?;
            Ok(())
        })
    }

    fn index_range(
        &self,
        bucket: &str,
        index: &str,
        range: BackendRange,
    ) -> Op<Vec<(String, i64)>> {
        let key = self.index_key(bucket, index);
        let inner = self.0.clone();
        self.op(move |mut c| async move {
            let (has_cursor, score, member) = match range.after {
                Some(p) => ("1", p.score, p.member),
                None => ("0", 0, String::new()),
            };
            let args = [
                range.min.to_string(),
                range.max.to_string(),
                if range.descending { "1" } else { "0" }.to_owned(),
                range.limit.to_string(),
                has_cursor.to_owned(),
                score.to_string(),
                member,
            ];
            let flat = run_range_script(&inner, &mut c, &key, &args).await?;
            let mut entries = Vec::with_capacity(flat.len() / 2);
            let mut items = flat.into_iter();
            while let (Some(member), Some(score)) = (items.next(), items.next()) {
                entries.push((member, parse_score(&score)?));
            }
            Ok(entries)
        })
    }

    fn index_count(&self, bucket: &str, index: &str, ranges: Vec<(i64, i64)>) -> Op<Vec<u64>> {
        let key = self.index_key(bucket, index);
        self.op(move |mut c| async move {
            let mut pipe = redis::pipe();
            for (min, max) in &ranges {
                pipe.cmd("ZCOUNT").arg(&key).arg(min).arg(max);
            }
            Ok(pipe.query_async(&mut c).await?)
        })
    }

    fn index_score(&self, bucket: &str, index: &str, member: &str) -> Op<Option<i64>> {
        let key = self.index_key(bucket, index);
        let member = member.to_owned();
        self.op(move |mut c| async move {
            let score: Option<String> = redis::cmd("ZSCORE")
                .arg(key)
                .arg(member)
                .query_async(&mut c)
                .await?;
            Ok(score.as_deref().map(parse_score).transpose()?)
        })
    }
}
