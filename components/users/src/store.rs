//! Where users live (key-value bucket `users`, config `bucket`):
//!
//! | key / index          | holds                                                 |
//! |----------------------|-------------------------------------------------------|
//! | `u:<id>`             | the user's JSON, `password_hash` and `version` included |
//! | `email:<email>`      | claim: `<id> <claimed at ms>`, the owner of an address |
//! | `username:<name>`    | claim, the same for a username                        |
//! | `lock:<id>`          | held (set-if-absent, 5 s expiry) while a user changes |
//! | index `by-created`   | every id, scored by its creation time in ms           |
//!
//! **Uniqueness.** A claim is taken with set-if-absent, atomic on both
//! backends: of any number of concurrent creates with one address exactly
//! one gets the claim. The user's record and index entry are then written
//! with one `apply`; on a change of address the new claim is taken first
//! and the old one deleted with the record's write. So a login finds its
//! user with one read of `email:<email>` (or `username:<name>`).
//!
//! **Stale claims.** A create that claimed an address and then failed to
//! write the user (the store went down between the two) leaves a claim
//! that names no user holding it. A claim is live when its user exists and
//! has that value; one that is not live and older than [`CLAIM_GRACE`]
//! (longer than any request may run) is taken over, under a lock so that
//! two takeovers cannot both win.

use std::time::Duration;

use corral_sdk::kv::{self, Bucket};
use corral_sdk::{config, id, time};
use serde_json::Value;

pub const INDEX: &str = "by-created";
const LOCK_TTL: Duration = Duration::from_secs(5);
/// Older than the component's time limit: a claim this old whose user does
/// not hold it was left behind.
pub const CLAIM_GRACE: Duration = Duration::from_secs(30);

/// A unique field: `email` or `username`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    Email,
    Username,
}

impl Unique {
    pub fn field(self) -> &'static str {
        match self {
            Unique::Email => "email",
            Unique::Username => "username",
        }
    }

    pub fn key(self, value: &str) -> String {
        format!("{}:{value}", self.field())
    }
}

pub fn user_key(id: &str) -> String {
    format!("u:{id}")
}

pub fn open() -> Result<Bucket, kv::Error> {
    kv::open(&config::get_or("bucket", "users"))
}

pub fn load(bucket: &Bucket, id: &str) -> Result<Option<Value>, kv::Error> {
    bucket.get_json(&user_key(id))
}

/// The id a claim names, and when it was taken.
fn parse_claim(value: &[u8]) -> Option<(String, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (id, at) = text.split_once(' ')?;
    Some((id.to_owned(), at.parse().ok()?))
}

/// The user that holds `value` of `unique`, if any: one read of the claim,
/// one of the user (the lookup a login makes).
pub fn find(bucket: &Bucket, unique: Unique, value: &str) -> Result<Option<Value>, kv::Error> {
    let Some(claim) = bucket.get(&unique.key(value))? else {
        return Ok(None);
    };
    let Some((owner, _)) = parse_claim(&claim) else {
        return Ok(None);
    };
    Ok(load(bucket, &owner)?.filter(|user| user[unique.field()] == value))
}

/// Claims every `(field, value)` for user `id`; on a conflict gives back
/// what it took and names the field already taken.
pub fn claim(
    bucket: &Bucket,
    id: &str,
    wanted: &[(Unique, String)],
) -> Result<Result<(), Unique>, kv::Error> {
    if wanted.is_empty() {
        return Ok(Ok(()));
    }
    let value = format!("{id} {}", time::now_millis());
    let entries: Vec<(String, Vec<u8>)> = wanted
        .iter()
        .map(|(u, v)| (u.key(v), value.clone().into_bytes()))
        .collect();
    let set = bucket.set_many_if_absent(&entries, None)?;
    let mut taken: Vec<&(Unique, String)> = Vec::new();
    let mut conflict = None;
    for (want, got) in wanted.iter().zip(set) {
        if got || (conflict.is_none() && take_over_stale(bucket, id, want.0, &want.1, &value)?) {
            taken.push(want);
        } else if conflict.is_none() {
            conflict = Some(want.0);
        }
    }
    match conflict {
        None => Ok(Ok(())),
        Some(field) => {
            release(bucket, id, taken.into_iter().cloned());
            Ok(Err(field))
        }
    }
}

/// Takes over the claim of `value` for user `id` when it is stale (see
/// the module docs) or already `id`'s (left by its own failed change).
fn take_over_stale(
    bucket: &Bucket,
    id: &str,
    unique: Unique,
    value: &str,
    claim: &str,
) -> Result<bool, kv::Error> {
    let key = unique.key(value);
    let Some((owner, at)) = bucket.get(&key)?.as_deref().and_then(parse_claim) else {
        return Ok(false);
    };
    if owner == id {
        bucket.set(&key, claim)?;
        return Ok(true);
    }
    let age = time::now_millis().saturating_sub(at);
    if age < CLAIM_GRACE.as_millis() as i64 {
        return Ok(false);
    }
    if load(bucket, &owner)?.is_some_and(|user| user[unique.field()] == value) {
        return Ok(false);
    }
    let Some(lock) = Lock::try_take(bucket, &format!("lock:{key}"))? else {
        return Ok(false);
    };
    // Still the same stale claim under the lock: replace it.
    let same = bucket.get(&key)?.as_deref().and_then(parse_claim) == Some((owner, at));
    if same {
        bucket.set(&key, claim)?;
    }
    lock.release(bucket);
    Ok(same)
}

/// Gives back claims of `id` (best effort: a claim left behind is stale
/// after [`CLAIM_GRACE`] and taken over then).
pub fn release(bucket: &Bucket, id: &str, claims: impl IntoIterator<Item = (Unique, String)>) {
    for (unique, value) in claims {
        let key = unique.key(&value);
        if let Ok(Some(claim)) = bucket.get(&key) {
            if parse_claim(&claim).is_some_and(|(owner, _)| owner == id) {
                let _ = bucket.delete(&key);
            }
        }
    }
}

/// A lock key held by this request (set-if-absent with an expiry, so a
/// crashed holder frees it after [`LOCK_TTL`]).
pub struct Lock {
    key: String,
    token: String,
}

impl Lock {
    fn try_take(bucket: &Bucket, key: &str) -> Result<Option<Lock>, kv::Error> {
        let token = id::new(time::now_millis());
        Ok(bucket
            .set_if_absent(key, token.as_bytes(), Some(LOCK_TTL))?
            .then(|| Lock {
                key: key.to_owned(),
                token,
            }))
    }

    /// Takes `key`, waiting up to 3 s (a change holds it for milliseconds);
    /// `None` when it stayed taken.
    pub fn take(bucket: &Bucket, key: &str) -> Result<Option<Lock>, kv::Error> {
        for _ in 0..150 {
            if let Some(lock) = Self::try_take(bucket, key)? {
                return Ok(Some(lock));
            }
            corral_sdk::wasip2::clocks::monotonic_clock::subscribe_duration(20_000_000).block();
        }
        Ok(None)
    }

    /// Frees the lock if it is still ours (it may have expired and been
    /// taken since).
    pub fn release(self, bucket: &Bucket) {
        if bucket.get(&self.key).ok().flatten().as_deref() == Some(self.token.as_bytes()) {
            let _ = bucket.delete(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_name_their_owner_and_time() {
        assert_eq!(
            parse_claim(b"01ARZ3NDEKTSV4RRFFQ69G5FAV 1767225600000"),
            Some(("01ARZ3NDEKTSV4RRFFQ69G5FAV".into(), 1_767_225_600_000))
        );
        assert_eq!(parse_claim(b"nonsense"), None);
        assert_eq!(Unique::Email.key("a@b.io"), "email:a@b.io");
        assert_eq!(Unique::Username.key("ada"), "username:ada");
    }
}
