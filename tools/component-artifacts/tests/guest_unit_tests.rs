//! The guest workspace (`components/`) is its own cargo workspace, built
//! for wasm32-wasip2, so `cargo test --workspace` at the root would not run
//! its unit tests. This test runs them natively (the SDK's error shapes,
//! multipart parsing, time formats, the components' own logic), so the
//! README's one test command covers the guests too.

use std::path::Path;
use std::process::Command;

#[test]
fn guest_unit_tests_pass() {
    let components = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../components");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&components)
        // Native target, its own target folder: no lock shared with the
        // wasm build or the outer build.
        .args(["test", "--workspace", "--all-features", "--target-dir"])
        .arg(components.join("target/native-tests"));
    for (key, _) in std::env::vars() {
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_NET_OFFLINE")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
        {
            command.env_remove(&key);
        }
    }
    let output = command.output().expect("running cargo test in components/");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "guest unit tests failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("test result: ok"),
        "no guest test ran:\n{stdout}"
    );
}
