//! Record ids: 26 characters of Crockford base32 (a ULID): 48 bits of the
//! record's timestamp in milliseconds, then 80 bits that make it unique.
//! Ids sort like their timestamps, as text and as numbers.
//!
//! The 80 bits are random for a direct write; for a record from the queue
//! they are a hash of the message id and the record's place in the message,
//! so that a redelivered message gives its records the same ids again and
//! they are stored once.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const LEN: usize = 26;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(u128);

impl Id {
    fn new(at_ms: i64, low: u128) -> Self {
        let time = (at_ms.max(0) as u128) & ((1 << 48) - 1);
        Self((time << 80) | (low & ((1 << 80) - 1)))
    }

    pub fn random(at_ms: i64) -> Self {
        Self::new(at_ms, random_u128())
    }

    pub fn derived(at_ms: i64, message_id: &str, position: usize) -> Self {
        let text = format!("{message_id}\u{0}{position}");
        let high = u128::from(fnv64(text.as_bytes(), 0xcbf2_9ce4_8422_2325));
        let low = u128::from(fnv64(text.as_bytes(), 0x8422_2325_cbf2_9ce4));
        Self::new(at_ms, (high << 64) | low)
    }

    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != LEN {
            return None;
        }
        let mut value: u128 = 0;
        for (i, c) in text.bytes().enumerate() {
            let digit = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())? as u128;
            // The first character holds only 3 bits (26 * 5 = 130).
            if i == 0 && digit > 7 {
                return None;
            }
            value = (value << 5) | digit;
        }
        Some(Self(value))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 5 * (LEN - 1 - i);
            *slot = ALPHABET[((self.0 >> shift) & 31) as usize];
        }
        f.write_str(std::str::from_utf8(&out).expect("ASCII"))
    }
}

/// FNV-1a over `bytes` from `basis`.
pub fn fnv64(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// 32 bits of FNV-1a: the short field hashes of index members.
pub fn fnv32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(target_family = "wasm")]
fn random_u128() -> u128 {
    use corral_sdk::wasip2::random::random::get_random_u64;
    (u128::from(get_random_u64()) << 64) | u128::from(get_random_u64())
}

/// Off wasm (unit tests): the clock and a counter are random enough.
#[cfg(not(target_family = "wasm"))]
fn random_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (u128::from(fnv64(&n.to_le_bytes(), 1)) << 64) ^ nanos ^ u128::from(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_parse_and_sort_by_time() {
        let a = Id::random(1_718_454_896_789);
        let b = Id::random(1_718_454_896_790);
        let (ta, tb) = (a.to_string(), b.to_string());
        assert_eq!(ta.len(), LEN);
        assert!(ta < tb && a < b);
        assert_eq!(Id::parse(&ta), Some(a));
        assert_eq!(Id::parse(&ta.to_lowercase()), Some(a));
        assert_eq!(a.0 >> 80, 1_718_454_896_789);
        assert_eq!(Id::parse("not-an-id"), None);
        assert_eq!(Id::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), None);
        assert_eq!(
            Id::parse("0123456789ABCDEFGHJKMNPQRU"),
            None,
            "U is not a digit"
        );
    }

    #[test]
    fn derived_ids_repeat_for_the_same_message_and_place() {
        let one = Id::derived(5, "msg-1", 0);
        assert_eq!(one, Id::derived(5, "msg-1", 0));
        assert_ne!(one, Id::derived(5, "msg-1", 1));
        assert_ne!(one, Id::derived(5, "msg-2", 0));
        assert_eq!(one.0 >> 80, 5);
    }
}
