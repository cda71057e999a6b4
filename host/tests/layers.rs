//! The layering of `host/src`, checked: every `crate::<module>` a file
//! names must sit in a lower layer than the file's own top-level module
//! (or be that module). So dependencies point one way:
//!
//! ```text
//! cli → platform → triggers, admin, watch → runtime → capabilities (+ bindings), server,
//!     access_log → broker → tokens → config, responses, shutdown
//! ```
//!
//! The one loop allowed is bindgen's: `bindings` maps WIT resources onto
//! capability types, and capabilities implement the generated traits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `host/src` and its layer: higher layers may use
/// lower ones only.
const LAYERS: &[(&str, u8)] = &[
    ("cli", 8),
    ("platform", 7),
    ("triggers", 6),
    ("admin", 6),
    ("watch", 6),
    ("runtime", 5),
    ("capabilities", 4),
    ("bindings", 4),
    ("server", 4),
    ("access_log", 4),
    ("broker", 3),
    ("tokens", 2),
    ("config", 1),
    ("responses", 1),
    ("shutdown", 1),
];

/// Same-layer pairs that may use each other: the bindgen loop.
const ALLOWED_SAME_LAYER: &[(&str, &str)] =
    &[("capabilities", "bindings"), ("bindings", "capabilities")];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code names as `crate::<module>`,
/// comments left out.
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn dependencies_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut unplaced = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        if !layer.contains_key(module.as_str()) {
            unplaced.insert(module.clone());
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            if used != module {
                edges
                    .entry((module.clone(), used))
                    .or_default()
                    .push(relative.display().to_string());
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS): {unplaced:?}"
    );
    let mut wrong = Vec::new();
    for ((from, to), files) in &edges {
        let Some(&to_layer) = layer.get(to.as_str()) else {
            wrong.push(format!("{from} -> {to}: unknown module ({files:?})"));
            continue;
        };
        let from_layer = layer[from.as_str()];
        let allowed =
            to_layer < from_layer || ALLOWED_SAME_LAYER.contains(&(from.as_str(), to.as_str()));
        if !allowed {
            wrong.push(format!(
                "{from} (layer {from_layer}) -> {to} (layer {to_layer}) in {files:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
    // The check must have seen the tree: the main edges exist.
    for (from, to) in [
        ("cli", "platform"),
        ("platform", "triggers"),
        ("triggers", "runtime"),
        ("runtime", "capabilities"),
        ("capabilities", "broker"),
        ("broker", "config"),
    ] {
        assert!(
            edges.contains_key(&(from.to_owned(), to.to_owned())),
            "expected {from} to use {to}"
        );
    }
}

#[test]
fn the_scanner_finds_crate_paths_and_skips_comments() {
    let found = uses(
        "use crate::broker::X;\n// crate::cli is only named here\nlet a = crate::config::load(crate::runtime::x);",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["broker", "config", "runtime"]
    );
}
