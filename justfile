# Developer shortcuts on top of the two cargo commands in the README.
# `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build every component in components/ for wasm32-wasip2.
build-components:
    rustup target add wasm32-wasip2 2>/dev/null || true
    cd components && cargo build --release --target wasm32-wasip2

# Build and start the platform on embedded defaults (same as `cargo up`).
up *ARGS:
    cargo run --release -p corral -- up --build {{ARGS}}

# Run every test (same as `.ci/run` without starting services).
test:
    cargo test --workspace

# Throughput/latency, redeploy time and instantiation cost; see README.
bench *ARGS:
    scripts/bench.sh {{ARGS}}

# Hot-swap one component in the running host: `just redeploy status`
# rebuilds and redeploys it; `just redeploy status path/to/x.wasm` sends a file.
redeploy NAME WASM="":
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -z "{{WASM}}" ]; then
      (cd components && cargo build --release --target wasm32-wasip2 -p {{NAME}})
      cargo run --release -q -p corral -- redeploy {{NAME}}
    else
      cargo run --release -q -p corral -- redeploy {{NAME}} "{{WASM}}"
    fi

# Roll a component back to its previous version.
rollback NAME:
    cargo run --release -q -p corral -- rollback {{NAME}}

# List deployed components with version, digest, routes and age.
components:
    cargo run --release -q -p corral -- components
