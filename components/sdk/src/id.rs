//! Record ids: ULIDs (26 characters of Crockford base32: 48 bits of the
//! creation time in milliseconds, 80 random bits), so ids sort by creation
//! (the services' records, message ids, lock tokens).

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new id for something made at `now_ms` (Unix milliseconds).
pub fn new(now_ms: i64) -> String {
    let random = random_u128() & ((1 << 80) - 1);
    let value = ((now_ms.max(0) as u128 & ((1 << 48) - 1)) << 80) | random;
    (0..26)
        .map(|i| ALPHABET[((value >> (5 * (25 - i))) & 31) as usize] as char)
        .collect()
}

#[cfg(target_family = "wasm")]
fn random_u128() -> u128 {
    use wasip2::random::random::get_random_u64;
    (u128::from(get_random_u64()) << 64) | u128::from(get_random_u64())
}

#[cfg(not(target_family = "wasm"))]
fn random_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
}

/// Whether `text` has the shape of an id [`new`] makes (a cheap check
/// before a lookup).
pub fn is_valid(text: &str) -> bool {
    text.len() == 26 && text.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_sort_by_time() {
        let (a, b) = (super::new(1_000), super::new(2_000));
        assert_eq!(a.len(), 26);
        assert!(a < b);
        assert!(super::is_valid(&a));
        assert!(!super::is_valid("01ARZ3NDEKTSV4RRFFQ69G5FAu"));
        assert!(!super::is_valid("short"));
    }
}
