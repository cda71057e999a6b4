//! A user: what a client may send, how it is checked, what is stored and
//! what is shown.
//!
//! Client fields: `name` (required, 1-200 characters), `email` (required,
//! at most 254 bytes, `local@domain.tld`; stored lower-case, unique),
//! `username` (optional, 3-32 of `a-z 0-9 . _ -`, starting with a letter
//! or digit; stored lower-case, unique; the login name), `password`
//! (optional, 8 characters to 1024 bytes; stored only as an argon2id hash,
//! never shown). Server fields: `id`, `created_at`, `updated_at`,
//! `version` (1, then +1 per change; the ETag), `has_password`. They are
//! refused on create; an update may carry them back (as `GET` gave them)
//! and they are ignored, except an `id` other than the user's. Any other
//! field (`password_hash` included) is an error.
//!
//! On `PUT` a missing `username` removes it; on `PATCH` only the fields
//! given change. Either way a missing `password` keeps the current one and
//! `"password": null` removes it.

use serde_json::{Map, Value, json};

pub const MAX_NAME: usize = 200;
pub const MAX_EMAIL: usize = 254;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = corral_sdk::passwords::MAX_PASSWORD_BYTES;
const SERVER_FIELDS: [&str; 5] = ["id", "created_at", "updated_at", "version", "has_password"];
const CLIENT_FIELDS: [&str; 4] = ["name", "email", "username", "password"];

/// Why a body was refused: an error code (`missing_field`,
/// `unknown_field`, `read_only_field`, `invalid`), the field and what is
/// wrong (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

pub fn problem(field: &str, message: impl Into<String>) -> Problem {
    coded("invalid", field, message)
}

fn coded(code: &'static str, field: &str, message: impl Into<String>) -> Problem {
    Problem {
        code,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// What a request asks to change; `None`: leave as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub name: Option<String>,
    pub email: Option<String>,
    /// `Some(None)`: remove the username.
    pub username: Option<Option<String>>,
    /// `Some(None)`: remove the password; `Some(Some(p))`: hash `p`.
    pub password: Option<Option<String>>,
}

/// How a body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    /// `PUT /users/{id}`: the whole user.
    Replace,
    /// `PATCH /users/{id}`: some fields.
    Patch,
}

/// Checks a request body; `id` is the user's for an update.
pub fn check(body: &Value, mode: Mode, id: Option<&str>) -> Result<Changes, Problem> {
    let Value::Object(map) = body else {
        return Err(problem("body", "a user is a JSON object"));
    };
    for key in map.keys() {
        if !CLIENT_FIELDS.contains(&key.as_str()) && !SERVER_FIELDS.contains(&key.as_str()) {
            return Err(coded(
                "unknown_field",
                key,
                format!(
                    "unknown field {key:?}; a user has {}",
                    CLIENT_FIELDS.join(", ")
                ),
            ));
        }
    }
    if mode == Mode::Create {
        if let Some(field) = SERVER_FIELDS.iter().find(|f| map.contains_key(**f)) {
            return Err(coded(
                "read_only_field",
                field,
                format!("{field} is set by the server; leave it out"),
            ));
        }
    } else if let Some(given) = map.get("id").filter(|v| !v.is_null()) {
        if Some(given.as_str().unwrap_or_default()) != id {
            return Err(problem(
                "id",
                format!("id {given} in the body is not the user's id"),
            ));
        }
    }
    let required = mode != Mode::Patch;
    let name = match map.get("name") {
        None if !required => None,
        value => Some(name(value)?),
    };
    let email = match map.get("email") {
        None if !required => None,
        value => Some(email(value)?),
    };
    let username = match map.get("username") {
        None if mode == Mode::Patch => None,
        None | Some(Value::Null) => Some(None),
        Some(value) => Some(Some(username(value)?)),
    };
    let password = match map.get("password") {
        None => None,
        Some(Value::Null) if mode == Mode::Create => None,
        Some(Value::Null) => Some(None),
        Some(value) => Some(Some(password(value)?)),
    };
    Ok(Changes {
        name,
        email,
        username,
        password,
    })
}

fn string<'a>(value: Option<&'a Value>, field: &str) -> Result<&'a str, Problem> {
    match value {
        None | Some(Value::Null) => Err(coded(
            "missing_field",
            field,
            format!("{field} is required"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(problem(field, format!("{field} must be a string"))),
    }
}

fn name(value: Option<&Value>) -> Result<String, Problem> {
    let name = string(value, "name")?.trim();
    if name.is_empty() {
        return Err(problem("name", "name must not be empty"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME {
        return Err(problem(
            "name",
            format!("name is {chars} characters long; the limit is {MAX_NAME}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(problem("name", "name must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// A practical address check (not RFC 5322's every corner): one `@`, a
/// local part of 1-64 printable characters without spaces, a domain of
/// dot-separated labels of letters, digits and hyphens with at least two
/// labels. Stored lower-case: addresses compare case-insensitively.
pub fn email(value: Option<&Value>) -> Result<String, Problem> {
    let email = string(value, "email")?.trim().to_lowercase();
    let bad = |why: &str| problem("email", format!("email is not a valid address: {why}"));
    if email.is_empty() {
        return Err(problem("email", "email must not be empty"));
    }
    if email.len() > MAX_EMAIL {
        return Err(bad(&format!("longer than {MAX_EMAIL} bytes")));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad("it has no @"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the part before @ must be 1 to 64 characters"));
    }
    if local.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']'
            )
    }) {
        return Err(bad("the part before @ has a character addresses do not"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(bad("the domain must be like example.com"));
    }
    Ok(email)
}

/// 3-32 of `a-z 0-9 . _ -`, starting with a letter or digit; lower-cased.
pub fn username(value: &Value) -> Result<String, Problem> {
    let username = string(Some(value), "username")?.trim().to_lowercase();
    let chars = username.chars().count();
    if !(3..=32).contains(&chars) {
        return Err(problem(
            "username",
            format!("username must be 3 to 32 characters, not {chars}"),
        ));
    }
    if !username.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(problem(
            "username",
            "username may hold only a-z, 0-9, '.', '_' and '-', and starts with a letter or digit",
        ));
    }
    Ok(username)
}

/// 8 characters to 1024 bytes. The messages never repeat it.
fn password(value: &Value) -> Result<String, Problem> {
    let Value::String(password) = value else {
        return Err(problem("password", "password must be a string"));
    };
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(problem(
            "password",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters, not {chars}"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(problem(
            "password",
            format!(
                "password is {} bytes long; the limit is {MAX_PASSWORD_BYTES}",
                password.len()
            ),
        ));
    }
    Ok(password.clone())
}

/// The stored user: the shown fields plus `password_hash`.
pub fn stored(
    id: &str,
    fields: &Changes,
    password_hash: Option<&str>,
    created_at: &str,
    updated_at: &str,
    version: u64,
) -> Value {
    json!({
        "id": id,
        "name": fields.name,
        "email": fields.email,
        "username": fields.username.clone().flatten(),
        "password_hash": password_hash,
        "created_at": created_at,
        "updated_at": updated_at,
        "version": version,
    })
}

/// What clients see: never the hash, only whether there is one.
pub fn public(stored: &Value) -> Value {
    let mut map: Map<String, Value> = stored.as_object().cloned().unwrap_or_default();
    let hash = map.remove("password_hash");
    map.insert(
        "has_password".into(),
        hash.is_some_and(|h| h.is_string()).into(),
    );
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({"name": " Ada Lovelace ", "email": "Ada@Example.COM", "username": "Ada_L",
               "password": "correct horse"})
    }

    fn err(v: Value, mode: Mode) -> Problem {
        check(&v, mode, Some("ID")).unwrap_err()
    }

    #[test]
    fn a_good_user_is_normalised_and_never_shows_its_hash() {
        let c = check(&body(), Mode::Create, None).unwrap();
        assert_eq!(c.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(c.email.as_deref(), Some("ada@example.com"));
        assert_eq!(c.username, Some(Some("ada_l".into())));
        assert_eq!(c.password, Some(Some("correct horse".into())));
        let stored = stored("ID", &c, Some("$argon2id$x"), "c", "u", 1);
        let shown = public(&stored);
        assert!(shown.get("password_hash").is_none());
        assert_eq!(shown["has_password"], true);
        assert!(!shown.to_string().contains("argon2"));
        let no_pw = public(&super::stored("ID", &c, None, "c", "u", 1));
        assert_eq!(no_pw["has_password"], false);
        // A GET body sent back with PUT is accepted.
        let back = check(&shown, Mode::Replace, Some("ID")).unwrap();
        assert_eq!(back.password, None, "no password: keep it");
    }

    #[test]
    fn patch_changes_only_what_it_names_and_put_replaces() {
        let p = check(&json!({"name": "B"}), Mode::Patch, Some("ID")).unwrap();
        assert_eq!(
            p,
            Changes {
                name: Some("B".into()),
                ..Changes::default()
            }
        );
        let p = check(
            &json!({"username": null, "password": null}),
            Mode::Patch,
            Some("ID"),
        )
        .unwrap();
        assert_eq!((p.username, p.password), (Some(None), Some(None)));
        let r = check(
            &json!({"name": "B", "email": "b@x.io"}),
            Mode::Replace,
            Some("ID"),
        )
        .unwrap();
        assert_eq!((r.username, r.password), (Some(None), None));
        assert_eq!(err(json!({"email": "b@x.io"}), Mode::Replace).field, "name");
        assert_eq!(
            err(json!({"name": null}), Mode::Patch).code,
            "missing_field"
        );
    }

    #[test]
    fn problems_name_their_field_and_never_echo_the_password() {
        let with = |k: &str, v: Value| {
            let mut b = body();
            b[k] = v;
            err(b, Mode::Create)
        };
        assert_eq!(with("name", json!("  ")).field, "name");
        assert_eq!(with("name", json!("n".repeat(201))).field, "name");
        assert_eq!(with("name", json!(7)).field, "name");
        for bad in [
            "", "plain", "a@b", "@b.io", "a b@c.io", "a@-b.io", "a@b..io", "a@b.io x",
        ] {
            assert_eq!(with("email", json!(bad)).field, "email", "{bad}");
        }
        assert_eq!(
            with("email", json!(format!("{}@b.io", "a".repeat(65)))).field,
            "email"
        );
        for bad in ["ab", "-abc", "a b c", "ädam", &"a".repeat(33)] {
            assert_eq!(with("username", json!(bad)).field, "username", "{bad}");
        }
        let short = with("password", json!("secret7"));
        assert_eq!(short.field, "password");
        assert!(!short.message.contains("secret7"), "{}", short.message);
        let long = with("password", json!("p".repeat(1025)));
        assert!(long.message.contains("1025") && !long.message.contains("ppp"));
        assert_eq!(with("password", json!(12345678)).field, "password");
        assert_eq!(with("password_hash", json!("x")).code, "unknown_field");
        assert_eq!(with("id", json!("x")).code, "read_only_field");
        assert_eq!(with("has_password", json!(true)).code, "read_only_field");
        let mut b = body();
        b.as_object_mut().unwrap().remove("email");
        let e = err(b, Mode::Create);
        assert_eq!((e.code, e.field.as_str()), ("missing_field", "email"));
        let mut b = body();
        b["id"] = "other".into();
        assert_eq!(err(b, Mode::Replace).field, "id");
        assert_eq!(err(json!([1]), Mode::Create).field, "body");
        assert!(
            check(
                &json!({"name": "A", "email": "a@b.io", "password": null}),
                Mode::Create,
                None
            )
            .is_ok()
        );
    }
}
