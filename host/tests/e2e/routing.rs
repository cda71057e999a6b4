use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_prefix_and_status_answers_json() {
    let host = Host::start(&standard_components());
    let http = Http::new();

    let reply = http.get(&host.url("/status")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    let json = reply.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["message"], "test message");
    assert_eq!(json["component_version"], "v1");
    assert!(json["digest"].as_str().unwrap().starts_with("sha256:"));
    let expected_instance = gethostname();
    assert_eq!(json["instance"], expected_instance.as_str());
    let timestamp = json["timestamp"].as_str().unwrap();
    assert!(
        timestamp.len() == 24 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );

    // `/` falls through to status; other prefixes reach their components.
    assert_eq!(http.get(&host.url("/")).await.json()["status"], "ok");
    assert_eq!(http.get(&host.url("/hello")).await.body, "Hello, world!\n");
    assert_eq!(
        http.get(&host.url("/misbehave/ok")).await.json()["ok"],
        true
    );
    // A route prefix matches whole segments only.
    let reply = http.get(&host.url("/hellothere")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "not_found");

    // Wrong method: 405 naming the field.
    let reply = http.post(&host.url("/status"), "x").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["error"]["field"], "method");

    // Every request the status component served is in its log file.
    host.wait_log(
        "logs/status/app.log",
        &["GET /status -> 200", "GET / -> 200", "POST /status -> 405"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_paths_get_a_json_404_from_the_host() {
    let host = Host::start(&format!(
        "[[component]]\nname = \"hello\"\nwasm = \"{}\"\nroutes = [\"/hello\"]\n",
        component_artifacts::HELLO
    ));
    let reply = Http::new().get(&host.url("/nothing/here")).await;
    let json = assert_error(&reply, 404, "no_route");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nothing/here")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_get_only_their_own_environment() {
    let host = Host::start(&standard_components());
    let http = Http::new();
    let value = |name: &str| {
        let url = host.url(&format!("/misbehave/env?name={name}"));
        let http = http.clone();
        async move { http.get(&url).await.json()["value"].clone() }
    };
    assert_eq!(value("CORRAL_COMPONENT").await, "misbehave");
    // status's env does not leak into misbehave, nor the host's.
    assert_eq!(value("STATUS_MESSAGE").await, serde_json::Value::Null);
    assert_eq!(value("PATH").await, serde_json::Value::Null);
}

fn gethostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}
