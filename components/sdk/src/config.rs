//! The component's configuration values (`[component.config]` in the host
//! config), read through `wasi:config/store`.

use crate::bindings::wasi::config::store;

/// Why a setting could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The key is not set.
    Missing(String),
    /// The store failed, in the host's words.
    Store(String),
}

impl Error {
    /// A stable code for error responses: `config_missing`,
    /// `config_unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Missing(_) => "config_missing",
            Error::Store(_) => "config_unavailable",
        }
    }

    /// The HTTP status that fits: 500 either way (the component's
    /// deployment is at fault, not the request).
    pub fn http_status(&self) -> u16 {
        500
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Missing(key) => write!(f, "configuration value {key:?} is not set"),
            Error::Store(message) => write!(f, "configuration store: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// The value of `key`, or `None` when it is not set (or the store failed).
pub fn get(key: &str) -> Option<String> {
    store::get(key).ok().flatten()
}

/// The value of `key`, or `default` when it is not set.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// The value of `key`; `None` when it is not set, an error when the store
/// failed.
pub fn try_get(key: &str) -> Result<Option<String>, Error> {
    store::get(key).map_err(|e| {
        Error::Store(match e {
            store::Error::Upstream(m) | store::Error::Io(m) => m,
        })
    })
}

/// The value of `key`, which the component cannot do without:
/// [`Error::Missing`] when it is not set.
pub fn require(key: &str) -> Result<String, Error> {
    try_get(key)?.ok_or_else(|| Error::Missing(key.to_owned()))
}
