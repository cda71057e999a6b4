//! The transactions page in a real headless Chromium (Debian's `chromium`,
//! driven by playwright-core from `host/tests/browser/`): a person picks a
//! sample file, clicks send, and sees per-record results. Screenshots are
//! saved under `target/screenshots/`.

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
