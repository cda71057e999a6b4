//! Races: concurrent creates with one email or username, concurrent
//! changes of one version, and claims left behind by a failed create.

use serde_json::json;

use super::*;

/// 20 creates with one email at once: exactly one 201, the rest 409; the
/// same for one username.
pub(super) async fn concurrent_creates_with_one_email(backends: Backends) {
    let host = start(&backends);
    let http = Http::new();
    let url = host.url("/users");
    let race = async |bodies: Vec<Value>| {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let (http, url) = (http.clone(), url.clone());
                tokio::spawn(async move { call(&http, "POST", &url, &[], Some(&body)).await })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            let reply = t.await.unwrap();
            if reply.status == 409 {
                reply.json();
            }
            statuses.push(reply.status);
        }
        statuses.sort();
        statuses
    };
    let mut expected = vec![201];
    expected.extend([409; 19]);
    let same_email = (0..20)
        .map(|i| user(&format!("racer {i}"), "race@example.com"))
        .collect();
    assert_eq!(race(same_email).await, expected);
    let same_username = (0..20)
        .map(|i| {
            user(&format!("racer {i}"), &format!("r{i}@example.com"))
                .tap(|u| u["username"] = json!("racer"))
        })
        .collect();
    assert_eq!(race(same_username).await, expected);
    let found = expect(
        &call(
            &http,
            "GET",
            &format!("{url}?email=race%40example.com"),
            &[],
            None,
        )
        .await,
        200,
    );
    assert_eq!(found["count"], 1);
    let all = expect(
        &call(&http, "GET", &format!("{url}?limit=100"), &[], None).await,
        200,
    );
    assert_eq!(all["count"], 2, "{all}");
}

/// Eight changes of one version at once: exactly one wins, the others
/// get 412; the user's version went up by one.
pub(super) async fn concurrent_changes_of_one_version(backends: Backends) {
    let host = start(&backends);
    let http = Http::new();
    let url = host.url("/users");
    let u = expect(
        &call(
            &http,
            "POST",
            &url,
            &[],
            Some(&user("race", "race@example.com")),
        )
        .await,
        201,
    );
    let one = format!("{url}/{}", u["id"].as_str().unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (http, one) = (http.clone(), one.clone());
            tokio::spawn(async move {
                let body = json!({"name": format!("winner {i}")});
                call(&http, "PATCH", &one, &[("if-match", "\"1\"")], Some(&body))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 412, 412, 412, 412, 412, 412, 412]);
    assert_eq!(
        expect(&call(&http, "GET", &one, &[], None).await, 200)["version"],
        2
    );
}

/// A claim left behind by a create that failed half-way (written here
/// through kv-probe): taken over once it is older than the grace period,
/// a conflict while it is fresh (a create may still be writing its user).
pub(super) async fn claims_left_behind(backends: Backends) {
    let probe = format!(
        r#"
[[component]]
name = "kv-probe"
wasm = "{probe}"
routes = ["/kv"]
grants.keyvalue = {{ buckets = ["users"] }}
"#,
        probe = component_artifacts::KV_PROBE,
    );
    let host = Host::start_with_sections(
        &format!("{}{PASSWORDS}", backends.sections()),
        &format!("{}{probe}", components()),
    );
    let http = Http::new();
    let url = host.url("/users");
    let ghost = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let claim = async |email: &str, at_ms: i64| {
        let key = host.url(&format!("/kv/users/email:{email}"));
        let body = format!("{ghost} {at_ms}");
        assert_eq!(
            send(&http, "PUT", &key, None, body.as_bytes()).await.status,
            200
        );
    };
    let now = chrono::Utc::now().timestamp_millis();
    claim("left@example.com", now - 60_000).await;
    claim("fresh@example.com", now).await;

    let taken = expect(
        &call(
            &http,
            "POST",
            &url,
            &[],
            Some(&user("Left", "left@example.com")),
        )
        .await,
        201,
    );
    let stored = http
        .get(&host.url("/kv/users/email:left@example.com"))
        .await
        .json();
    assert!(
        stored["value"]
            .as_str()
            .unwrap()
            .starts_with(taken["id"].as_str().unwrap()),
        "{stored}"
    );
    field(
        &call(
            &http,
            "POST",
            &url,
            &[],
            Some(&user("Fresh", "fresh@example.com")),
        )
        .await,
        409,
        "email",
    );
    // A claim naming no user holding it finds nobody.
    let found = expect(
        &call(
            &http,
            "GET",
            &format!("{url}?email=fresh%40example.com"),
            &[],
            None,
        )
        .await,
        200,
    );
    assert_eq!(found["users"], json!([]));
}
