//! Request ids: the `X-Request-Id` a client (or a proxy in front of us)
//! sent is kept when it is a plausible id, so one id follows a request
//! across systems; otherwise the host makes one. The component sees the id
//! in its request headers and the client gets it back in the response.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

pub const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Longest id kept (the logger stores at most 128 bytes per field).
pub const MAX_LEN: usize = 128;

/// Whether an incoming id is kept: 1 to [`MAX_LEN`] printable ASCII
/// characters without spaces (no quotes or backslashes either, so it can
/// be pasted into a query or a shell).
pub fn valid(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'))
}

/// Makes ids unique across hosts and restarts without a system call per
/// request: a random prefix chosen at start, then a counter.
pub struct Generator {
    prefix: u64,
    next: AtomicU64,
}

impl Default for Generator {
    fn default() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        Self {
            prefix: u64::from_le_bytes(bytes) >> 16,
            next: AtomicU64::new(1),
        }
    }
}

impl Generator {
    /// A fresh id: 12 hex digits of the host's prefix, a dash, 12 of the
    /// counter (`3f9c0a1b2c4d-000000000001`).
    pub fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff;
        let text = format!("{:012x}-{n:012x}", self.prefix);
        HeaderValue::from_str(&text).expect("hex digits and a dash are a header value")
    }

    /// The id of a request: its own valid `X-Request-Id`, else a fresh one.
    pub fn of(&self, incoming: Option<&HeaderValue>) -> HeaderValue {
        match incoming {
            Some(value) if valid(value) => value.clone(),
            _ => self.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_kept_and_others_replaced() {
        let ids = Generator::default();
        for kept in [
            "abc-123",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "a:b/c+d=e",
        ] {
            let value = HeaderValue::from_static(kept);
            assert_eq!(ids.of(Some(&value)), value);
        }
        let long = "x".repeat(MAX_LEN + 1);
        for replaced in ["", "has space", "quote\"d", long.as_str()] {
            let value = HeaderValue::from_str(replaced).unwrap();
            let id = ids.of(Some(&value));
            assert_ne!(id, value);
            assert!(valid(&id));
        }
        assert!(valid(&ids.of(None)));
        // Non-ASCII bytes are not kept either.
        let value = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert!(!valid(&value));
    }

    #[test]
    fn generated_ids_are_unique_per_host_and_across_hosts() {
        let (a, b) = (Generator::default(), Generator::default());
        let first = a.next();
        assert_ne!(first, a.next());
        assert_eq!(first.len(), 25);
        assert_ne!(first, b.next(), "two hosts share a prefix");
    }
}
