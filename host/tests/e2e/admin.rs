//! The admin API's authentication and listing.

use bytes::Bytes;
use http_body_util::Full;

use crate::common::*;

async fn admin_get(http: &Http, host: &Host, token: Option<&str>) -> Reply {
    let mut request = http::Request::get(format!("{}/v1/components", host.admin));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    http.send(request.body(Full::<Bytes>::default()).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_need_the_token() {
    let host = Host::start(&standard_components());
    let http = Http::new();

    let json = assert_error(&admin_get(&http, &host, None).await, 401, "unauthorized");
    assert_eq!(json["error"]["field"], "authorization");
    assert_error(
        &admin_get(&http, &host, Some("wrong")).await,
        401,
        "unauthorized",
    );
    let put = http
        .send(
            http::Request::put(format!("{}/v1/components/status", host.admin))
                .header("authorization", "Bearer wrong")
                .body(Full::new(Bytes::from(
                    std::fs::read(component_artifacts::STATUS).unwrap(),
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_error(&put, 401, "unauthorized");

    let reply = admin_get(&http, &host, Some(TOKEN)).await;
    assert_eq!(reply.status, 200);
    let list = reply.json();
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello", "misbehave", "status"]);
    let status = &list[2];
    assert_eq!(status["version"], 1);
    assert_eq!(status["routes"], serde_json::json!(["/status", "/"]));
    assert!(status["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(status["since"].as_str().unwrap().ends_with('Z'));

    // The admin API is not reachable through the public listener.
    assert_eq!(http.get(&host.url("/v1/components")).await.status, 404);
}

#[test]
fn generated_token_is_found_by_the_cli() {
    // No token in the config: the host writes one to the state directory
    // and the CLI, given only the config, finds it there.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("corral.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [runtime]\nstate_dir = \"state\"\nmax_instances = 8\n\
             [[component]]\nname = \"hello\"\nwasm = \"{}\"\nroutes = [\"/hello\"]\n",
            component_artifacts::HELLO
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["up", "--config"])
        .arg(&config)
        .env_remove("CORRAL_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let ready = lines
        .find(|l| l.as_ref().unwrap().contains("corral is up"))
        .unwrap()
        .unwrap();
    let admin = ready
        .split("admin=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let token = std::fs::read_to_string(dir.path().join("state/admin-token")).unwrap();
    assert_eq!(token.len(), 64);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["components", "--config"])
        .arg(&config)
        .args(["--admin-url", &format!("http://{admin}")])
        .env_remove("CORRAL_ADMIN_TOKEN")
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello"));
}

/// `/ready` asks every backend; `/live` only the host. Neither needs the
/// token (probes carry none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_checks_every_backend_and_live_only_the_host() {
    let http = Http::new();
    // Embedded defaults: everything answers.
    let host = Host::start(&standard_components());
    let reply = http.get(&format!("{}/ready", host.admin)).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(json["ready"], true, "{json}");
    for backend in ["keyvalue", "messaging", "blobstore"] {
        assert_eq!(json["checks"][backend]["ok"], true, "{json}");
    }

    // A Redis nobody listens on: not ready, and the answer says which.
    let down = Host::start_with_sections(
        "[keyvalue]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\ntimeout_ms = 500\n",
        &standard_components(),
    );
    let reply = http.get(&format!("{}/ready", down.admin)).await;
    assert_eq!(
        reply.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(json["ready"], false, "{json}");
    assert_eq!(json["checks"]["keyvalue"]["ok"], false, "{json}");
    let error = json["checks"]["keyvalue"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("unavailable: ") && error.contains("127.0.0.1:1"),
        "{error}"
    );
    assert_eq!(json["checks"]["messaging"]["ok"], true, "{json}");
    // Still live: a restart would not bring Redis back.
    let reply = http.get(&format!("{}/live", down.admin)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["live"], true);
}
