//! The CRUD cycle with every error path, and listing in pages.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::logger::wait_for;

pub(super) async fn crud_with_etags_and_errors(backends: Backends) {
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

/// Listing is in creation order, in pages without duplicates or gaps.
pub(super) async fn pages_in_creation_order(backends: Backends) {
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
