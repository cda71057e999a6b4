//! Answers cached in key-value (bucket `catalog`): the upstream's body as
//! it came, with when it was fetched. Fresh for `cache_ttl_ms`; after that
//! served as stale (and refreshed after the response) until the key-value
//! store expires it at `stale_ttl_ms`.

use std::time::Duration;

use corral_sdk::kv::{self, Bucket};

pub const BUCKET: &str = "catalog";

/// One cached answer.
pub struct Entry {
    pub fetched_ms: i64,
    pub body: Vec<u8>,
}

impl Entry {
    /// Milliseconds since it was fetched.
    pub fn age_ms(&self, now_ms: i64) -> u64 {
        (now_ms - self.fetched_ms).max(0) as u64
    }

    /// `<fetched_ms>\n<body>`: the body is served as stored, never parsed.
    fn encode(&self) -> Vec<u8> {
        let mut value = format!("{}\n", self.fetched_ms).into_bytes();
        value.extend_from_slice(&self.body);
        value
    }

    fn decode(value: &[u8]) -> Option<Self> {
        let newline = value.iter().position(|b| *b == b'\n')?;
        let fetched_ms = std::str::from_utf8(&value[..newline]).ok()?.parse().ok()?;
        Some(Self {
            fetched_ms,
            body: value[newline + 1..].to_vec(),
        })
    }
}

fn key(upstream_path: &str) -> String {
    format!("v1:{upstream_path}")
}

pub fn open() -> Result<Bucket, kv::Error> {
    kv::open(BUCKET)
}

/// The cached answer for `upstream_path`, if any. A store that fails is
/// logged and treated as empty: the catalog still answers.
pub fn read(bucket: &Bucket, upstream_path: &str) -> Option<Entry> {
    match bucket.get(&key(upstream_path)) {
        Ok(value) => value.as_deref().and_then(Entry::decode),
        Err(e) => {
            corral_sdk::log::warn("cache", &format!("reading {upstream_path}: {e}"));
            None
        }
    }
}

pub fn write(bucket: &Bucket, upstream_path: &str, entry: &Entry, keep: Duration) {
    if let Err(e) = bucket.set_with_ttl(&key(upstream_path), entry.encode(), keep) {
        corral_sdk::log::warn("cache", &format!("writing {upstream_path}: {e}"));
    }
}

/// Claims the refresh of `upstream_path` for `hold`, so that of many
/// requests served stale at once only one asks the upstream.
pub fn claim_refresh(bucket: &Bucket, upstream_path: &str, hold: Duration) -> bool {
    let lock = format!("refresh:{upstream_path}");
    bucket
        .set_if_absent(&lock, b"1", Some(hold))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let entry = Entry {
            fetched_ms: 1_700_000_000_123,
            body: b"{\"a\":\n1}".to_vec(),
        };
        let decoded = Entry::decode(&entry.encode()).unwrap();
        assert_eq!(
            (decoded.fetched_ms, &decoded.body),
            (entry.fetched_ms, &entry.body)
        );
        assert!(Entry::decode(b"no newline").is_none());
        assert!(Entry::decode(b"x\n{}").is_none());
        assert_eq!(entry.age_ms(1_700_000_001_123), 1000);
        assert_eq!(entry.age_ms(0), 0);
    }
}
