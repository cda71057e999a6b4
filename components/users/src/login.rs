//! `POST /auth` `{"username", "password"}`: the seed 004 login. A user
//! created through `POST /users` with a password logs in with its username
//! (or its email) and gets a bearer token signed by the host, in the body
//! and as an `HttpOnly` cookie.
//!
//! - An unknown user and a wrong password get the same 401 after the same
//!   work: an unknown user's password is checked against the host's dummy
//!   hash (`verify-dummy`), so the timing tells nothing either.
//! - Failed logins are counted per username and per client address (the
//!   address the host saw, `x-corral-auth-client-addr`) in windows of
//!   [`WINDOW`]: from the [`MAX_FAILURES`]th on, either counter answers 429
//!   with `Retry-After` until its window ends, before any hashing. A
//!   successful login clears its username's counter.

use std::time::Duration;

use corral_sdk::http::{self, Request, Response};
use corral_sdk::kv::Bucket;
use corral_sdk::{passwords, tokens};
use serde_json::{Value, json};

use crate::store::{self, Unique};

/// Failed logins allowed per username and per client address in a window.
pub const MAX_FAILURES: u64 = 5;
/// How long failed logins are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);

const MAX_LOGIN_BYTES: usize = 254;
const MAX_PASSWORD_BYTES: usize = 1024;

/// The login and, when it succeeded, the user's id (for the log record).
pub fn login(request: &Request) -> (Option<String>, Result<Response, http::Error>) {
    match attempt(request) {
        Ok((id, response)) => (Some(id), Ok(response)),
        Err(error) => (None, Err(error)),
    }
}

fn attempt(request: &Request) -> Result<(String, Response), http::Error> {
    let body: Value = request.json_body()?;
    let login = text(&body, "username", MAX_LOGIN_BYTES)?.to_lowercase();
    let password = text(&body, "password", MAX_PASSWORD_BYTES)?;
    let bucket = store::open()?;
    let counters: Vec<String> = [
        Some(format!("login-fail:user:{login}")),
        tokens::client_addr(request).map(|a| format!("login-fail:addr:{a}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    for key in &counters {
        refuse_if_limited(&bucket, key)?;
    }
    let unique = match login.contains('@') {
        true => Unique::Email,
        false => Unique::Username,
    };
    let user = store::find(&bucket, unique, &login)?;
    let hash = user
        .as_ref()
        .and_then(|u| u["password_hash"].as_str())
        .map(str::to_owned);
    let valid = match &hash {
        Some(hash) => passwords::verify(password, hash)?,
        None => {
            passwords::verify_dummy(password)?;
            false
        }
    };
    let (true, Some(user)) = (valid, user) else {
        for key in &counters {
            count_failure(&bucket, key)?;
        }
        return Err(http::Error::new(
            401,
            "invalid_credentials",
            "unknown username or wrong password",
        ));
    };
    bucket.delete(&counters[0])?;
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    let username = user["username"].clone();
    let issued = tokens::issue(&id, Some(&json!({ "username": username })))?;
    let response = Response::json(
        200,
        &json!({
            "token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        }),
    )
    .with_header("set-cookie", &issued.set_cookie)
    .with_header("cache-control", "no-store");
    Ok((id, response))
}

/// A required, non-empty string field of at most `max` bytes.
fn text<'a>(body: &'a Value, field: &'static str, max: usize) -> Result<&'a str, http::Error> {
    let bad = |message: String| http::Error::new(400, "invalid", message).with_field(field);
    match body.get(field) {
        None | Some(Value::Null) => Err(bad(format!("{field} is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => Err(bad(format!("{field} is empty"))),
        Some(Value::String(s)) if s.len() > max => {
            Err(bad(format!("{field} is longer than {max} bytes")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

/// 429 once `key` counts [`MAX_FAILURES`] failures in its window.
fn refuse_if_limited(bucket: &Bucket, key: &str) -> Result<(), http::Error> {
    let failures: u64 = bucket
        .get_string(key)?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if failures < MAX_FAILURES {
        return Ok(());
    }
    let wait = bucket.ttl(key)?.unwrap_or(WINDOW);
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    Err(http::Error::new(
        429,
        "too_many_attempts",
        format!("too many failed logins; try again in {seconds} s"),
    )
    .with_header("retry-after", &seconds.to_string()))
}

/// Counts one failure in `key`'s window, which the first failure opens.
fn count_failure(bucket: &Bucket, key: &str) -> Result<(), http::Error> {
    bucket.set_if_absent(key, "0", Some(WINDOW))?;
    bucket.increment(key, 1)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_required_strings_within_limits() {
        let body = json!({ "username": "ada", "password": "", "n": 1, "long": "x".repeat(300) });
        assert_eq!(text(&body, "username", 254).unwrap(), "ada");
        for (field, max) in [
            ("password", 1024),
            ("missing", 10),
            ("n", 10),
            ("long", 254),
        ] {
            let error = Response::from(text(&body, field, max).unwrap_err());
            assert_eq!(error.status, 400);
            let json: Value = serde_json::from_slice(&error.body).unwrap();
            assert_eq!(json["error"]["field"], field, "{json}");
        }
    }
}
