//! Key-value storage: `wasi:keyvalue` (store, atomics, batch) plus corral's
//! `keyvalue-ext` (expiry, set-if-absent) and `keyvalue-index` (ordered
//! indexes, see [`index`]), behind one [`Bucket`] type.
//!
//! The host links these imports only for components with a
//! `grants.keyvalue = { buckets = [...] }` grant, and [`open`] succeeds only
//! for a bucket the grant names ([`Error::AccessDenied`] otherwise).
//!
//! ```ignore
//! let sessions = corral_sdk::kv::open("sessions")?;
//! sessions.set_with_ttl("abc", b"user-7", Duration::from_secs(900))?;
//! let first = sessions.set_if_absent("lock:job-1", b"me", Some(Duration::from_secs(30)))?;
//! let hits = sessions.increment("hits", 1)?;
//! ```

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::corral::platform::keyvalue_ext;
use crate::bindings::wasi::keyvalue::{atomics, batch, store};

pub mod index;

pub use index::{Changes, Page, Position, Range};

/// Why a key-value call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host has no such store.
    NoSuchStore,
    /// The component's grant does not name this bucket.
    AccessDenied,
    /// Anything else, in the host's words: the store is unreachable, a key
    /// is invalid, a value is not a counter, ...
    Other(String),
}

/// How the host begins the message of an outage (the store unreachable, or
/// no answer in time): wasi:keyvalue has no error case of its own for it.
pub const UNAVAILABLE_PREFIX: &str = "unavailable: ";

impl Error {
    /// Whether the store itself failed (unreachable, or no answer in time)
    /// rather than this call: the same call may work later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Other(m) if m.starts_with(UNAVAILABLE_PREFIX))
    }

    /// A stable code for error responses.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoSuchStore => "no_such_store",
            Error::AccessDenied => "access_denied",
            _ if self.is_unavailable() => "backend_unavailable",
            Error::Other(_) => "keyvalue_error",
        }
    }

    /// The HTTP status that fits: 404, 403, 503 (the store is down) or 500.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NoSuchStore => 404,
            Error::AccessDenied => 403,
            _ if self.is_unavailable() => 503,
            Error::Other(_) => 500,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoSuchStore => f.write_str("no such key-value store"),
            Error::AccessDenied => f.write_str("access to this bucket is not granted"),
            Error::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NoSuchStore => Error::NoSuchStore,
            store::Error::AccessDenied => Error::AccessDenied,
            store::Error::Other(message) => Error::Other(message),
        }
    }
}

/// Opens bucket `name` (it must be in the component's grant).
pub fn open(name: &str) -> Result<Bucket, Error> {
    Ok(Bucket {
        name: name.to_owned(),
        inner: store::open(name)?,
    })
}

/// An open bucket; closed when dropped.
pub struct Bucket {
    name: String,
    inner: store::Bucket,
}

/// Milliseconds for the host; a sub-millisecond TTL rounds up to 1 ms.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Bucket {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The generated resource, for calls this wrapper does not cover.
    pub fn raw(&self) -> &store::Bucket {
        &self.inner
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.inner.get(key)?)
    }

    /// The value as text (invalid UTF-8 replaced).
    pub fn get_string(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The value decoded from JSON; a value that does not decode is an
    /// [`Error::Other`].
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.get(key)?
            .map(|v| serde_json::from_slice(&v))
            .transpose()
            .map_err(|e| Error::Other(format!("value of {key:?} is not the expected JSON: {e}")))
    }

    /// Sets `key`, without expiry (clearing any it had).
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.inner.set(key, value.as_ref())?)
    }

    pub fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::Other(format!("cannot encode {key:?} as JSON: {e}")))?;
        self.set(key, bytes)
    }

    /// Sets `key`; it disappears after `ttl`.
    pub fn set_with_ttl(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<(), Error> {
        Ok(keyvalue_ext::set_with_ttl(
            &self.inner,
            key,
            value.as_ref(),
            millis(ttl),
        )?)
    }

    /// Sets `key` only if it is absent; whether this call set it. The
    /// building block for locks and idempotency keys.
    pub fn set_if_absent(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, Error> {
        Ok(keyvalue_ext::set_if_absent(
            &self.inner,
            key,
            value.as_ref(),
            ttl.map(millis),
        )?)
    }

    /// [`Bucket::set_if_absent`] for many keys in one call to the host (one
    /// round trip to the backend): whether each entry was set, in order. A
    /// key given twice is set by its first entry only.
    pub fn set_many_if_absent(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl: Option<Duration>,
    ) -> Result<Vec<bool>, Error> {
        Ok(keyvalue_ext::set_many_if_absent(
            &self.inner,
            entries,
            ttl.map(millis),
        )?)
    }

    /// Time left before `key` expires; `None` if it is absent or never expires.
    pub fn ttl(&self, key: &str) -> Result<Option<Duration>, Error> {
        Ok(keyvalue_ext::ttl(&self.inner, key)?.map(Duration::from_millis))
    }

    pub fn delete(&self, key: &str) -> Result<(), Error> {
        Ok(self.inner.delete(key)?)
    }

    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.inner.exists(key)?)
    }

    /// Adds `delta` to the decimal counter at `key` (0 when absent) and
    /// returns the new value.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        Ok(atomics::increment(&self.inner, key, delta)?)
    }

    /// Values of `keys`, in order, `None` where absent.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let found = batch::get_many(&self.inner, keys)?;
        Ok(found.into_iter().map(|kv| kv.map(|(_, v)| v)).collect())
    }

    pub fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        Ok(batch::set_many(&self.inner, entries)?)
    }

    /// Sets every entry with the same expiry, in one call to the host (one
    /// round trip to the backend) rather than one per key.
    pub fn set_many_with_ttl(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), Error> {
        Ok(keyvalue_ext::set_many_with_ttl(
            &self.inner,
            entries,
            millis(ttl),
        )?)
    }

    pub fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        Ok(batch::delete_many(&self.inner, keys)?)
    }

    /// Every key of the bucket, fetched a page at a time as the iterator
    /// advances.
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            bucket: self,
            page: Vec::new().into_iter(),
            cursor: None,
            done: false,
        }
    }
}

/// The keys of a bucket; see [`Bucket::keys`].
pub struct Keys<'a> {
    bucket: &'a Bucket,
    page: std::vec::IntoIter<String>,
    cursor: Option<u64>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<String, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            match self.bucket.inner.list_keys(self.cursor) {
                Ok(response) => {
                    self.page = response.keys.into_iter();
                    self.cursor = response.cursor;
                    self.done = self.cursor.is_none();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}
