//! HS256 JSON Web Tokens (RFC 7519), signed and checked with the RustCrypto
//! `hmac` and `sha2` crates.
//!
//! Only what the host issues is accepted: the header must say `HS256`
//! (so `alg: none`, and any other algorithm, is refused before the
//! signature is even looked at), the signature is compared in constant
//! time, and the payload must carry `sub`, `iat`, `exp`, `iss` and `aud`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value};
use sha2::Sha256;

/// Longest token accepted: it travels in a header, and anything this long
/// was not issued here.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The one header this host issues; see [`encode`].
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// An HS256 signing key.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl Key {
    pub fn new(secret: &[u8]) -> Self {
        Self(Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

/// Why a token was refused. The text goes into the 401's body and its
/// `WWW-Authenticate` header: it says what was wrong, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm {0} is not accepted (only HS256)")]
    Algorithm(String),
    #[error("the token's signature does not match")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another audience")]
    Audience,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token lacks the {0} claim, or it has the wrong type")]
    Claim(&'static str),
}

/// Signs `claims` (a JSON object) into a compact token.
pub fn encode(key: &Key, claims: &Map<String, Value>) -> String {
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = key.0.clone();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// What a token must say besides a good signature.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Now, in seconds since the Unix epoch.
    pub now: u64,
}

/// Checks `token`'s header, signature and claims; returns its claims.
pub fn decode(
    key: &Key,
    token: &str,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed("it is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed(
            "it is not three dot-separated parts",
        ));
    };
    let header = json_part(
        header,
        "its header is not base64url",
        "its header is not a JSON object",
    )?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        // Echoed back to the client: a short, plain excerpt only.
        Some(Value::String(alg)) => {
            let shown = alg.chars().filter(char::is_ascii_alphanumeric).take(16);
            return Err(VerifyError::Algorithm(shown.collect()));
        }
        _ => return Err(VerifyError::Malformed("its header has no alg")),
    }
    if header.contains_key("crit") {
        return Err(VerifyError::Malformed("its header has critical extensions"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| VerifyError::Malformed("its signature is not base64url"))?;
    let mut mac = key.0.clone();
    mac.update(header_and_payload(token).as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| VerifyError::Signature)?;

    let claims = json_part(
        payload,
        "its payload is not base64url",
        "its payload is not a JSON object",
    )?;
    let string = |name: &'static str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        _ => Err(VerifyError::Claim(name)),
    };
    let number = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_u64)
            .ok_or(VerifyError::Claim(name))
    };
    string("sub")?;
    number("iat")?;
    if number("exp")? <= expected.now {
        return Err(VerifyError::Expired);
    }
    if string("iss")? != expected.issuer {
        return Err(VerifyError::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a == expected.audience),
        _ => return Err(VerifyError::Claim("aud")),
    };
    if !audience_ok {
        return Err(VerifyError::Audience);
    }
    Ok(claims)
}

/// `header.payload`: what the signature covers.
fn header_and_payload(token: &str) -> &str {
    &token[..token.rfind('.').expect("checked: three parts")]
}

/// One base64url JSON object part; the two texts say what was wrong.
fn json_part(
    part: &str,
    not_base64: &'static str,
    not_object: &'static str,
) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed(not_base64))?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed(not_object))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "corral",
            audience: "corral",
            now: NOW,
        }
    }

    fn claims(overrides: Value) -> Map<String, Value> {
        let mut claims = json!({
            "sub": "alice", "iat": NOW - 10, "exp": NOW + 60,
            "iss": "corral", "aud": "corral",
        })
        .as_object()
        .unwrap()
        .clone();
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                claims.remove(k);
            } else {
                claims.insert(k.clone(), v.clone());
            }
        }
        claims
    }

    fn token(overrides: Value) -> String {
        encode(&Key::new(SECRET), &claims(overrides))
    }

    fn check(token: &str) -> Result<Map<String, Value>, VerifyError> {
        decode(&Key::new(SECRET), token, &expected())
    }

    /// A token with `header` as its header, signed with the test secret.
    fn with_header(header: &str, claims: &Map<String, Value>) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
        );
        let mut mac = Key::new(SECRET).0;
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_token_round_trips_with_its_extra_claims() {
        let decoded = check(&token(json!({ "role": "admin" }))).unwrap();
        assert_eq!(decoded["sub"], "alice");
        assert_eq!(decoded["role"], "admin");
        let audiences = token(json!({ "aud": ["other", "corral"] }));
        assert!(check(&audiences).is_ok());
    }

    #[test]
    fn the_same_claims_sign_the_same_way_as_a_reference_implementation() {
        // RFC 7515 A.1's signing input and key (HS256), as base64url.
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let mut mac = Key::new(&key).0;
        mac.update(input.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = claims(json!({}));
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
        );
        assert_eq!(check(&unsigned), Err(VerifyError::Algorithm("none".into())));
        for alg in ["HS512", "RS256", "hs256", "None"] {
            let token = with_header(&format!(r#"{{"alg":"{alg}"}}"#), &claims);
            assert_eq!(check(&token), Err(VerifyError::Algorithm(alg.into())));
        }
        let token = with_header(r#"{"typ":"JWT"}"#, &claims);
        assert!(matches!(check(&token), Err(VerifyError::Malformed(_))));
        let token = with_header(r#"{"alg":"HS256","crit":["exp"]}"#, &claims);
        assert!(matches!(check(&token), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn a_bad_signature_is_refused() {
        let good = token(json!({}));
        let other_key = encode(
            &Key::new(b"another secret, also 32 bytes long"),
            &claims(json!({})),
        );
        assert_eq!(check(&other_key), Err(VerifyError::Signature));
        // Claims changed after signing.
        let (head, rest) = good.split_once('.').unwrap();
        let signature = rest.rsplit_once('.').unwrap().1;
        let forged = format!(
            "{head}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(Value::Object(claims(json!({ "sub": "mallory" }))).to_string())
        );
        assert_eq!(check(&forged), Err(VerifyError::Signature));
        // One character of the signature flipped.
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            check(&String::from_utf8(flipped).unwrap()),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn expired_wrong_audience_and_wrong_issuer_are_refused() {
        assert_eq!(
            check(&token(json!({ "exp": NOW }))),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            check(&token(json!({ "exp": NOW - 1 }))),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            check(&token(json!({ "aud": "elsewhere" }))),
            Err(VerifyError::Audience)
        );
        assert_eq!(
            check(&token(json!({ "aud": ["a", "b"] }))),
            Err(VerifyError::Audience)
        );
        assert_eq!(
            check(&token(json!({ "iss": "mallory" }))),
            Err(VerifyError::Issuer)
        );
    }

    #[test]
    fn missing_or_mistyped_claims_are_refused() {
        for (claim, value) in [
            ("sub", Value::Null),
            ("sub", json!("")),
            ("sub", json!(7)),
            ("iat", Value::Null),
            ("exp", Value::Null),
            ("exp", json!("soon")),
            ("iss", Value::Null),
            ("aud", Value::Null),
            ("aud", json!(1)),
        ] {
            let token = token(json!({ claim: value }));
            assert_eq!(check(&token), Err(VerifyError::Claim(claim)), "{claim}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token(json!({}));
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.AAAA",
            &format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode("[]")),
            &format!("{good}x.y"),
            &format!("{}.{}", good, "A".repeat(MAX_TOKEN_BYTES)),
        ] {
            assert!(
                matches!(check(bad), Err(VerifyError::Malformed(_))),
                "{bad:?}: {:?}",
                check(bad)
            );
        }
        // A payload that is not JSON, correctly signed.
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode("not json")
        );
        let mut mac = Key::new(SECRET).0;
        mac.update(input.as_bytes());
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(
            check(&token),
            Err(VerifyError::Malformed("its payload is not a JSON object"))
        );
    }
}
