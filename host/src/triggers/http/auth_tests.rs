//! The gateway's policies and checks, without a server.

use super::*;
use crate::config::Config;
use crate::tokens::AuthSettings;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn config(auth: &str) -> Config {
    Config::for_tests(
        &format!(
            r#"
            [[component]]
            name = "api"
            wasm = "api.wasm"
            routes = ["/api", "/items"]
            {auth}
            [[component]]
            name = "open"
            wasm = "open.wasm"
            routes = ["/open"]
            "#
        ),
        &[],
    )
    .unwrap()
}

fn policy(auth: &str) -> Result<Option<AuthPolicy>, String> {
    AuthPolicy::from_component(&config(auth).components[0]).map_err(|e| e.to_string())
}

fn tokens() -> Arc<Tokens> {
    Arc::new(Tokens::new(AuthSettings {
        jwt_secret: Some(SECRET.into()),
        cookie_name: "session".into(),
        ..AuthSettings::default()
    }))
}

fn gateway(auth: &str) -> Gateway {
    let policy = policy(auth).unwrap().expect("a policy");
    Gateway::new([("api".to_owned(), policy)].into(), tokens())
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

fn www_authenticate(error: &HostError) -> String {
    let (_, value) = error
        .headers
        .iter()
        .find(|(name, _)| name == header::WWW_AUTHENTICATE)
        .expect("a WWW-Authenticate header");
    value.to_str().unwrap().to_owned()
}

#[test]
fn tables_parse_and_bad_ones_name_the_field() {
    assert!(policy("").unwrap().is_none());
    assert!(policy("auth = { jwt = false }").unwrap().is_none());
    assert!(policy("auth = { jwt = true }").unwrap().is_some());
    let p = policy(r#"auth = { jwt = true, methods = ["post", "DELETE"], paths = ["/items/"] }"#)
        .unwrap()
        .unwrap();
    assert_eq!(p.methods, [Method::POST, Method::DELETE]);
    assert_eq!(p.paths, ["/items"]);

    for (auth, field) in [
        ("auth = { jwt = true, method = [] }", "auth"),
        ("auth = { jtw = true }", "auth"),
        ("auth = { methods = [\"GET\"] }", "auth"),
        ("auth = { jwt = \"yes\" }", "auth"),
        ("auth = { jwt = false, methods = [\"GET\"] }", "auth"),
        (
            "auth = { jwt = true, methods = [\"FETCH\"] }",
            "auth.methods",
        ),
        ("auth = { jwt = true, paths = [\"/other\"] }", "auth.paths"),
        ("auth = { jwt = true, paths = [\"items\"] }", "auth.paths"),
    ] {
        let err = policy(auth).unwrap_err();
        assert!(
            err.contains(&format!("component \"api\": {field}")),
            "{auth}: {err}"
        );
    }
    let timer_only = Config::for_tests(
        "[[component]]\nname = \"t\"\nwasm = \"t.wasm\"\ntimer = { interval_ms = 10 }\nauth = { jwt = true }\n",
        &[],
    )
    .unwrap();
    let err = AuthPolicy::from_component(&timer_only.components[0])
        .unwrap_err()
        .to_string();
    assert!(err.contains("auth") && err.contains("no"), "{err}");
}

#[test]
fn methods_and_paths_narrow_what_needs_a_token() {
    let p = policy(r#"auth = { jwt = true, methods = ["POST"], paths = ["/items/new"] }"#)
        .unwrap()
        .unwrap();
    assert!(p.applies(&Method::POST, "/items/new"));
    assert!(p.applies(&Method::POST, "/items/new/7"));
    assert!(!p.applies(&Method::POST, "/items/newer"));
    assert!(!p.applies(&Method::GET, "/items/new"));
    assert!(!p.applies(&Method::POST, "/api"));
    let all = policy("auth = { jwt = true }").unwrap().unwrap();
    assert!(all.applies(&Method::GET, "/api/x") && all.applies(&Method::DELETE, "/items"));
}

#[test]
fn a_missing_token_is_a_401_without_an_error_code_in_the_challenge() {
    let gateway = gateway("auth = { jwt = true }");
    for headers in [
        &[][..],
        &[("authorization", "Basic YTpi")][..],
        &[("authorization", "Bearer ")][..],
        &[("cookie", "other=1; token=wrong-name")][..],
    ] {
        let err = gateway
            .admit("api", &mut request("GET", "/api", headers))
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert_eq!(err.code, "missing_token");
        assert_eq!(www_authenticate(&err), r#"Bearer realm="corral""#);
    }
}

#[test]
fn a_refused_token_is_a_401_with_invalid_token() {
    let gateway = gateway("auth = { jwt = true }");
    let good = tokens().issue("alice", None).unwrap().token;
    let other_audience = Tokens::new(AuthSettings {
        jwt_secret: Some(SECRET.into()),
        audience: "elsewhere".into(),
        ..AuthSettings::default()
    })
    .issue("alice", None)
    .unwrap()
    .token;
    for (token, words) in [
        ("garbage".to_owned(), "malformed"),
        (format!("{good}x"), "signature"),
        (other_audience, "audience"),
    ] {
        let auth = format!("Bearer {token}");
        let err = gateway
            .admit(
                "api",
                &mut request("GET", "/api", &[("authorization", auth.as_str())]),
            )
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
        assert!(err.message.contains(words), "{}", err.message);
        let challenge = www_authenticate(&err);
        assert!(
            challenge.starts_with(
                r#"Bearer realm="corral", error="invalid_token", error_description=""#
            ),
            "{challenge}"
        );
        assert_eq!(err.component.as_deref(), Some("api"));
    }
    // The header wins over a good cookie.
    let err = gateway
        .admit(
            "api",
            &mut request(
                "GET",
                "/api",
                &[
                    ("authorization", "Bearer bad"),
                    ("cookie", format!("session={good}").as_str()),
                ],
            ),
        )
        .unwrap_err();
    assert_eq!(err.code, "invalid_token");
}

#[test]
fn a_good_token_in_the_header_or_the_cookie_passes_its_claims_on() {
    let gateway = gateway("auth = { jwt = true }");
    let token = tokens()
        .issue("alice", Some(r#"{"role":"admin"}"#))
        .unwrap()
        .token;
    let auth = format!("bearer {token}");
    let cookie = format!("theme=dark; session=\"{token}\"");
    for headers in [
        [
            ("authorization", auth.as_str()),
            ("x-corral-auth-sub", "mallory"),
        ],
        [("cookie", cookie.as_str()), ("X-Corral-Auth-Claims", "{}")],
    ] {
        let mut request = request("GET", "/items/3", &headers);
        gateway.admit("api", &mut request).unwrap();
        let headers = request.headers();
        assert_eq!(headers[&SUB_HEADER], "alice");
        assert_eq!(headers.get_all(&SUB_HEADER).iter().count(), 1);
        let claims: serde_json::Value =
            serde_json::from_slice(headers[&CLAIMS_HEADER].as_bytes()).unwrap();
        assert_eq!(
            (&claims["sub"], &claims["role"]),
            (&"alice".into(), &"admin".into())
        );
        assert_eq!(crate::access_log::user_of(&request), Some("alice"));
    }
}

#[test]
fn forged_headers_are_stripped_everywhere_and_unguarded_requests_pass() {
    let gateway = gateway(r#"auth = { jwt = true, methods = ["POST"] }"#);
    let forged = [
        ("x-corral-auth-sub", "mallory"),
        ("x-corral-auth-claims", r#"{"sub":"mallory"}"#),
        ("x-corral-auth-anything", "1"),
        ("x-other", "kept"),
    ];
    for (component, method, path) in [("open", "GET", "/open"), ("api", "GET", "/api")] {
        let mut request = request(method, path, &forged);
        gateway.admit(component, &mut request).unwrap();
        let names: Vec<&str> = request.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-other"], "{component}");
        assert_eq!(crate::access_log::user_of(&request), None);
    }
    // The default gateway (no `auth` anywhere) strips too.
    let mut request = request("GET", "/open", &forged);
    Gateway::default().admit("open", &mut request).unwrap();
    assert_eq!(request.headers().len(), 1);
}

#[test]
fn the_client_address_comes_from_the_connection_only() {
    let gateway = Gateway::default();
    let mut forged = request("GET", "/open", &[("x-corral-auth-client-addr", "10.0.0.1")]);
    forged
        .extensions_mut()
        .insert(Peer("192.0.2.7:5555".parse().unwrap()));
    gateway.admit("open", &mut forged).unwrap();
    assert_eq!(forged.headers()[&CLIENT_ADDR_HEADER], "192.0.2.7");
    assert_eq!(
        forged.headers().get_all(&CLIENT_ADDR_HEADER).iter().count(),
        1
    );
    // Without a connection (no peer known), no address at all.
    let mut request = request("GET", "/open", &[("x-corral-auth-client-addr", "10.0.0.1")]);
    gateway.admit("open", &mut request).unwrap();
    assert!(request.headers().get(&CLIENT_ADDR_HEADER).is_none());
}
