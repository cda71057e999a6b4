//! The `[auth]` table: the token secret and the claims every token carries.
//!
//! ```toml
//! [auth]
//! jwt_secret = "${CORRAL_JWT_SECRET}"   # at least 32 bytes; unset: generated into the state folder
//! issuer = "corral"
//! audience = "corral"
//! ttl_secs = 3600
//! cookie_name = "token"
//! cookie_secure = false
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, Section, invalid, parse_env, template};

/// Shortest HS256 secret accepted: RFC 7518 asks for a key at least as long
/// as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest token lifetime accepted (30 days): a longer-lived bearer token
/// is a password that cannot be changed.
const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The HS256 secret. `${NAME}` takes it from the environment, and
    /// `CORRAL_JWT_SECRET` overrides it; unset, the host generates one into
    /// `<state_dir>/jwt-secret` on first start and keeps it there.
    pub jwt_secret: Option<String>,
    /// The `iss` claim issued and required.
    pub issuer: String,
    /// The `aud` claim issued and required.
    pub audience: String,
    /// Lifetime of an issued token (`exp - iat`), in seconds.
    pub ttl_secs: u64,
    /// The cookie a token may come in instead of `Authorization: Bearer`.
    pub cookie_name: String,
    /// Whether the login cookie is sent with `Secure` (HTTPS only).
    pub cookie_secure: bool,
    /// The state folder, where a generated secret lives (set by the host).
    #[serde(skip)]
    pub state_dir: PathBuf,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            issuer: "corral".to_owned(),
            audience: "corral".to_owned(),
            ttl_secs: 3600,
            cookie_name: "token".to_owned(),
            cookie_secure: false,
            state_dir: PathBuf::new(),
        }
    }
}

/// The secret stays out of logs and error messages.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .field("cookie_name", &self.cookie_name)
            .field("cookie_secure", &self.cookie_secure)
            .finish()
    }
}

impl Section for AuthSettings {
    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        if let Some(raw) = &self.jwt_secret {
            let secret = template::expand(raw, env)
                .map_err(|problem| invalid("auth.jwt_secret", problem.to_string()))?;
            self.jwt_secret = Some(secret);
        }
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_JWT_SECRET" if !value.is_empty() => self.jwt_secret = Some(value.clone()),
                "CORRAL_AUTH_COOKIE_SECURE" => self.cookie_secure = parse_env(var, value)?,
                "CORRAL_AUTH_TTL_SECS" => self.ttl_secs = parse_env(var, value)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, state_dir: &Path) {
        self.state_dir = state_dir.to_owned();
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.jwt_secret {
            check_secret(secret.as_bytes()).map_err(|p| invalid("auth.jwt_secret", p))?;
        }
        if self.issuer.is_empty() {
            return Err(invalid("auth.issuer", "must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(invalid("auth.audience", "must not be empty"));
        }
        if self.ttl_secs == 0 || self.ttl_secs > MAX_TTL_SECS {
            return Err(invalid(
                "auth.ttl_secs",
                format!("must be between 1 and {MAX_TTL_SECS} (30 days)"),
            ));
        }
        let cookie_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if self.cookie_name.is_empty() || !self.cookie_name.bytes().all(cookie_char) {
            return Err(invalid(
                "auth.cookie_name",
                format!("{:?} is not a cookie name", self.cookie_name),
            ));
        }
        Ok(())
    }
}

/// Why a secret is refused: too short to be an HS256 key.
pub fn check_secret(secret: &[u8]) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "is {} bytes; an HS256 secret needs at least {MIN_SECRET_BYTES} \
             (e.g. the output of `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn auth(text: &str, env: &[(&str, &str)]) -> Result<AuthSettings, ConfigError> {
        Config::for_tests(text, env).unwrap().section("auth")
    }

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_and_state_dir() {
        let settings = auth("", &[]).unwrap();
        assert_eq!(settings.jwt_secret, None);
        assert_eq!(
            (settings.issuer.as_str(), settings.audience.as_str()),
            ("corral", "corral")
        );
        assert_eq!(settings.ttl_secs, 3600);
        assert_eq!(settings.cookie_name, "token");
        assert!(!settings.cookie_secure);
        assert_eq!(settings.state_dir, PathBuf::from("/etc/corral/.corral"));
    }

    #[test]
    fn secret_from_a_reference_or_the_override() {
        let text = "[auth]\njwt_secret = \"${MY_SECRET}\"\n";
        let settings = auth(text, &[("MY_SECRET", LONG)]).unwrap();
        assert_eq!(settings.jwt_secret.as_deref(), Some(LONG));
        let err = auth(text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("auth.jwt_secret") && err.contains("MY_SECRET"),
            "{err}"
        );
        let other = format!("{LONG}-env");
        let settings = auth("", &[("CORRAL_JWT_SECRET", &other)]).unwrap();
        assert_eq!(settings.jwt_secret.as_deref(), Some(other.as_str()));
        assert!(!format!("{settings:?}").contains(LONG));
    }

    #[test]
    fn a_short_secret_is_refused_naming_the_field() {
        let err = auth("[auth]\njwt_secret = \"short\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.jwt_secret") && err.contains("5 bytes") && err.contains("32"),
            "{err}"
        );
        let err = auth("", &[("CORRAL_JWT_SECRET", "0123456789")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.jwt_secret"), "{err}");
    }

    #[test]
    fn bad_fields_are_named() {
        for (text, field) in [
            ("[auth]\nttl_secs = 0\n", "auth.ttl_secs"),
            ("[auth]\nissuer = \"\"\n", "auth.issuer"),
            ("[auth]\naudience = \"\"\n", "auth.audience"),
            ("[auth]\ncookie_name = \"a b\"\n", "auth.cookie_name"),
            ("[auth]\nttl = 5\n", "ttl"),
        ] {
            let err = auth(text, &[]).unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
    }
}
