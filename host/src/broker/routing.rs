//! Which queues a message published to an exchange reaches, with AMQP
//! 0-9-1's rules, so that the embedded backend routes exactly as RabbitMQ
//! does (and configuration can be checked the same way):
//!
//! * `direct`: a binding matches when its key equals the routing key;
//! * `topic`: keys are dot-separated words; in a binding key `*` stands for
//!   exactly one word and `#` for zero or more words (`user.*` matches
//!   `user.created` but neither `user` nor `user.a.b`; `user.#` matches all
//!   three). An empty routing key has no words at all;
//! * `fanout`: every binding matches, whatever the key.
//!
//! A queue bound several times gets one copy, as on RabbitMQ.

use serde::Deserialize;

use super::PublishError;

/// Longest exchange name, routing key or binding key (AMQP short strings).
pub const MAX_KEY: usize = 255;

/// How an exchange matches routing keys to bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    Direct,
    Topic,
    Fanout,
}

impl ExchangeKind {
    /// Whether a binding with `binding_key` takes a message published with
    /// `routing_key`.
    pub fn matches(self, binding_key: &str, routing_key: &str) -> bool {
        match self {
            Self::Direct => binding_key == routing_key,
            Self::Fanout => true,
            Self::Topic => topic_matches(binding_key, routing_key),
        }
    }

    /// Why `binding_key` is not a sensible key for this kind, if it is not.
    ///
    /// RabbitMQ takes `user*` as the literal word `user*`; a wildcard that
    /// is not a whole word is far more likely a typo, so it is refused. A
    /// fanout exchange ignores keys: one given anyway would mislead.
    pub fn check_binding_key(self, binding_key: &str) -> Result<(), BindingKeyError> {
        if binding_key.len() > MAX_KEY {
            return Err(BindingKeyError::TooLong);
        }
        match self {
            Self::Direct => Ok(()),
            Self::Fanout if binding_key.is_empty() => Ok(()),
            Self::Fanout => Err(BindingKeyError::FanoutKey),
            Self::Topic => {
                let partial = words(binding_key)
                    .any(|w| w != "*" && w != "#" && (w.contains('*') || w.contains('#')));
                if partial {
                    Err(BindingKeyError::PartialWildcard(binding_key.to_owned()))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Why a binding key does not suit its exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingKeyError {
    #[error("is longer than {MAX_KEY} bytes")]
    TooLong,
    #[error("a fanout exchange ignores keys: leave it out")]
    FanoutKey,
    #[error("{0:?}: `*` and `#` must be whole dot-separated words")]
    PartialWildcard(String),
}

/// The words of a topic key; an empty key has none.
fn words(key: &str) -> impl Iterator<Item = &str> {
    (!key.is_empty())
        .then(|| key.split('.'))
        .into_iter()
        .flatten()
}

/// Topic matching by dynamic programming over (pattern word, key word)
/// positions: linear in their product, whatever the number of `#`s (a
/// naive backtracking match is exponential in them).
fn topic_matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = words(pattern).collect();
    let key: Vec<&str> = words(key).collect();
    // `rest[j]`: whether pattern[i..] matches key[j..], for the current `i`
    // (filled from the last pattern word backwards).
    let mut rest = vec![false; key.len() + 1];
    rest[key.len()] = true;
    for word in pattern.iter().rev() {
        let mut here = vec![false; key.len() + 1];
        for j in (0..=key.len()).rev() {
            here[j] = match *word {
                // Zero words (skip the `#`), or one more word for it.
                "#" => rest[j] || (j < key.len() && here[j + 1]),
                "*" => j < key.len() && rest[j + 1],
                literal => j < key.len() && key[j] == literal && rest[j + 1],
            };
        }
        rest = here;
    }
    rest[0]
}

/// Checks a routing key a component publishes with (both backends, so
/// that a key RabbitMQ would refuse is refused by the embedded queue too).
pub fn check_routing_key(routing_key: &str) -> Result<(), PublishError> {
    if routing_key.len() > MAX_KEY {
        return Err(PublishError::Invalid(format!(
            "the routing key is longer than {MAX_KEY} bytes"
        )));
    }
    Ok(())
}

/// The distinct queues among `bindings` (queue, binding key) that take a
/// message published with `routing_key`, in binding order.
pub fn route<'a>(
    kind: ExchangeKind,
    bindings: impl IntoIterator<Item = (&'a str, &'a str)>,
    routing_key: &str,
) -> Vec<&'a str> {
    let mut queues: Vec<&str> = Vec::new();
    for (queue, binding_key) in bindings {
        if kind.matches(binding_key, routing_key) && !queues.contains(&queue) {
            queues.push(queue);
        }
    }
    queues
}

#[cfg(test)]
mod tests {
    use super::ExchangeKind::{Direct, Fanout, Topic};
    use super::*;

    #[test]
    fn direct_compares_whole_keys() {
        assert!(Direct.matches("user.created", "user.created"));
        assert!(!Direct.matches("user.*", "user.created"));
        assert!(!Direct.matches("user", "user.created"));
        assert!(Direct.matches("", ""));
    }

    #[test]
    fn fanout_takes_everything() {
        assert!(Fanout.matches("", "anything"));
        assert!(Fanout.matches("", ""));
    }

    #[test]
    fn star_is_exactly_one_word() {
        assert!(Topic.matches("user.*", "user.created"));
        assert!(!Topic.matches("user.*", "user"));
        assert!(!Topic.matches("user.*", "user.a.b"));
        assert!(Topic.matches("*.created", "order.created"));
        assert!(Topic.matches("*", "x"));
        assert!(!Topic.matches("*", ""));
        // An empty word is still a word.
        assert!(Topic.matches("user.*", "user."));
    }

    #[test]
    fn hash_is_zero_or_more_words() {
        assert!(Topic.matches("#", ""));
        assert!(Topic.matches("#", "a.b.c"));
        assert!(Topic.matches("user.#", "user"));
        assert!(Topic.matches("user.#", "user.created"));
        assert!(Topic.matches("user.#", "user.a.b"));
        assert!(!Topic.matches("user.#", "order.created"));
        assert!(Topic.matches("#.created", "created"));
        assert!(Topic.matches("#.created", "a.b.created"));
        assert!(!Topic.matches("#.created", "a.created.b"));
        assert!(Topic.matches("a.#.z", "a.z"));
        assert!(Topic.matches("a.#.z", "a.b.c.z"));
        assert!(Topic.matches("#.#", "a"));
        assert!(Topic.matches("a.#.*", "a.b"));
        assert!(!Topic.matches("a.#.*", "a"));
    }

    #[test]
    fn literal_topic_words_compare_exactly() {
        assert!(Topic.matches("user.created", "user.created"));
        assert!(!Topic.matches("user.created", "user.created.x"));
        assert!(!Topic.matches("user.created", "user"));
        assert!(!Topic.matches("", "user"));
        assert!(Topic.matches("", ""));
    }

    #[test]
    fn many_hashes_stay_fast() {
        let pattern = vec!["#"; 60].join(".") + ".x";
        let key = vec!["a"; 120].join(".");
        assert!(!Topic.matches(&pattern, &key));
    }

    #[test]
    fn route_lists_each_matching_queue_once() {
        let bindings = [
            ("audit", "user.*"),
            ("mail", "user.created"),
            ("audit", "#"),
            ("billing", "order.#"),
        ];
        assert_eq!(route(Topic, bindings, "user.created"), ["audit", "mail"]);
        assert_eq!(route(Topic, bindings, "order.paid"), ["audit", "billing"]);
        let strict = [("audit", "user.*"), ("mail", "user.created")];
        assert!(route(Topic, strict, "order.x").is_empty());
        assert_eq!(route(Fanout, [("a", ""), ("b", "")], "x"), ["a", "b"]);
        assert_eq!(route(Direct, [("a", "k"), ("b", "j")], "j"), ["b"]);
    }

    #[test]
    fn binding_keys_are_checked_per_kind() {
        assert!(Topic.check_binding_key("user.*").is_ok());
        assert!(Topic.check_binding_key("#").is_ok());
        assert!(Topic.check_binding_key("user*").is_err());
        assert!(Topic.check_binding_key("a.b#").is_err());
        assert!(Direct.check_binding_key("user*").is_ok());
        assert!(Fanout.check_binding_key("").is_ok());
        assert!(Fanout.check_binding_key("k").is_err());
        assert!(Direct.check_binding_key(&"k".repeat(256)).is_err());
    }
}
