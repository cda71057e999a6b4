//! Hot redeploy: zero failed requests under load, refused broken versions,
//! rollback, and the `--watch` dev mode.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;

fn cli_ok(host: &Host, args: &[&str]) -> String {
    let out = host.cli(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli_err(host: &Host, args: &[&str]) -> String {
    let out = host.cli(args);
    assert!(!out.status.success(), "{args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn status_version(http: &Http, host: &Host) -> String {
    let reply = http.get(&host.url("/status")).await;
    assert_eq!(reply.status, 200);
    reply.json()["component_version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploy_under_load_fails_no_request() {
    let host = Arc::new(Host::start(&standard_components()));
    let http = Http::new();
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (http, host, stop) = (http.clone(), host.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut versions = BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    match http
                        .send(
                            http::Request::get(host.url("/status"))
                                .body(Default::default())
                                .unwrap(),
                        )
                        .await
                    {
                        Ok(reply) => {
                            if reply.status == 200 {
                                versions.insert(
                                    reply.json()["component_version"]
                                        .as_str()
                                        .unwrap()
                                        .to_owned(),
                                );
                            }
                            statuses.push(reply.status);
                        }
                        Err(e) => panic!("request failed during redeploy: {e}"),
                    }
                }
                (statuses, versions)
            })
        })
        .collect();

    // A slow request that is in flight across the swap finishes on the old
    // version.
    let slow = {
        let (http, url) = (http.clone(), host.url("/misbehave/sleep?ms=800"));
        tokio::spawn(async move { http.get(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for expected in 2..=4 {
        let host = host.clone();
        let out = tokio::task::spawn_blocking(move || cli_ok(&host, &["redeploy", "status"]))
            .await
            .unwrap();
        assert!(out.contains(&format!("status is now v{expected}")), "{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let host2 = host.clone();
    tokio::task::spawn_blocking(move || cli_ok(&host2, &["redeploy", "misbehave"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);

    let slow = slow.await.unwrap();
    assert_eq!(
        slow.status, 200,
        "the in-flight request survived its component's swap"
    );

    let mut total = 0;
    let mut versions = BTreeSet::new();
    for task in load {
        let (statuses, seen) = task.await.unwrap();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "non-2xx during redeploy: {statuses:?}"
        );
        total += statuses.len();
        versions.extend(seen);
    }
    assert!(total > 100, "the load loop ran ({total} requests)");
    assert!(
        versions.contains("v1") && versions.contains("v4"),
        "{versions:?}"
    );
    assert_eq!(status_version(&http, &host).await, "v4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_versions_are_refused_and_the_old_keeps_serving() {
    let host = Host::start(&standard_components());
    let http = Http::new();
    let dir = host.dir.path().to_owned();

    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm").unwrap();
    let err = cli_err(&host, &["redeploy", "status", garbage.to_str().unwrap()]);
    assert!(
        err.contains("422") && err.contains("not a WebAssembly binary"),
        "{err}"
    );

    let core_module = dir.join("core.wasm");
    std::fs::write(&core_module, wat::parse_str("(module)").unwrap()).unwrap();
    let err = cli_err(
        &host,
        &["redeploy", "status", core_module.to_str().unwrap()],
    );
    assert!(err.contains("deploy refused"), "{err}");

    let unknown_import = dir.join("import.wasm");
    std::fs::write(
        &unknown_import,
        wat::parse_str(
            r#"(component (import "example:nope/thing" (instance (export "f" (func)))))"#,
        )
        .unwrap(),
    )
    .unwrap();
    let err = cli_err(
        &host,
        &["redeploy", "status", unknown_import.to_str().unwrap()],
    );
    assert!(
        err.contains("imports something this host does not provide"),
        "{err}"
    );

    let no_export = dir.join("empty.wasm");
    std::fs::write(&no_export, wat::parse_str("(component)").unwrap()).unwrap();
    let err = cli_err(&host, &["redeploy", "status", no_export.to_str().unwrap()]);
    assert!(
        err.contains("does not export wasi:http/incoming-handler"),
        "{err}"
    );

    let err = cli_err(&host, &["redeploy", "nosuch", component_artifacts::STATUS]);
    assert!(
        err.contains("404") && err.contains("no component named"),
        "{err}"
    );

    assert_eq!(status_version(&http, &host).await, "v1");
    let list = cli_ok(&host, &["components", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let status = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "status")
        .unwrap();
    assert_eq!(status["version"], 1);
    assert_eq!(status["previous"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_previous_version() {
    let host = Host::start(&standard_components());
    let http = Http::new();
    let err = cli_err(&host, &["rollback", "status"]);
    assert!(
        err.contains("409") && err.contains("no previous version"),
        "{err}"
    );

    cli_ok(&host, &["redeploy", "status"]);
    cli_ok(&host, &["redeploy", "status"]);
    assert_eq!(status_version(&http, &host).await, "v3");
    let table = cli_ok(&host, &["components"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("status") && l.contains("v3")),
        "{table}"
    );

    assert!(cli_ok(&host, &["rollback", "status"]).contains("rolled back to v2"));
    assert_eq!(status_version(&http, &host).await, "v2");
    assert!(cli_ok(&host, &["rollback", "status"]).contains("rolled back to v1"));
    assert_eq!(status_version(&http, &host).await, "v1");
    cli_err(&host, &["rollback", "status"]);

    // A new deploy after a rollback continues the numbering.
    assert!(cli_ok(&host, &["redeploy", "status"]).contains("now v4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_mode_redeploys_changed_files() {
    let staging = tempfile::tempdir().unwrap();
    let wasm = copy_to(component_artifacts::STATUS, staging.path(), "status.wasm");
    let host = Host::start_with(
        &format!(
            "[[component]]\nname = \"status\"\nwasm = \"{}\"\nroutes = [\"/status\"]\n",
            wasm.display()
        ),
        "",
        &["--watch"],
    );
    let http = Http::new();
    assert_eq!(status_version(&http, &host).await, "v1");

    // A rebuilt file (here: the same component written anew).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bytes = std::fs::read(component_artifacts::STATUS).unwrap();
    std::fs::write(&wasm, &bytes).unwrap();
    let mut version = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        version = status_version(&http, &host).await;
        if version == "v2" {
            break;
        }
    }
    assert_eq!(version, "v2", "{}", host.output());

    // A broken file is refused; the running version stays.
    std::fs::write(&wasm, b"broken build").unwrap();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if host.output().contains("new version was refused") {
            break;
        }
    }
    assert!(
        host.output().contains("new version was refused"),
        "{}",
        host.output()
    );
    assert_eq!(status_version(&http, &host).await, "v2");
}
