//! Host-owned tokens end to end: the `tokens` capability (through
//! `token-probe`), `corral token issue`, the generated secret, and the
//! HTTP gateway in front of a component (`auth = { jwt = true }`).

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;

use crate::common::*;

pub const SECRET: &str = "e2e-secret-0123456789abcdef0123456789";

/// `token-probe` may issue and verify; only its `/whoami` is behind the
/// gateway, so tokens can be issued without one.
fn components() -> String {
    format!(
        r#"
[[component]]
name = "token-probe"
wasm = "{probe}"
routes = ["/token-probe"]
grants.tokens = {{ issue = true, verify = true }}
auth = {{ jwt = true, paths = ["/token-probe/whoami"] }}

[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]
"#,
        probe = component_artifacts::TOKEN_PROBE,
        hello = component_artifacts::HELLO,
    )
}

/// Claims signed with `secret`, as a token the host did not issue.
pub fn forge(secret: &str, claims: serde_json::Value) -> String {
    corral::tokens::jwt::encode(
        &corral::tokens::jwt::Key::new(secret.as_bytes()),
        claims.as_object().unwrap(),
    )
}

/// Standard claims for `sub`, valid for a minute, with `overrides`.
pub fn claims(sub: &str, overrides: serde_json::Value) -> serde_json::Value {
    let now = corral::tokens::unix_now();
    let mut claims = serde_json::json!({
        "sub": sub, "iat": now, "exp": now + 60, "iss": "corral", "aud": "corral",
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

/// `alg: none`, no signature.
pub fn unsigned(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

pub async fn get_with(http: &Http, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = http::Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    http.send(request.body(Full::<Bytes>::default()).unwrap())
        .await
        .unwrap()
}

pub fn challenge(reply: &Reply) -> String {
    reply
        .headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {}", reply.status))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn issue(http: &Http, host: &Host, sub: &str, extra: &str) -> serde_json::Value {
    let reply = http
        .post(
            &host.url(&format!("/token-probe/issue?sub={sub}")),
            extra.to_owned(),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let json = reply.json();
    // The host's cookie for it, ready for a login's answer.
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    let token = json["token"].as_str().unwrap();
    assert_eq!(
        cookie,
        format!("token={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=3600")
    );
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_issues_and_verifies_tokens_and_the_gateway_passes_the_claims() {
    let host = Host::start_with_env(&components(), &[("CORRAL_JWT_SECRET", SECRET)]);
    let http = Http::new();

    let issued = issue(&http, &host, "alice", r#"{"role":"admin"}"#).await;
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["expires_in"], 3600);
    let token = issued["token"].as_str().unwrap();
    // Signed with the configured secret: verifiable without the host.
    let key = corral::tokens::jwt::Key::new(SECRET.as_bytes());
    let expected = corral::tokens::jwt::Expected {
        issuer: "corral",
        audience: "corral",
        now: corral::tokens::unix_now(),
    };
    let decoded = corral::tokens::jwt::decode(&key, token, &expected).unwrap();
    assert_eq!(
        (&decoded["sub"], &decoded["role"]),
        (&"alice".into(), &"admin".into())
    );

    let claims = http
        .get(&host.url(&format!("/token-probe/verify?token={token}")))
        .await;
    assert_eq!(claims.status, 200);
    assert_eq!(claims.json()["sub"], "alice");
    let refused = http
        .get(&host.url(&format!("/token-probe/verify?token={token}x")))
        .await;
    let json = assert_error(&refused, 401, "invalid_token");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{json}"
    );
    let bad = http
        .post(
            &host.url("/token-probe/issue?sub=alice"),
            r#"{"sub":"mallory"}"#,
        )
        .await;
    assert_error(&bad, 400, "invalid");

    // Behind the gateway: forged headers gone, the verified ones set.
    let bearer = format!("Bearer {token}");
    let reply = get_with(
        &http,
        &host.url("/token-probe/whoami"),
        &[
            ("authorization", bearer.as_str()),
            ("x-corral-auth-sub", "mallory"),
            ("x-corral-auth-role", "root"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let seen = reply.json();
    assert_eq!(seen["sub"], "alice", "{seen}");
    assert_eq!(seen["claims"]["role"], "admin", "{seen}");
    let mut names: Vec<&str> = seen["auth_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    names.sort_unstable();
    // The verified ones, and the client address from the connection;
    // none of the forged ones.
    assert_eq!(
        names,
        [
            "x-corral-auth-claims",
            "x-corral-auth-client-addr",
            "x-corral-auth-sub"
        ],
        "{seen}"
    );
    assert!(
        seen["auth_headers"]
            .to_string()
            .contains(r#"["x-corral-auth-client-addr","127.0.0.1"]"#),
        "{seen}"
    );

    // Without a token, or with a forged claims header only: 401.
    let missing = get_with(
        &http,
        &host.url("/token-probe/whoami"),
        &[("x-corral-auth-sub", "mallory")],
    )
    .await;
    assert_error(&missing, 401, "missing_token");
    assert_eq!(challenge(&missing), r#"Bearer realm="corral""#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_signs_with_the_secret_the_host_generated() {
    // No secret anywhere: the host generates one into its state folder.
    let host = Host::start(&components());
    let secret_file = host.path("state/jwt-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["token", "issue", "--sub", "operator", "--json", "--config"])
        .arg(&host.config)
        .env_remove("CORRAL_JWT_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bearer = format!("Bearer {}", issued["token"].as_str().unwrap());
    let http = Http::new();
    let reply = get_with(
        &http,
        &host.url("/token-probe/whoami"),
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["sub"], "operator");

    // A token signed with another secret is not accepted.
    let other = forge(SECRET, claims("operator", serde_json::json!({})));
    let reply = get_with(
        &http,
        &host.url("/token-probe/whoami"),
        &[("authorization", format!("Bearer {other}").as_str())],
    )
    .await;
    assert_error(&reply, 401, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_tokens_without_a_grant_is_refused_at_deploy() {
    let host = Host::start_with_env(&components(), &[("CORRAL_JWT_SECRET", SECRET)]);
    let out = host.cli(&["redeploy", "hello", component_artifacts::TOKEN_PROBE]);
    assert!(!out.status.success(), "the deploy should have been refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tokens"), "{err}");
    assert_eq!(Http::new().get(&host.url("/hello")).await.status, 200);
}

#[test]
fn check_refuses_a_short_secret_and_bad_auth_tables_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let check = |config: &str, env: &[(&str, &str)]| {
        let path = dir.path().join("corral.toml");
        std::fs::write(&path, config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["check", "--config"])
            .arg(&path)
            .env_remove("CORRAL_JWT_SECRET")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let component = "[[component]]\nname = \"c\"\nwasm = \"c.wasm\"\nroutes = [\"/c\"]\n";
    let (ok, err) = check(component, &[("CORRAL_JWT_SECRET", "too-short")]);
    assert!(
        !ok && err.contains("auth.jwt_secret") && err.contains("32"),
        "{err}"
    );
    let (ok, err) = check(
        &format!("[auth]\njwt_secret = \"${{NOT_SET_ANYWHERE}}\"\n{component}"),
        &[],
    );
    assert!(
        !ok && err.contains("auth.jwt_secret") && err.contains("NOT_SET_ANYWHERE"),
        "{err}"
    );
    let (ok, err) = check(
        &format!("{component}auth = {{ jwt = true, methods = [\"FETCH\"] }}\n"),
        &[],
    );
    assert!(
        !ok && err.contains("component \"c\": auth.methods"),
        "{err}"
    );
    let (ok, err) = check(
        &format!("{component}grants.tokens = {{ issue = false }}\n"),
        &[],
    );
    assert!(!ok && err.contains("grants.tokens"), "{err}");
    let (ok, err) = check(&format!("{component}auth = {{ jwt = true }}\n"), &[]);
    assert!(ok, "{err}");
}
