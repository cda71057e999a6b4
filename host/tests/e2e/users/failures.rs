//! What fails: the key-value store down, password hashing busy, and a
//! component importing the passwords capability without the grant.

use serde_json::json;

use super::*;

/// A key-value store that cannot be reached: 503 JSON, quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_a_503() {
    let sections = format!(
        "[keyvalue]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\ntimeout_ms = 1000\n{PASSWORDS}"
    );
    let host = Host::start_with_sections(&sections, &components());
    let http = Http::new();
    let url = host.url("/users");
    for reply in [
        call(&http, "POST", &url, &[], Some(&user("A", "a@example.com"))).await,
        call(&http, "GET", &url, &[], None).await,
        call(
            &http,
            "GET",
            &format!("{url}/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            &[],
            None,
        )
        .await,
    ] {
        let json = assert_error(&reply, 503, "backend_unavailable");
        assert_eq!(json["error"]["field"], "keyvalue", "{json}");
        assert!(reply.headers.contains_key("retry-after"), "{json}");
    }
}

/// Hashing that stays busy is a 503 `busy`, never a queue without end:
/// one slot host-wide, nobody may wait, slow hashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_hasher_answers_503() {
    let sections =
        "[passwords]\nmax_concurrent = 1\nmax_waiting = 0\nmemory_kib = 65536\niterations = 4\n";
    let components = format!(
        "{}{}",
        users_component("grants.passwords = { max_concurrent = 1 }"),
        logger_components(36_500)
    );
    let host = Host::start_with_sections(sections, &components);
    let http = Http::new();
    let url = host.url("/users");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut body = user("B", &format!("b{i}@example.com"));
                body["password"] = json!(PASSWORD);
                call(&http, "POST", &url, &[], Some(&body)).await
            })
        })
        .collect();
    let mut created = 0;
    let mut busy = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let reply = t.await.unwrap();
        match reply.status {
            201 => created += 1,
            503 => {
                assert_error(&reply, 503, "busy");
                assert_eq!(reply.headers["retry-after"], "1");
                busy.push(i);
            }
            other => panic!("status {other}: {}", String::from_utf8_lossy(&reply.body)),
        }
    }
    assert!(
        created >= 1 && !busy.is_empty(),
        "{created} created, {busy:?} busy"
    );
    // A busy create gave its email back: one at a time, each goes through.
    for i in busy {
        let mut body = user("B", &format!("b{i}@example.com"));
        body["password"] = json!(PASSWORD);
        let reply = call(&http, "POST", &url, &[], Some(&body)).await;
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
}

/// A component that imports the passwords capability without the grant is
/// refused at deploy; the running version goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_passwords_without_a_grant_is_refused_at_deploy() {
    let components = format!(
        r#"
[[component]]
name = "plain"
wasm = "{probe}"
routes = ["/kv"]
grants.keyvalue = {{ buckets = ["users"] }}
grants.messaging = {{ publish = ["logs"] }}
grants.tokens = {{ issue = true }}
"#,
        probe = component_artifacts::KV_PROBE,
    );
    let host = Host::start(&components);
    let out = host.cli(&["redeploy", "plain", component_artifacts::USERS]);
    assert!(!out.status.success(), "the deploy should have been refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not granted") && err.contains("passwords"),
        "{err}"
    );
    // The probe still serves its route.
    let reply = Http::new().get(&host.url("/kv/users")).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}
