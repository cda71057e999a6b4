//! The pages in a real headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `host/tests/browser/`): on the transactions page a
//! person picks a sample file, clicks send, and sees per-record results; on
//! the log viewer they filter, page, watch the chart and the live tail.
//! Screenshots are saved under `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::pipeline::{pipeline_components, samples};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Installs what the browser test needs when it is missing: Debian's
/// Chromium (as root, through apt) and playwright-core (through npm).
fn ensure_tools() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        let status = Command::new("sh")
            .arg("-c")
            .arg("(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium")
            .status()
            .expect("running apt-get");
        assert!(
            status.success() && Path::new(&chromium).exists(),
            "Chromium is needed at {chromium} (apt-get install chromium, or set CHROMIUM)"
        );
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(browser_dir())
            .status()
            .expect("running npm (Node.js is needed for the browser test)");
        assert!(status.success(), "npm ci in {}", browser_dir().display());
    }
}

fn run_page(
    url: &str,
    file: &Path,
    screenshot: &Path,
    expect_processed: Option<&str>,
) -> serde_json::Value {
    let mut command = Command::new("node");
    command
        .arg(browser_dir().join("upload.mjs"))
        .arg(url)
        .arg(file)
        .arg(screenshot);
    if let Some(n) = expect_processed {
        command.arg(n);
    }
    let out = command.output().expect("running node");
    assert!(
        out.status.success(),
        "the page script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad page output ({e}): {stdout}"))
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_page_uploads_a_sample_and_shows_the_results() {
    ensure_tools();
    let host = Host::start_with_sections("", &pipeline_components());

    let shot = screenshots().join("transactions-fraud-sample.png");
    let seen = run_page(
        &host.url("/"),
        &samples().join("Dados - Fraude1.json"),
        &shot,
        Some("6"),
    );
    assert_eq!(seen["title"], "Transactions — upload");
    assert_eq!(seen["total"], "6");
    assert_eq!(seen["processed"], "6");
    assert_eq!(seen["flagged"], "4", "{seen}");
    let cells: Vec<&str> = seen["flaggedCells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cells.contains(&"inactive_client"), "{cells:?}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a real screenshot"
    );

    // A broken file: the page lists each problem and saves nothing.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(
        &bad,
        r#"[{"_id": "x1", "isActive": "no", "cliente": "A", "email": "a@b.c", "endereco": "C, E, 1", "datatrasancao": "2024-03-11T12:00:00 +00:00"}]"#,
    )
    .unwrap();
    let shot = screenshots().join("transactions-invalid-file.png");
    let seen = run_page(&host.url("/"), &bad, &shot, None);
    assert_eq!(seen["problems"], 1, "{seen}");
    assert!(
        seen["message"]
            .as_str()
            .unwrap()
            .contains("nothing was saved"),
        "{seen}"
    );
}

/// Runs `host/tests/browser/<script>` with `args`; its last output line is
/// JSON.
fn run_script(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("node")
        .arg(browser_dir().join(script))
        .args(args)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad page output ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_viewer_filters_pages_charts_and_tails() {
    ensure_tools();
    // Without the access log: the page's own requests would add rows.
    let host = Host::start_with_sections(
        "[access_log]\nenabled = false\n",
        &crate::logger::logger_components(30),
    );
    let http = Http::new();
    // 40 records over the last half hour: web and api, every fifth a failure.
    let now = chrono::Utc::now().timestamp_millis();
    let records: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let at = chrono::DateTime::from_timestamp_millis(now - 60_000 - i * 40_000).unwrap();
            serde_json::json!({
                "service": if i % 2 == 0 { "web" } else { "api" },
                "user_id": format!("u{}", i % 3),
                "action": "view",
                "result": if i % 5 == 0 { "failure" } else { "success" },
                "cause": if i % 5 == 0 { Some("upstream timeout") } else { None },
                "timestamp": at.to_rfc3339(),
            })
        })
        .collect();
    let reply =
        crate::logger::post_json(&http, &host.url("/logs"), &serde_json::json!(records)).await;
    assert_eq!(
        reply.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let mut newest_first: Vec<String> = reply.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    newest_first.sort_by(|a, b| b.cmp(a));

    let shot = screenshots().join("logs-viewer.png");
    let url = host.url("/logs/");
    let shot_path = shot.to_str().unwrap().to_owned();
    let seen = tokio::task::spawn_blocking(move || {
        run_script(
            "logs.mjs",
            &[&url, &shot_path, "web", "failure", "tail-svc"],
        )
    })
    .await
    .unwrap();

    assert_eq!(seen["title"], "Logs — viewer");
    let initial = &seen["initial"];
    assert_eq!(initial["rows"], 40, "{initial}");
    let times: Vec<&str> = initial["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    assert_eq!(
        (
            initial["totalSuccess"].as_str(),
            initial["totalFailure"].as_str()
        ),
        (Some("32"), Some("8"))
    );
    let bar_sum = |bars: &serde_json::Value, result: &str| -> u64 {
        bars.as_array()
            .unwrap()
            .iter()
            .filter(|b| b["result"] == result)
            .map(|b| b["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        (
            bar_sum(&initial["bars"], "success"),
            bar_sum(&initial["bars"], "failure")
        ),
        (32, 8)
    );

    // web and failure: i in {0, 10, 20, 30}.
    let filtered = &seen["filtered"];
    assert_eq!(
        filtered["services"],
        serde_json::json!(["web"]),
        "{filtered}"
    );
    assert_eq!(filtered["results"], serde_json::json!(["failure"]));
    assert_eq!(filtered["rows"], 4);
    assert_eq!(
        (
            filtered["totalSuccess"].as_str(),
            filtered["totalFailure"].as_str()
        ),
        (Some("0"), Some("4"))
    );
    assert_eq!(bar_sum(&filtered["bars"], "failure"), 4);

    let pages = &seen["pages"];
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(list(&pages["first"]), newest_first[..10].to_vec());
    assert_eq!(list(&pages["second"]), newest_first[10..20].to_vec());
    assert_eq!(pages["back"], pages["first"]);
    assert!(
        pages["status"].as_str().unwrap().contains("page 2"),
        "{pages}"
    );

    let tail = &seen["tail"];
    assert_eq!(tail["posted"]["status"], 201);
    assert_eq!(tail["topService"], "tail-svc");
    assert_eq!(tail["fresh"], 1);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a real screenshot"
    );
}
