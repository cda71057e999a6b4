//! Gateway auth: the host checks a request's bearer token before the
//! request costs an instance slot or an instantiation.
//!
//! ```toml
//! [[component]]
//! name = "catalog"
//! routes = ["/products"]
//! auth = { jwt = true }                                   # every request
//! # auth = { jwt = true, methods = ["POST", "PUT", "DELETE"] }   # writes only
//! # auth = { jwt = true, paths = ["/products/admin"] }           # some routes
//! ```
//!
//! The token comes in `Authorization: Bearer <token>` or in the `[auth]`
//! cookie (`cookie_name`, `token` by default); the header wins when both
//! are there. A missing token is a 401 with `WWW-Authenticate: Bearer
//! realm="corral"`; a refused one (see [`crate::tokens::jwt`]) a 401 whose
//! `WWW-Authenticate` adds `error="invalid_token"`.
//!
//! Whatever the component, incoming `x-corral-auth-*` headers are removed,
//! so a client cannot forge them; on success the host sets
//! `x-corral-auth-sub` (the subject) and `x-corral-auth-claims` (every
//! claim, as JSON) for the component, and names the subject as the
//! request's verified user (`access_log::set_user`) for the access log.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use serde::Deserialize;

use crate::config::{ComponentConfig, ConfigError, normalize_route};
use crate::responses::HostError;
use crate::server::Peer;
use crate::tokens::{TokenError, Tokens};

/// The prefix of the headers only the host may set.
const RESERVED_PREFIX: &str = "x-corral-auth-";
pub const SUB_HEADER: HeaderName = HeaderName::from_static("x-corral-auth-sub");
pub const CLAIMS_HEADER: HeaderName = HeaderName::from_static("x-corral-auth-claims");
/// The client's IP address as the host saw the connection (set on every
/// request; a client's own is removed with the other `x-corral-auth-*`).
pub const CLIENT_ADDR_HEADER: HeaderName = HeaderName::from_static("x-corral-auth-client-addr");

/// A component's `auth` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthTable {
    jwt: bool,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
}

/// Which of a component's requests need a token.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Empty: every method.
    methods: Vec<Method>,
    /// Path prefixes, normalised; empty: every path.
    paths: Vec<String>,
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl AuthPolicy {
    /// Parses and checks `component`'s `auth` table; `None` without one
    /// (or with `jwt = false`). Errors name the component and the field.
    pub fn from_component(component: &ComponentConfig) -> Result<Option<Self>, ConfigError> {
        let Some(table) = &component.auth else {
            return Ok(None);
        };
        let table: AuthTable = component.parse_table("auth", table)?;
        if !table.jwt {
            if !table.methods.is_empty() || !table.paths.is_empty() {
                return Err(
                    component.invalid("auth", "methods and paths only apply with jwt = true")
                );
            }
            return Ok(None);
        }
        if component.routes.is_empty() {
            return Err(component.invalid(
                "auth",
                "gateway auth guards HTTP routes, and the component has none",
            ));
        }
        let mut methods = Vec::new();
        for method in &table.methods {
            let upper = method.to_ascii_uppercase();
            if !METHODS.contains(&upper.as_str()) {
                return Err(component.invalid(
                    "auth.methods",
                    format!("{method:?} is not one of {}", METHODS.join(", ")),
                ));
            }
            methods.push(Method::from_bytes(upper.as_bytes()).expect("a known method"));
        }
        let mut paths = Vec::new();
        for path in &table.paths {
            let normalized = normalize_route(path);
            let routed = component
                .routes
                .iter()
                .any(|route| under(&normalized, &normalize_route(route)));
            if !path.starts_with('/') || !routed {
                return Err(component.invalid(
                    "auth.paths",
                    format!("{path:?} is not under one of the component's routes"),
                ));
            }
            paths.push(normalized);
        }
        Ok(Some(Self { methods, paths }))
    }

    fn applies(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && (self.paths.is_empty() || self.paths.iter().any(|p| under(path, p)))
    }
}

/// Whether `path` is `prefix` or below it (the router's rule).
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The gateway: each component's policy and the host's verifier.
#[derive(Default)]
pub struct Gateway {
    policies: HashMap<String, AuthPolicy>,
    tokens: Option<Arc<Tokens>>,
}

impl Gateway {
    pub fn new(policies: HashMap<String, AuthPolicy>, tokens: Arc<Tokens>) -> Self {
        Self {
            policies,
            tokens: Some(tokens),
        }
    }

    /// Removes forged `x-corral-auth-*` headers, then, where `component`'s
    /// policy asks for it, checks the token and passes its claims on.
    pub fn admit<B>(&self, component: &str, request: &mut Request<B>) -> Result<(), HostError> {
        strip_reserved(request.headers_mut());
        // The connection's address, for a component's per-client limits
        // (a login's failed attempts): from the socket, never a header.
        if let Some(Peer(peer)) = request.extensions().get::<Peer>().copied() {
            let value = HeaderValue::from_str(&peer.ip().to_string())
                .expect("an IP address is a valid header value");
            request.headers_mut().insert(CLIENT_ADDR_HEADER, value);
        }
        let Some(policy) = self.policies.get(component) else {
            return Ok(());
        };
        if !policy.applies(request.method(), request.uri().path()) {
            return Ok(());
        }
        let tokens = self
            .tokens
            .as_ref()
            .expect("a gateway with policies has a verifier");
        let cookie = &tokens.settings().cookie_name;
        let Some(token) =
            bearer(request.headers()).or_else(|| cookie_value(request.headers(), cookie))
        else {
            return Err(HostError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                format!(
                    "this route needs a token: send `Authorization: Bearer <token>` or the {cookie:?} cookie"
                ),
            )
            .component(component)
            .header(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="corral""#)));
        };
        let claims = tokens.verify(token).map_err(|e| refused(component, &e))?;
        let sub = HeaderValue::from_str(claims.subject());
        let all = HeaderValue::from_bytes(claims.to_json().as_bytes());
        let (Ok(sub), Ok(all)) = (sub, all) else {
            let e = TokenError::Invalid(crate::tokens::VerifyError::Claim("sub"));
            return Err(refused(component, &e));
        };
        let subject = claims.subject().to_owned();
        let headers = request.headers_mut();
        headers.insert(SUB_HEADER, sub);
        headers.insert(CLAIMS_HEADER, all);
        // The access log's `user_id` (and anyone else's in the host).
        crate::access_log::set_user(request, subject);
        Ok(())
    }
}

fn refused(component: &str, error: &TokenError) -> HostError {
    if let TokenError::Secret(e) = error {
        tracing::error!(error = %e, "token secret unavailable");
        return HostError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "the host cannot check tokens right now",
        )
        .component(component);
    }
    let description: String = error
        .to_string()
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || !c.is_ascii() || c.is_ascii_control() {
                '\''
            } else {
                c
            }
        })
        .collect();
    let challenge = format!(
        r#"Bearer realm="corral", error="invalid_token", error_description="{description}""#
    );
    HostError::new(StatusCode::UNAUTHORIZED, "invalid_token", error.to_string())
        .component(component)
        .header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).expect("sanitised to visible ASCII"),
        )
}

fn strip_reserved(headers: &mut HeaderMap) {
    let forged = |name: &HeaderName| name.as_str().starts_with(RESERVED_PREFIX);
    if headers.keys().any(forged) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| forged(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
}

/// The token of `Authorization: Bearer <token>`; another scheme is not a
/// bearer token (the cookie may still carry one).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of cookie `name` in any `Cookie` header.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            let v = v.trim().trim_matches('"');
            (k.trim() == name && !v.is_empty()).then_some(v)
        })
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
