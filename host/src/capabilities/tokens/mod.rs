//! The `tokens` capability: `corral:platform/tokens`, bearer tokens the
//! host signs with its own secret (see [`crate::tokens`]), lent to
//! components that may issue them (a login service) or check them.
//!
//! ```toml
//! [auth]
//! jwt_secret = "${CORRAL_JWT_SECRET}"
//!
//! [[component]]
//! name = "users"
//! grants.tokens = { issue = true }      # and/or verify = true
//! ```
//!
//! The secret never enters a component: the guest hands over a subject and
//! gets a token back, or hands over a token and gets its claims. The
//! capability owns the `[auth]` table; the HTTP trigger's gateway shares
//! the same [`Tokens`] (see [`TokensCapability::shared`]).

mod host;

use std::sync::Arc;

use serde::Deserialize;
use wasmtime::component::Linker;

use super::{Capability, CapabilityView, HostContext};
use crate::bindings::corral::platform::tokens as wit;
use crate::config::ComponentConfig;
use crate::tokens::{AuthSettings, TokenError, Tokens};

pub struct TokensCapability {
    tokens: Arc<Tokens>,
}

impl TokensCapability {
    /// The host's issuer and verifier, for the gateway and the CLI.
    pub fn shared(&self) -> Arc<Tokens> {
        self.tokens.clone()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// May call `issue`.
    #[serde(default)]
    pub issue: bool,
    /// May call `verify`.
    #[serde(default)]
    pub verify: bool,
}

/// A component's grant, shared by its instances.
pub struct TokenGrant {
    issue: bool,
    verify: bool,
    tokens: Arc<Tokens>,
}

/// The per-instance state.
pub struct TokensHandle(Arc<TokenGrant>);

impl Capability for TokensCapability {
    const NAME: &'static str = "tokens";
    const SECTION: Option<&'static str> = Some("auth");
    type Settings = AuthSettings;
    type Grant = Grant;
    type Prepared = TokenGrant;
    type Instance = TokensHandle;

    fn new(settings: AuthSettings, _host: &HostContext<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            tokens: Arc::new(Tokens::new(settings)),
        })
    }

    fn prepare(&self, component: &ComponentConfig, grant: Grant) -> anyhow::Result<TokenGrant> {
        if !grant.issue && !grant.verify {
            return Err(component
                .invalid(
                    "grants.tokens",
                    "grants nothing: set issue = true, verify = true, or both",
                )
                .into());
        }
        Ok(TokenGrant {
            issue: grant.issue,
            verify: grant.verify,
            tokens: self.tokens.clone(),
        })
    }

    fn instance(prepared: &Arc<TokenGrant>) -> TokensHandle {
        TokensHandle(prepared.clone())
    }

    fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
        host::add_to_linker(linker)
    }
}

impl TokenGrant {
    pub(crate) fn issue(
        &self,
        subject: &str,
        extra: Option<&str>,
    ) -> Result<wit::IssuedToken, wit::Error> {
        if !self.issue {
            return Err(wit::Error::NotGranted(
                "this component's grants.tokens does not set issue = true".into(),
            ));
        }
        let issued = self.tokens.issue(subject, extra).map_err(into_wit)?;
        Ok(wit::IssuedToken {
            token: issued.token,
            expires_in: issued.expires_in,
            set_cookie: issued.set_cookie,
        })
    }

    pub(crate) fn verify(&self, token: &str) -> Result<String, wit::Error> {
        if !self.verify {
            return Err(wit::Error::NotGranted(
                "this component's grants.tokens does not set verify = true".into(),
            ));
        }
        let claims = self.tokens.verify(token).map_err(into_wit)?;
        Ok(claims.to_json())
    }
}

fn into_wit(error: TokenError) -> wit::Error {
    match error {
        TokenError::Subject(_) | TokenError::ExtraClaims(_) => {
            wit::Error::Invalid(error.to_string())
        }
        TokenError::Invalid(e) => wit::Error::InvalidToken(e.to_string()),
        TokenError::Secret(e) => {
            tracing::error!(error = %e, "token secret unavailable");
            wit::Error::Unavailable("the host's token secret is unavailable".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn grant(issue: bool, verify: bool) -> TokenGrant {
        TokenGrant {
            issue,
            verify,
            tokens: Arc::new(Tokens::new(AuthSettings {
                jwt_secret: Some("0123456789abcdef0123456789abcdef".into()),
                ..AuthSettings::default()
            })),
        }
    }

    #[test]
    fn each_call_needs_its_half_of_the_grant() {
        let issued = grant(true, false).issue("alice", None).unwrap();
        assert!(matches!(
            grant(true, false).verify(&issued.token),
            Err(wit::Error::NotGranted(_))
        ));
        assert!(matches!(
            grant(false, true).issue("alice", None),
            Err(wit::Error::NotGranted(_))
        ));
        let claims = grant(false, true).verify(&issued.token).unwrap();
        let claims: serde_json::Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(claims["sub"], "alice");
    }

    #[test]
    fn refusals_map_to_the_wit_errors() {
        let both = grant(true, true);
        assert!(matches!(
            both.issue("", None),
            Err(wit::Error::Invalid(m)) if m.contains("subject")
        ));
        assert!(matches!(
            both.issue("a", Some(r#"{"aud":"x"}"#)),
            Err(wit::Error::Invalid(m)) if m.contains("aud")
        ));
        assert!(matches!(
            both.verify("nope"),
            Err(wit::Error::InvalidToken(m)) if m.contains("malformed")
        ));
    }

    #[test]
    fn an_empty_or_unknown_grant_is_refused_naming_the_field() {
        let config = Config::for_tests(
            "[[component]]\nname = \"c\"\nwasm = \"c.wasm\"\nroutes = [\"/c\"]\n",
            &[],
        )
        .unwrap();
        let capability = TokensCapability {
            tokens: grant(true, true).tokens,
        };
        let component = &config.components[0];
        let err = capability
            .prepare(component, Grant::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("grants.tokens"), "{err}");
        let parsed: Result<Grant, _> =
            component.parse_table("grants.tokens", &toml::from_str("issu = true").unwrap());
        let err = parsed.unwrap_err().to_string();
        assert!(
            err.contains("grants.tokens") && err.contains("issu"),
            "{err}"
        );
    }
}
