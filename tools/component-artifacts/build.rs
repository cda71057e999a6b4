//! Builds every component of `components/` for wasm32-wasip2 so that a plain
//! `cargo test` has them (the pattern of wasmtime's test-programs artifacts),
//! and writes their paths into `$OUT_DIR/artifacts.rs`: one constant per
//! crate directory, in `components/` (the services) or `components/probes/`
//! (the test probes), named after the directory (`kv-probe` → `KV_PROBE`).
//!
//! The nested cargo uses the components' own target directory, so it never
//! waits on the lock of the outer build, and shares its output with
//! `corral up --build`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let components = root.join("components");
    let wit = root.join("wit");

    watch(&components.join("Cargo.toml"));
    watch(&components.join("Cargo.lock"));
    watch(&wit);
    // The probes' folder as a whole: a new probe in it is a new member.
    let probes = components.join("probes");
    watch(&probes);
    let mut members = Vec::new();
    for dir in [&components, &probes] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.join("Cargo.toml").exists() {
                watch(&path);
                members.push(path);
            }
        }
    }
    // A stable order, so that the generated file only changes with the set.
    members.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&components)
        .args(["build", "--release", "--target", "wasm32-wasip2"]);
    // Settings meant for the outer (native) build must not leak into the
    // wasm build.
    for (key, _) in std::env::vars() {
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_NET_OFFLINE")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            command.env_remove(&key);
        }
    }
    let status = command.status().expect("running cargo for the components");
    if !status.success() {
        panic!(
            "building the components failed ({status}); is the wasm32-wasip2 target installed? \
             (`rustup target add wasm32-wasip2`; rust-toolchain.toml lists it)"
        );
    }

    let release = components.join("target/wasm32-wasip2/release");
    let mut out = String::new();
    for member in &members {
        let name = member.file_name().unwrap().to_str().unwrap();
        let wasm = release.join(format!("{}.wasm", name.replace('-', "_")));
        if wasm.exists() {
            out.push_str(&format!(
                "pub const {}: &str = {:?};\n",
                name.to_uppercase().replace('-', "_"),
                wasm.display().to_string()
            ));
        }
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("artifacts.rs"), out).unwrap();
}

/// A toolchain that was installed before `rust-toolchain.toml` named the
/// wasm target does not get it automatically; add it so that a plain
/// `cargo test` works on a fresh machine with only rustup.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if libdir.is_some_and(|dir| dir.exists()) {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target with rustup");
    match Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
    {
        Ok(status) if status.success() => {}
        other => println!("cargo:warning=`rustup target add wasm32-wasip2` failed: {other:?}"),
    }
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
