//! Password hashing through `corral:platform/passwords`: argon2id, run by
//! the host (natively, with its `[passwords]` parameters and a bound on how
//! many hashes run at once). The component needs
//! `grants.passwords = { max_concurrent = N }`.
//!
//! ```ignore
//! use corral_sdk::passwords;
//! let phc = passwords::hash(&password)?;          // store this, never the password
//! let ok = passwords::verify(&attempt, &phc)?;
//! // An unknown user: spend the same time, so timing does not tell.
//! let ok = passwords::verify_dummy(&attempt)?;    // always false
//! ```
//!
//! [`Error::Busy`] means the host's hashing slots stayed taken too long: a
//! handler answers 503 with `retry-after` (what `?` into
//! [`http::Error`](crate::http::Error) does).

use crate::bindings::corral::platform::passwords as wit;
pub use crate::bindings::corral::platform::passwords::Error;

/// Longest password the host accepts, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A PHC string of `password` (argon2id, fresh random salt).
pub fn hash(password: &str) -> Result<String, Error> {
    wit::hash(password)
}

/// Whether `password` matches `phc` (constant-time comparison).
pub fn verify(password: &str, phc: &str) -> Result<bool, Error> {
    wit::verify(password, phc)
}

/// Costs what [`verify`] costs, answers `false`: for an unknown user.
pub fn verify_dummy(password: &str) -> Result<bool, Error> {
    wit::verify_dummy(password)
}

/// Whether `phc` was made with other parameters than the host's current
/// ones (hash the password again after a successful login).
pub fn needs_rehash(phc: &str) -> Result<bool, Error> {
    wit::needs_rehash(phc)
}

impl Error {
    /// A stable code for error bodies: `invalid_password`,
    /// `malformed_hash`, `busy`, `passwords_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_password",
            Error::MalformedHash(_) => "malformed_hash",
            Error::Busy(_) => "busy",
            Error::Failed(_) => "passwords_failed",
        }
    }

    /// The HTTP status that fits: 400 for a refused password, 503 when
    /// busy, 500 otherwise (a stored hash that is not one is the
    /// service's fault, not the client's).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::Busy(_) => 503,
            Error::MalformedHash(_) | Error::Failed(_) => 500,
        }
    }

    /// The host's words (never the password).
    pub fn detail(&self) -> &str {
        match self {
            Error::Invalid(m) | Error::MalformedHash(m) | Error::Busy(m) | Error::Failed(m) => m,
        }
    }
}
