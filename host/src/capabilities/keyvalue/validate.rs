//! What a bucket name, key, value, TTL or batch may be.
//!
//! Bucket names end up inside backend keys (`<prefix><bucket>:<key>` in
//! Redis), so they are restricted to characters that can neither collide
//! with the separator nor act as a `SCAN MATCH` glob: that is what keeps one
//! bucket from ever reading another's keys. Keys are free-form text but
//! bounded, as are values and batches, so one component cannot make the
//! host or the store buffer unbounded data on its behalf.

use std::time::Duration;

use super::backend::Failure;

pub const MAX_BUCKET_NAME: usize = 64;
pub const MAX_KEY_BYTES: usize = 1024;
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_BATCH: usize = 1000;
/// About 100 years: long enough for "never" while `now + ttl` cannot overflow.
pub const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
pub const MAX_INDEX_NAME: usize = 256;
/// The largest score magnitude: 2^53 - 1, the integers a Redis score (a
/// double) holds exactly, so that both backends keep the same values.
pub const MAX_SCORE: i64 = (1 << 53) - 1;
/// Most entries of one index page, and ranges of one `count-ranges`.
pub const MAX_PAGE: usize = 1000;
/// Most index changes (adds and removes) of one `apply`.
pub const MAX_INDEX_CHANGES: usize = 10_000;
/// Most value bytes one `apply` sets.
pub const MAX_APPLY_BYTES: usize = 32 * 1024 * 1024;

/// A bucket name: 1-64 of `A-Z a-z 0-9 _ - .`.
pub fn bucket_name(name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Err(Failure::new("bucket name is empty"));
    }
    if name.len() > MAX_BUCKET_NAME {
        return Err(Failure(format!(
            "bucket name {name:?} is longer than {MAX_BUCKET_NAME} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(Failure(format!(
            "bucket name {name:?} contains {c:?}; use only letters, digits, '_', '-' and '.'"
        )));
    }
    Ok(())
}

pub fn key(key: &str) -> Result<(), Failure> {
    if key.is_empty() {
        return Err(Failure::new("key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Failure(format!(
            "key is {} bytes long; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

pub fn value(value: &[u8]) -> Result<(), Failure> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Failure(format!(
            "value is {} bytes long; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

pub fn ttl(ttl_ms: u64) -> Result<Duration, Failure> {
    match ttl_ms {
        0 => Err(Failure::new("ttl-ms must be at least 1")),
        ms if ms > MAX_TTL_MS => Err(Failure(format!(
            "ttl-ms {ms} is too large; the limit is {MAX_TTL_MS} (about 100 years)"
        ))),
        ms => Ok(Duration::from_millis(ms)),
    }
}

/// Counters are signed 64-bit in Redis (`INCRBY`); both backends keep them so.
pub fn delta(delta: u64) -> Result<(), Failure> {
    if delta > i64::MAX as u64 {
        return Err(Failure(format!(
            "delta {delta} is too large; the limit is {}",
            i64::MAX
        )));
    }
    Ok(())
}

pub fn batch(len: usize) -> Result<(), Failure> {
    if len > MAX_BATCH {
        return Err(Failure(format!(
            "batch of {len} keys; the limit is {MAX_BATCH}"
        )));
    }
    Ok(())
}

/// An index name: 1 to 256 bytes of any text.
pub fn index_name(name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Err(Failure::new("index name is empty"));
    }
    if name.len() > MAX_INDEX_NAME {
        return Err(Failure(format!(
            "index name is {} bytes long; the limit is {MAX_INDEX_NAME}",
            name.len()
        )));
    }
    Ok(())
}

/// An index member: the same rules as a key.
pub fn member(member: &str) -> Result<(), Failure> {
    key(member).map_err(|e| Failure(e.0.replacen("key", "member", 1)))
}

pub fn score(score: i64) -> Result<(), Failure> {
    if !(-MAX_SCORE..=MAX_SCORE).contains(&score) {
        return Err(Failure(format!(
            "score {score} is out of range; scores are within +-{MAX_SCORE} (2^53 - 1)"
        )));
    }
    Ok(())
}

/// How many entries an index call may carry (`what`: "entries", "members"...).
pub fn index_batch(len: usize, what: &str) -> Result<(), Failure> {
    if len > MAX_BATCH {
        return Err(Failure(format!(
            "{len} {what} in one call; the limit is {MAX_BATCH}"
        )));
    }
    Ok(())
}

/// Parses a counter the way Redis does: a decimal `i64` and nothing else.
pub fn counter(stored: &[u8]) -> Result<i64, Failure> {
    std::str::from_utf8(stored)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Failure::new("value is not a decimal integer, so it cannot be incremented"))
}

/// The new counter value after `delta`, as the interface's `u64`.
pub fn add(current: i64, delta: u64) -> Result<i64, Failure> {
    current
        .checked_add(delta as i64)
        .ok_or_else(|| Failure::new("increment would overflow a 64-bit counter"))
}

pub fn counter_result(value: i64) -> Result<u64, Failure> {
    u64::try_from(value).map_err(|_| {
        Failure(format!(
            "counter is negative ({value}); increment returns a u64"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(bucket_name("transactions").is_ok());
        assert!(bucket_name("a-b_c.d9").is_ok());
        for bad in ["", "a:b", "a*", "a b", "x/y", "ü", &"x".repeat(65)] {
            assert!(bucket_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_values_ttls_and_counters() {
        assert!(key("k").is_ok());
        assert!(key("").unwrap_err().0.contains("empty"));
        assert!(key(&"k".repeat(1025)).unwrap_err().0.contains("1024"));
        assert!(ttl(0).unwrap_err().0.contains("at least 1"));
        assert_eq!(ttl(300).unwrap(), Duration::from_millis(300));
        assert!(ttl(u64::MAX).is_err());
        assert!(delta(u64::MAX).is_err());
        assert_eq!(counter(b"-12").unwrap(), -12);
        assert!(counter(b"1.5").is_err());
        assert!(counter(b" 1").is_err());
        assert!(add(i64::MAX, 1).is_err());
        assert!(counter_result(-1).is_err());
        assert!(batch(1001).is_err());
    }

    #[test]
    fn index_names_members_and_scores() {
        assert!(index_name("service:user_service é").is_ok());
        assert!(index_name("").unwrap_err().0.contains("empty"));
        assert!(index_name(&"i".repeat(257)).unwrap_err().0.contains("256"));
        assert!(member("").unwrap_err().0.contains("member is empty"));
        assert!(
            member(&"m".repeat(1025))
                .unwrap_err()
                .0
                .contains("member is 1025")
        );
        assert!(score(MAX_SCORE).is_ok() && score(-MAX_SCORE).is_ok());
        assert!(score(MAX_SCORE + 1).unwrap_err().0.contains("2^53"));
        assert!(score(i64::MIN).is_err());
        assert!(index_batch(1000, "entries").is_ok());
        assert!(
            index_batch(1001, "entries")
                .unwrap_err()
                .0
                .contains("1001 entries")
        );
    }
}
