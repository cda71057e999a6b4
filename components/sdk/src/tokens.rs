//! Bearer tokens signed by the host, through `corral:platform/tokens`.
//!
//! The host holds the secret (`[auth]` in its config); a component with
//! `grants.tokens = { issue = true }` gets tokens for a subject, one with
//! `verify = true` checks them. Routes behind gateway auth (`auth = { jwt
//! = true }` in the component's table) need neither: the host has checked
//! the token already and passes the subject in `x-corral-auth-sub` and the
//! claims in `x-corral-auth-claims` (see [`subject`], [`claims`]).
//!
//! ```ignore
//! use corral_sdk::tokens;
//! let issued = tokens::issue("alice", Some(&serde_json::json!({ "role": "admin" })))?;
//! let claims = tokens::verify(&issued.token)?;
//! assert_eq!(claims["sub"], "alice");
//! ```

use crate::bindings::corral::platform::tokens as wit;
pub use crate::bindings::corral::platform::tokens::{Error, IssuedToken};
use crate::http::Request;

/// The header the host sets to the verified subject (and strips from
/// clients).
pub const SUBJECT_HEADER: &str = "x-corral-auth-sub";
/// The header the host sets to the verified claims, as JSON.
pub const CLAIMS_HEADER: &str = "x-corral-auth-claims";

/// Issues a token for `subject`, with `extra` claims (a JSON object) beside
/// `sub`, `iat`, `exp`, `iss` and `aud`.
pub fn issue(subject: &str, extra: Option<&serde_json::Value>) -> Result<IssuedToken, Error> {
    let extra = extra.map(serde_json::Value::to_string);
    wit::issue(subject, extra.as_deref())
}

/// Checks `token` (signature, algorithm, expiry, issuer, audience) and
/// returns its claims.
pub fn verify(token: &str) -> Result<serde_json::Value, Error> {
    let claims = wit::verify(token)?;
    serde_json::from_str(&claims)
        .map_err(|e| Error::Unavailable(format!("the host sent claims that are not JSON: {e}")))
}

/// The subject the gateway verified for this request, on a route behind
/// gateway auth.
pub fn subject(request: &Request) -> Option<&str> {
    request.header(SUBJECT_HEADER)
}

/// The client's IP address, as the host saw the connection (every request
/// carries it; a client cannot set it). Behind a proxy it is the proxy's.
pub fn client_addr(request: &Request) -> Option<&str> {
    request.header("x-corral-auth-client-addr")
}

/// The claims the gateway verified for this request.
pub fn claims(request: &Request) -> Option<serde_json::Value> {
    serde_json::from_str(request.header(CLAIMS_HEADER)?).ok()
}

impl Error {
    /// A stable code for error bodies: `not_granted`, `invalid`,
    /// `invalid_token`, `unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotGranted(_) => "not_granted",
            Error::Invalid(_) => "invalid",
            Error::InvalidToken(_) => "invalid_token",
            Error::Unavailable(_) => "unavailable",
        }
    }

    /// The HTTP status that fits: 403, 400, 401, 503.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotGranted(_) => 403,
            Error::Invalid(_) => 400,
            Error::InvalidToken(_) => 401,
            Error::Unavailable(_) => 503,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Error::NotGranted(m)
            | Error::Invalid(m)
            | Error::InvalidToken(m)
            | Error::Unavailable(m) => m,
        }
    }
}

/// The token error's status and code (403 `not_granted`, 400 `invalid`,
/// 401 `invalid_token`, 503 `unavailable`), the host's words as message.
impl From<Error> for crate::http::Error {
    fn from(e: Error) -> Self {
        let error = Self::new(e.http_status(), e.code(), e.detail());
        match e {
            Error::InvalidToken(_) => {
                error.with_header("www-authenticate", "Bearer error=\"invalid_token\"")
            }
            _ => error,
        }
    }
}
