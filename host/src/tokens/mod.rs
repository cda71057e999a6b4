//! Host-owned bearer tokens: HS256 JWTs the host issues and checks, with
//! the secret from `[auth]` (see [`settings`]) or generated into the state
//! folder ([`secret`]).
//!
//! The host owns them so that the secret never enters a component: the
//! `tokens` capability lets a granted component issue or verify tokens
//! through the host, the HTTP trigger's gateway checks them before a
//! request costs an instance, and `corral token issue` signs one for an
//! operator. All three share one [`Tokens`].

pub mod jwt;
pub mod secret;
pub mod settings;

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

pub use jwt::VerifyError;
pub use secret::SecretError;
pub use settings::AuthSettings;

/// Claims the host sets itself; extra claims may not name them.
pub const RESERVED_CLAIMS: &[&str] = &["sub", "iat", "exp", "iss", "aud", "nbf"];

/// Largest JSON of extra claims: the claims travel in every request's
/// headers.
pub const MAX_EXTRA_CLAIMS_BYTES: usize = 4096;

/// Longest subject, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// Why a token could not be issued or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("subject: {0}")]
    Subject(String),
    #[error("extra claims: {0}")]
    ExtraClaims(String),
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A token just issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The `Set-Cookie` value that carries it (see [`Tokens::cookie`]).
    pub set_cookie: String,
}

/// The claims of a token that passed every check.
#[derive(Debug, Clone)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// `sub`: checked present and a non-empty string.
    pub fn subject(&self) -> &str {
        self.0["sub"].as_str().expect("checked by jwt::decode")
    }

    /// The claims as compact JSON.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

/// The issuer and verifier of one host.
pub struct Tokens {
    settings: AuthSettings,
    key: OnceLock<jwt::Key>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Tokens {
    /// Does no I/O (`corral check` builds it too): a generated secret is
    /// read or made by [`Tokens::load_key`], or on first use.
    pub fn new(mut settings: AuthSettings) -> Self {
        let key = OnceLock::new();
        if let Some(secret) = settings.jwt_secret.take() {
            let _ = key.set(jwt::Key::new(secret.as_bytes()));
        }
        Self { settings, key }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The signing key, reading or generating `<state_dir>/jwt-secret` when
    /// the config sets no secret. The host calls it at start-up, so that a
    /// bad secret file stops the start instead of the first request.
    pub fn load_key(&self) -> Result<&jwt::Key, SecretError> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let secret = secret::load_or_generate(&self.settings.state_dir)?;
        // Another thread may have won: both read the same file.
        let _ = self.key.set(jwt::Key::new(&secret));
        Ok(self.key.get().expect("just set"))
    }

    /// Issues a token for `subject`, with `extra` claims (a JSON object)
    /// beside the standard ones.
    pub fn issue(&self, subject: &str, extra: Option<&str>) -> Result<Issued, TokenError> {
        self.issue_at(subject, extra, unix_now())
    }

    pub fn issue_at(
        &self,
        subject: &str,
        extra: Option<&str>,
        now: u64,
    ) -> Result<Issued, TokenError> {
        check_subject(subject)?;
        let mut claims = match extra {
            None => Map::new(),
            Some(json) => parse_extra(json)?,
        };
        let ttl = self.settings.ttl_secs;
        claims.insert("sub".into(), subject.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + ttl).into());
        claims.insert("iss".into(), self.settings.issuer.clone().into());
        claims.insert("aud".into(), self.settings.audience.clone().into());
        let token = jwt::encode(self.load_key()?, &claims);
        Ok(Issued {
            set_cookie: self.cookie(&token),
            token,
            expires_in: ttl,
        })
    }

    /// A `Set-Cookie` value for `token` in the `[auth]` cookie: script
    /// cannot read it (`HttpOnly`), other sites do not get it on
    /// cross-site posts (`SameSite=Lax`), it ends with the token, and it
    /// is HTTPS-only when `cookie_secure` says so.
    pub fn cookie(&self, token: &str) -> String {
        let s = &self.settings;
        let secure = if s.cookie_secure { "; Secure" } else { "" };
        format!(
            "{}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
            s.cookie_name, s.ttl_secs
        )
    }

    /// Checks `token`: HS256 only, signature, expiry, issuer, audience.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, unix_now())
    }

    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let expected = jwt::Expected {
            issuer: &self.settings.issuer,
            audience: &self.settings.audience,
            now,
        };
        Ok(Claims(jwt::decode(self.load_key()?, token, &expected)?))
    }
}

fn check_subject(subject: &str) -> Result<(), TokenError> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
        return Err(TokenError::Subject(format!(
            "must be 1 to {MAX_SUBJECT_BYTES} bytes"
        )));
    }
    if subject.chars().any(char::is_control) {
        return Err(TokenError::Subject(
            "must not contain control characters".into(),
        ));
    }
    Ok(())
}

fn parse_extra(json: &str) -> Result<Map<String, Value>, TokenError> {
    if json.len() > MAX_EXTRA_CLAIMS_BYTES {
        return Err(TokenError::ExtraClaims(format!(
            "are {} bytes; at most {MAX_EXTRA_CLAIMS_BYTES}",
            json.len()
        )));
    }
    let claims: Map<String, Value> = serde_json::from_str(json)
        .map_err(|e| TokenError::ExtraClaims(format!("not a JSON object: {e}")))?;
    if let Some(reserved) = claims
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return Err(TokenError::ExtraClaims(format!(
            "{reserved:?} is set by the host and may not be given"
        )));
    }
    Ok(claims)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn tokens() -> Tokens {
        Tokens::new(AuthSettings {
            jwt_secret: Some(SECRET.into()),
            ttl_secs: 60,
            ..AuthSettings::default()
        })
    }

    #[test]
    fn issued_tokens_carry_the_standard_and_extra_claims() {
        let tokens = tokens();
        let issued = tokens
            .issue_at("alice", Some(r#"{"role":"admin"}"#), 1000)
            .unwrap();
        assert_eq!(issued.expires_in, 60);
        assert_eq!(
            issued.set_cookie,
            format!(
                "token={}; HttpOnly; SameSite=Lax; Path=/; Max-Age=60",
                issued.token
            )
        );
        let secure = Tokens::new(AuthSettings {
            jwt_secret: Some(SECRET.into()),
            cookie_name: "session".into(),
            cookie_secure: true,
            ..AuthSettings::default()
        });
        assert!(secure.cookie("t").starts_with("session=t; HttpOnly"));
        assert!(secure.cookie("t").ends_with("Max-Age=3600; Secure"));
        let claims = tokens.verify_at(&issued.token, 1059).unwrap();
        assert_eq!(claims.subject(), "alice");
        for (name, value) in [
            ("iat", Value::from(1000)),
            ("exp", 1060.into()),
            ("iss", "corral".into()),
            ("aud", "corral".into()),
            ("role", "admin".into()),
        ] {
            assert_eq!(claims.get(name), Some(&value), "{name}");
        }
        assert!(matches!(
            tokens.verify_at(&issued.token, 1060),
            Err(TokenError::Invalid(VerifyError::Expired))
        ));
    }

    #[test]
    fn another_audience_or_issuer_refuses_the_token() {
        let issued = tokens().issue_at("alice", None, 1000).unwrap();
        let other = |settings: AuthSettings| {
            Tokens::new(AuthSettings {
                jwt_secret: Some(SECRET.into()),
                ..settings
            })
            .verify_at(&issued.token, 1001)
            .unwrap_err()
            .to_string()
        };
        let audience = other(AuthSettings {
            audience: "billing".into(),
            ..AuthSettings::default()
        });
        assert!(audience.contains("audience"), "{audience}");
        let issuer = other(AuthSettings {
            issuer: "elsewhere".into(),
            ..AuthSettings::default()
        });
        assert!(issuer.contains("issuer"), "{issuer}");
    }

    #[test]
    fn bad_subjects_and_extra_claims_are_refused() {
        let tokens = tokens();
        for subject in ["", "a\nb", &"x".repeat(MAX_SUBJECT_BYTES + 1)] {
            assert!(matches!(
                tokens.issue(subject, None),
                Err(TokenError::Subject(_))
            ));
        }
        for extra in [
            "[1]",
            "not json",
            r#"{"sub":"mallory"}"#,
            r#"{"exp":1}"#,
            &format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_EXTRA_CLAIMS_BYTES)),
        ] {
            assert!(
                matches!(
                    tokens.issue("alice", Some(extra)),
                    Err(TokenError::ExtraClaims(_))
                ),
                "{extra}"
            );
        }
    }

    #[test]
    fn without_a_secret_one_is_generated_into_the_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        let settings = AuthSettings {
            state_dir: dir.path().to_owned(),
            ..AuthSettings::default()
        };
        let first = Tokens::new(settings.clone());
        assert!(!secret::secret_file(dir.path()).exists(), "no I/O in new");
        let issued = first.issue("alice", None).unwrap();
        assert!(secret::secret_file(dir.path()).exists());
        // A restart (or the CLI) signs with the same key.
        let again = Tokens::new(settings);
        assert_eq!(again.verify(&issued.token).unwrap().subject(), "alice");
        assert!(!format!("{again:?}").contains(&issued.token));
    }
}
