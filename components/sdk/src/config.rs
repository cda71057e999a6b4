//! The component's configuration values (`[component.config]` in the host
//! config), read through `wasi:config/store`.

use crate::bindings::wasi::config::store;

/// The value of `key`, or `None` when it is not set (or the store failed).
pub fn get(key: &str) -> Option<String> {
    store::get(key).ok().flatten()
}

/// The value of `key`, or `default` when it is not set.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}
