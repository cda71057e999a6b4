//! Seed 002's `users` service through the real binary, on the embedded
//! backends and on Redis + RabbitMQ: CRUD with ETags and `If-Match`, the
//! errors naming their field, 20 concurrent creates with one email (or
//! username), passwords hashed by the host and never answered, every
//! action logged through the `logs` queue into the `logger`; and a store
//! outage, a busy hasher, and a deploy without the passwords grant.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::logger::{Backends, logger_components, send, wait_for};

fn users_component(grants: &str) -> String {
    format!(
        r#"
[[component]]
name = "users"
wasm = "{users}"
routes = ["/users"]
limits = {{ memory_mb = 32, timeout_ms = 10000 }}
grants.keyvalue = {{ buckets = ["users"] }}
grants.messaging = {{ publish = ["logs"] }}
grants.logging = {{ file = "logs/users.log" }}
{grants}
"#,
        users = component_artifacts::USERS,
    )
}

fn components() -> String {
    format!(
        "{}{}",
        users_component("grants.passwords = { max_concurrent = 2 }"),
        logger_components(36_500)
    )
}

/// The host's hashing: 2 at once, so the component's share of 2 fits on
/// any machine.
const PASSWORDS: &str = "\n[passwords]\nmax_concurrent = 2\n";

fn start(backends: &Backends) -> Host {
    Host::start_with_sections(
        &format!("{}{PASSWORDS}", backends.sections()),
        &components(),
    )
}

async fn call(
    http: &Http,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-user-id", "admin-7");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let bytes = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            bytes::Bytes::from(body.to_string())
        }
        None => bytes::Bytes::new(),
    };
    let reply = http
        .send(request.body(http_body_util::Full::new(bytes)).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        !text.contains("\"password_hash\":") && !text.contains("$argon2"),
        "a password hash was answered: {text}"
    );
    reply
}

fn expect(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

fn field(reply: &Reply, status: u16, field: &str) -> Value {
    let json = expect(reply, status);
    assert_eq!(json["error"]["field"], field, "{json}");
    json
}

fn etag(reply: &Reply) -> String {
    reply.headers["etag"].to_str().unwrap().to_owned()
}

const PASSWORD: &str = "correct horse battery";

fn user(name: &str, email: &str) -> Value {
    json!({"name": name, "email": email})
}

async fn crud_with_etags_and_errors(backends: Backends) {
    let host = start(&backends);
    let http = Http::new();
    let url = host.url("/users");

    let mut ada = user("Ada Lovelace", "Ada@Example.com");
    ada["username"] = json!("Ada");
    ada["password"] = json!(PASSWORD);
    let reply = call(&http, "POST", &url, &[], Some(&ada)).await;
    assert!(!String::from_utf8_lossy(&reply.body).contains(PASSWORD));
    let created = expect(&reply, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(etag(&reply), "\"1\"");
    assert_eq!(reply.headers["location"], format!("/users/{id}").as_str());
    assert_eq!(
        (
            &created["email"],
            &created["username"],
            &created["has_password"]
        ),
        (&json!("ada@example.com"), &json!("ada"), &json!(true))
    );
    assert!(created.get("password").is_none());
    assert_eq!(created["created_at"], created["updated_at"]);
    let one = format!("{url}/{id}");

    if let Backends::Real { prefix } = &backends {
        // The store holds an argon2id hash with the host's parameters.
        let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
        let mut conn = client.get_connection().unwrap();
        let stored: String = redis::cmd("GET")
            .arg(format!("{prefix}users:u:{id}"))
            .query(&mut conn)
            .unwrap();
        let stored: Value = serde_json::from_str(&stored).unwrap();
        let hash = stored["password_hash"].as_str().unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!stored.to_string().contains(PASSWORD));
    }

    let reply = call(&http, "GET", &one, &[], None).await;
    assert_eq!(expect(&reply, 200), created);
    assert_eq!(etag(&reply), "\"1\"");
    let reply = call(&http, "GET", &one, &[("if-none-match", "\"1\"")], None).await;
    assert_eq!(reply.status, 304);

    // PUT with the current ETag; then the old one is stale.
    let mut changed = created.clone();
    changed["name"] = json!("Ada King");
    let reply = call(&http, "PUT", &one, &[("if-match", "\"1\"")], Some(&changed)).await;
    let updated = expect(&reply, 200);
    assert_eq!(etag(&reply), "\"2\"");
    assert_eq!(
        (
            &updated["name"],
            &updated["version"],
            &updated["has_password"]
        ),
        (&json!("Ada King"), &json!(2), &json!(true)),
        "PUT without a password keeps it"
    );
    assert_eq!(updated["created_at"], created["created_at"]);
    let reply = call(&http, "PUT", &one, &[("if-match", "\"1\"")], Some(&changed)).await;
    field(&reply, 412, "if-match");
    assert_eq!(etag(&reply), "\"2\"", "a 412 tells the current ETag");
    let reply = call(
        &http,
        "PATCH",
        &one,
        &[("if-match", "\"1\"")],
        Some(&json!({"name": "x"})),
    )
    .await;
    field(&reply, 412, "if-match");

    // PATCH changes what it names: a new email frees the old one.
    let reply = call(
        &http,
        "PATCH",
        &one,
        &[("if-match", "\"2\"")],
        Some(&json!({"email": "ada@king.org", "password": "a new secret!"})),
    )
    .await;
    let patched = expect(&reply, 200);
    assert_eq!(
        (
            &patched["name"],
            &patched["email"],
            &patched["username"],
            &patched["version"]
        ),
        (
            &json!("Ada King"),
            &json!("ada@king.org"),
            &json!("ada"),
            &json!(3)
        )
    );
    let other = expect(
        &call(
            &http,
            "POST",
            &url,
            &[],
            Some(&user("Other", "ada@example.com")),
        )
        .await,
        201,
    );
    assert_eq!(other["has_password"], false);
    let other_url = format!("{url}/{}", other["id"].as_str().unwrap());

    // Email and username stay unique, whatever their case.
    let json = field(
        &call(&http, "POST", &url, &[], Some(&user("Dup", "ADA@king.org"))).await,
        409,
        "email",
    );
    assert_eq!(json["error"]["code"], "conflict");
    let mut dup = user("Dup", "dup@example.com");
    dup["username"] = json!("ADA");
    field(
        &call(&http, "POST", &url, &[], Some(&dup)).await,
        409,
        "username",
    );
    field(
        &call(
            &http,
            "PATCH",
            &other_url,
            &[],
            Some(&json!({"email": "ada@king.org"})),
        )
        .await,
        409,
        "email",
    );
    field(
        &call(
            &http,
            "PATCH",
            &other_url,
            &[],
            Some(&json!({"username": "ada"})),
        )
        .await,
        409,
        "username",
    );
    // The refused duplicate left its email free.
    expect(
        &call(
            &http,
            "POST",
            &url,
            &[],
            Some(&dup.clone().tap(|d| d["username"] = json!("dupe"))),
        )
        .await,
        201,
    );

    // Refusals name the field; nothing changes.
    let bad = |f: &str, v: Value| {
        let mut u = user("T", "t@example.com");
        u[f] = v;
        u
    };
    for (body, name) in [
        (bad("name", json!(" ")), "name"),
        (bad("name", json!("n".repeat(201))), "name"),
        (bad("email", json!("not-an-email")), "email"),
        (bad("email", json!("a@b")), "email"),
        (bad("email", json!(5)), "email"),
        (bad("username", json!("x")), "username"),
        (bad("username", json!("has space")), "username"),
        (bad("password", json!("short")), "password"),
        (bad("password", json!("p".repeat(1025))), "password"),
        (
            bad("password_hash", json!("$argon2id$...")),
            "password_hash",
        ),
        (bad("colour", json!("red")), "colour"),
        (bad("id", json!("mine")), "id"),
        (json!({"email": "t@example.com"}), "name"),
        (json!({"name": "T"}), "email"),
        (json!([1, 2]), "body"),
    ] {
        let reply = call(&http, "POST", &url, &[], Some(&body)).await;
        let json = field(&reply, 400, name);
        assert!(
            !json.to_string().contains(&"p".repeat(20)),
            "the password is not echoed: {json}"
        );
    }
    field(
        &call(&http, "PUT", &one, &[], Some(&json!({"name": "only"}))).await,
        400,
        "email",
    );
    field(
        &call(&http, "PATCH", &one, &[], Some(&json!({"id": "other"}))).await,
        400,
        "id",
    );
    let reply = send(&http, "POST", &url, Some("text/plain"), b"{}").await;
    field(&reply, 415, "content-type");
    let reply = send(&http, "POST", &url, None, b"{}").await;
    field(&reply, 415, "content-type");
    let reply = send(&http, "PUT", &one, Some("application/json"), b"{nope").await;
    field(&reply, 400, "body");
    for (query, name) in [
        ("limit=0", "limit"),
        ("cursor=zz", "cursor"),
        ("sort=name", "sort"),
        ("email=nope", "email"),
    ] {
        field(
            &call(&http, "GET", &format!("{url}?{query}"), &[], None).await,
            400,
            name,
        );
    }
    assert_eq!(
        expect(&call(&http, "GET", &one, &[], None).await, 200)["version"],
        3
    );

    // Lookup by email or username: the one user holding it.
    let found = expect(
        &call(
            &http,
            "GET",
            &format!("{url}?email=ADA%40king.org"),
            &[],
            None,
        )
        .await,
        200,
    );
    assert_eq!(found["users"][0]["id"], id.as_str());
    assert_eq!(found["count"], 1);
    let found = expect(
        &call(&http, "GET", &format!("{url}?username=ada"), &[], None).await,
        200,
    );
    assert_eq!(found["users"][0]["id"], id.as_str());
    let none = expect(
        &call(
            &http,
            "GET",
            &format!("{url}?email=ada%40example.org"),
            &[],
            None,
        )
        .await,
        200,
    );
    assert_eq!(none["users"], json!([]));

    // Unknown ids.
    for missing in [
        format!("{url}/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        format!("{url}/nope"),
    ] {
        field(&call(&http, "GET", &missing, &[], None).await, 404, "id");
        field(
            &call(&http, "PUT", &missing, &[], Some(&user("a", "a@b.io"))).await,
            404,
            "id",
        );
        field(&call(&http, "DELETE", &missing, &[], None).await, 404, "id");
    }

    // Delete: a stale ETag is refused, the current one deletes, and the
    // email and username are free again.
    field(
        &call(&http, "DELETE", &one, &[("if-match", "\"2\"")], None).await,
        412,
        "if-match",
    );
    assert_eq!(
        call(&http, "DELETE", &one, &[("if-match", "\"3\"")], None)
            .await
            .status,
        204
    );
    field(&call(&http, "GET", &one, &[], None).await, 404, "id");
    let mut again = user("Ada again", "ada@king.org");
    again["username"] = json!("ada");
    let again = expect(&call(&http, "POST", &url, &[], Some(&again)).await, 201);
    let list = expect(&call(&http, "GET", &url, &[], None).await, 200);
    let listed: BTreeSet<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(
        !listed.contains(id.as_str()) && listed.contains(again["id"].as_str().unwrap()),
        "{list}"
    );

    // Every action went to the log system, in the seed's form: one record
    // for each of the 52 requests above.
    let logged = wait_for(
        &http,
        &host,
        "service=user_service",
        52,
        Duration::from_secs(20),
    )
    .await;
    let seen: BTreeSet<(String, String)> = logged
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for action in [
        "create_user",
        "get_user",
        "update_user",
        "delete_user",
        "list_users",
    ] {
        for result in ["success", "failure"] {
            assert!(
                seen.contains(&(action.to_owned(), result.to_owned())),
                "{action}/{result} not logged: {seen:?}"
            );
        }
    }
    let create = logged
        .iter()
        .find(|r| r["action"] == "create_user" && r["user_id"] == id.as_str())
        .expect("the create is logged with the new user's id");
    assert_eq!(create["result"], "success");
    assert_eq!(create["actor"], "admin-7");
    let conflict = logged
        .iter()
        .find(|r| r["action"] == "create_user" && r["status"] == 409)
        .expect("the refused duplicate is logged");
    assert_eq!(conflict["result"], "failure");
    assert!(
        conflict["cause"].as_str().unwrap().contains("another user"),
        "{conflict}"
    );
    for record in &logged {
        assert!(
            !record.to_string().contains(PASSWORD) && !record.to_string().contains("argon2"),
            "{record}"
        );
    }
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

/// 20 creates with one email at once: exactly one 201, the rest 409; the
/// same for one username.
async fn concurrent_creates_with_one_email(backends: Backends) {
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

/// Listing is in creation order, in pages without duplicates or gaps.
async fn pages_in_creation_order(backends: Backends) {
    let host = start(&backends);
    let http = Http::new();
    let url = host.url("/users");
    let mut made = Vec::new();
    for i in 0..12 {
        let u = expect(
            &call(
                &http,
                "POST",
                &url,
                &[],
                Some(&user(&format!("u{i}"), &format!("u{i}@example.com"))),
            )
            .await,
            201,
        );
        made.push(u["id"].as_str().unwrap().to_owned());
    }
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut u = format!("{url}?limit=5");
        if let Some(c) = &cursor {
            u.push_str(&format!("&cursor={c}"));
        }
        let page = expect(&call(&http, "GET", &u, &[], None).await, 200);
        assert!(page["count"].as_u64().unwrap() <= 5);
        got.extend(
            page["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(got, made);
}

/// Eight changes of one version at once: exactly one wins, the others
/// get 412; the user's version went up by one.
async fn concurrent_changes_of_one_version(backends: Backends) {
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
async fn claims_left_behind(backends: Backends) {
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

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_embedded {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(Backends::Embedded).await;
            })*
        }
        mod on_redis_and_rabbitmq {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backends) = Backends::real() else { return };
                super::$name(backends).await;
            })*
        }
    };
}

on_both!(
    crud_with_etags_and_errors,
    concurrent_creates_with_one_email,
    pages_in_creation_order,
    concurrent_changes_of_one_version,
    claims_left_behind,
);

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
        let json = assert_error(&reply, 503, "store_unavailable");
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
    let mut busy = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status {
            201 => created += 1,
            503 => {
                assert_error(&reply, 503, "busy");
                assert_eq!(reply.headers["retry-after"], "1");
                busy += 1;
            }
            other => panic!("status {other}: {}", String::from_utf8_lossy(&reply.body)),
        }
    }
    assert!(created >= 1 && busy >= 1, "{created} created, {busy} busy");
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
