//! `token-probe`: a test component that exposes the `tokens` capability and
//! what the gateway passes on, so end-to-end tests can drive them through
//! the real host.
//!
//! Routes:
//! - `POST /token-probe/issue?sub=S` (body: extra claims as a JSON object,
//!   or empty) → `{"token", "token_type": "Bearer", "expires_in"}`
//! - `GET  /token-probe/verify?token=T` → the token's claims
//! - `GET  /token-probe/whoami` → `{"sub", "claims", "auth_headers"}`: the
//!   gateway's `x-corral-auth-*` headers as the component sees them
//!
//! A token error answers the platform's JSON error with 403
//! (`not_granted`), 400 (`invalid`), 401 (`invalid_token`) or 503.

use corral_sdk::http::{Error, Handler, Request, Response};
use corral_sdk::tokens;
use serde_json::json;

struct Probe;

impl Handler for Probe {
    fn handle(request: Request) -> Result<Response, Error> {
        let route = request.path.trim_start_matches("/token-probe");
        match (request.method.as_str(), route) {
            ("POST", "/issue") => {
                let sub = request.required_query_param("sub")?;
                let extra: Option<serde_json::Value> = if request.body.is_empty() {
                    None
                } else {
                    Some(request.json()?)
                };
                let issued = tokens::issue(&sub, extra.as_ref())?;
                Ok(Response::json(
                    200,
                    &json!({
                        "token": issued.token,
                        "token_type": "Bearer",
                        "expires_in": issued.expires_in,
                    }),
                )
                .with_header("set-cookie", &issued.set_cookie))
            }
            ("GET", "/verify") => {
                let token = request.required_query_param("token")?;
                Ok(Response::json(200, &tokens::verify(&token)?))
            }
            ("GET", "/whoami") => {
                let auth_headers: Vec<_> = request
                    .headers
                    .iter()
                    .filter(|(name, _)| name.to_ascii_lowercase().starts_with("x-corral-auth-"))
                    .map(|(name, value)| json!([name, String::from_utf8_lossy(value)]))
                    .collect();
                Ok(Response::json(
                    200,
                    &json!({
                        "sub": tokens::subject(&request),
                        "claims": tokens::claims(&request),
                        "auth_headers": auth_headers,
                    }),
                ))
            }
            _ => Err(Error::not_found(&request.path)),
        }
    }
}

corral_sdk::http_component!(Probe);
