//! What the `Debug` output of configuration types shows of secrets: nothing.
//!
//! Settings end up in `{:?}` (error reports, `tracing` fields, a `dbg!`
//! during a debugging session), and several hold secrets: the admin token,
//! passwords inside backend URLs, `${NAME}` values filled in from the
//! environment. Each such type writes its `Debug` by hand with these
//! helpers, so a secret cannot reach a log by being printed.

use std::collections::BTreeMap;
use std::fmt;

/// Shown in place of a secret.
pub const HIDDEN: &str = "***";

/// `url` with the password of its user info hidden:
/// `amqp://guest:guest@rabbit:5672/%2f` → `amqp://guest:***@rabbit:5672/%2f`.
/// A URL without a password is returned as it is.
pub fn url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:{HIDDEN}{}",
        &url[..scheme_end],
        &user_info[..colon],
        &rest[at..]
    )
}

/// A secret that may be unset: `Some("***")` or `None`.
pub fn optional(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| HIDDEN)
}

/// A map of values that may hold secrets (a component's `env` and `config`
/// tables, where `${NAME}` was replaced): its keys, every value hidden.
pub struct Values<'a>(pub &'a BTreeMap<String, String>);

impl fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|key| (key, HIDDEN)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            url("amqp://guest:s3cret@rabbit:5672/%2f"),
            "amqp://guest:***@rabbit:5672/%2f"
        );
        assert_eq!(
            url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        // An `@` in the path is not user info.
        assert_eq!(url("http://h/a@b:c"), "http://h/a@b:c");
        assert_eq!(url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(url("redis://user@h"), "redis://user@h");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn values_show_keys_only() {
        let values = BTreeMap::from([("API_KEY".to_owned(), "abc123".to_owned())]);
        assert_eq!(format!("{:?}", Values(&values)), r#"{"API_KEY": "***"}"#);
    }
}
