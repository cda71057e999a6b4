#!/usr/bin/env bash
# Loopback benchmarks for corral (`just bench`). See README.md, "Benchmarks".
#
#  1. HTTP hello world, same run, same load generator (tools/loadgen):
#       - corral serving components/hello at /hello,
#       - a native hyper server (tools/native-hello) with the same answer,
#       - `wasmtime serve` on the same hello.wasm, only if a wasmtime binary
#         is given ($WASMTIME) or on PATH; never installed by this script.
#     Each: fixed concurrency, warm-up, then a measured window bounded in
#     time (DURATION) and in count (MAX_REQUESTS); req/s, p50/p99, non-2xx,
#     and the CPU use of server and client. ROUNDS rounds alternate the
#     targets; the round with the most req/s is reported (all are in the
#     JSON).
#  2. `cargo bench -p corral --bench runtime`: per-request instantiation, a
#     whole request in-process (no sockets), and redeploy time, cold
#     (compile) and cached.
#  3. Only with --capabilities: `cargo bench -p corral --bench capabilities`,
#     key-value get/set through a component (in-process) vs native redis-rs
#     on Redis, and messages consumed through the queue trigger vs a native
#     lapin consumer on RabbitMQ, same run, same servers.
#  4. Only with --pipeline: `cargo bench -p corral --bench pipeline`, the
#     transaction pipeline end to end on the release binary (10,000-record
#     upload until nothing is pending), on the embedded backends and on
#     Redis + RabbitMQ + S3 (s3s-fs on loopback, installed with cargo if
#     missing), and RabbitMQ alone with plain lapin (the broker's ceiling).
#  5. Only with --services: `cargo bench -p corral --bench logger` (seed
#     002's log system: ingest, queries over 1,000,000 records, the access
#     log's cost) and `cargo bench -p corral --bench services` (users,
#     catalog, gateway auth and bad tokens against hello, same run).
#  6. A summary table, and everything as JSON in target/bench/results.json.
#
# Usage: scripts/bench.sh [--quick] [--skip-http] [--skip-runtime]
#                         [--capabilities] [--pipeline] [--services]
#                         [--backends-only]
#   --backends-only = --capabilities --pipeline --skip-http --skip-runtime
# The capability and pipeline benchmarks need Redis on 127.0.0.1:6379 and
# RabbitMQ on 127.0.0.1:5672 (guest/guest); see their sources in
# host/benches/ for their settings (KV_OPS, MSG_COUNT, PIPELINE_RECORDS...).
# Settings (environment):
#   ROUNDS=3           rounds over all targets             (--quick: 1)
#   DURATION=10        measured seconds per target/round   (--quick: 3)
#   WARMUP=2           warm-up seconds per target/round    (--quick: 1)
#   CONNECTIONS=32     concurrent connections (one request in flight each)
#   MAX_REQUESTS=2000000  cap on measured requests per target
#   LOADGEN_THREADS=1  client threads
#   PIN=auto           auto|1|0: with 2+ CPUs, run the client on CPU 0 and the
#                      server under test on the others (taskset), so the two
#                      do not fight over the same cores
#   WASMTIME=path      wasmtime binary for the optional comparison
#   OUT=target/bench/results.json
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS=${ROUNDS:-}
DURATION=${DURATION:-}
WARMUP=${WARMUP:-}
CONNECTIONS=${CONNECTIONS:-32}
MAX_REQUESTS=${MAX_REQUESTS:-2000000}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
PIN=${PIN:-auto}
OUT=${OUT:-target/bench/results.json}
RUN_HTTP=1
RUN_RUNTIME=1
RUN_CAPS=0
RUN_PIPELINE=0
RUN_SERVICES=0
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --skip-http) RUN_HTTP=0 ;;
    --skip-runtime) RUN_RUNTIME=0 ;;
    --capabilities) RUN_CAPS=1 ;;
    --pipeline) RUN_PIPELINE=1 ;;
    --services) RUN_SERVICES=1 ;;
    --backends-only) RUN_CAPS=1; RUN_PIPELINE=1; RUN_HTTP=0; RUN_RUNTIME=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}; fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# JSON reading: jq if present, else python3.
if command -v jq >/dev/null; then
  jget() { jq -r "$2 // empty" "$1"; }
elif command -v python3 >/dev/null; then
  jget() {
    python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].lstrip('.').split('.'):
    v = v.get(k) if isinstance(v, dict) else None
    if v is None: break
print('' if v is None else v)
PY
  }
else
  die "needs jq or python3 to read JSON"
fi

CPUS=$(nproc 2>/dev/null || echo 1)
if [ "$PIN" = auto ]; then
  if [ "$CPUS" -ge 2 ] && command -v taskset >/dev/null; then PIN=1; else PIN=0; fi
fi
if [ "$PIN" = 1 ]; then
  CLIENT_PIN=(taskset -c 0)
  SERVER_CPUS=1
  [ "$CPUS" -gt 2 ] && SERVER_CPUS="1-$((CPUS - 1))"
  SERVER_PIN=(taskset -c "$SERVER_CPUS")
  PINNING="client on CPU 0, server on CPU $SERVER_CPUS"
else
  CLIENT_PIN=()
  SERVER_PIN=()
  PINNING="none (client and server share all $CPUS CPUs)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/corral-bench.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
if [ "$RUN_HTTP" = 1 ]; then
  say "building release binaries (corral, loadgen, native-hello)"
  cargo build --release -p corral -p loadgen -p native-hello
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
  say "building the hello component (wasm32-wasip2)"
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
  (cd components && cargo build --release --target wasm32-wasip2 -p hello)
  HELLO_WASM=$ROOT/components/target/wasm32-wasip2/release/hello.wasm
  [ -f "$HELLO_WASM" ] || die "missing $HELLO_WASM"
fi

# ----------------------------------------------------------------- HTTP
# start_server NAME REGEX CMD... : starts CMD in the background, waits (60 s
# at most) for a log line matching REGEX and sets ADDR to its first capture
# group (host:port).
ADDR=
SERVER_PID=
start_server() {
  local name=$1 regex=$2
  shift 2
  local log=$WORK/$name.log
  "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 600); do
    if ADDR=$(sed -nE "s#.*${regex}.*#\\1#p" "$log" | head -n1) && [ -n "$ADDR" ]; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; die "$name exited before listening"; }
    sleep 0.1
  done
  cat "$log" >&2
  die "$name did not start within 60 s"
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# check_hello URL: one request must answer 200 "Hello, world!".
check_hello() {
  local body
  body=$(curl -fsS --max-time 5 "$1") || die "GET $1 failed"
  [ "$body" = "Hello, world!" ] || die "GET $1 answered ${body@Q}, not the hello body"
}

# idle_pct: how idle the CPUs were over the last second (0-100). Measured
# before every run, with the server already started and idle, and kept in
# the results: other busy processes on the machine skew the figures.
idle_pct() {
  local a b
  read -r -a a < /proc/stat
  sleep 1
  read -r -a b < /proc/stat
  awk -v i="$(( b[4] + b[5] - a[4] - a[5] ))" \
      -v t="$(( b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+b[8] - a[1]-a[2]-a[3]-a[4]-a[5]-a[6]-a[7]-a[8] ))" \
      'BEGIN { printf "%.0f", (t > 0 ? 100 * i / t : 100) }'
}
IDLE=100
check_idle() {
  IDLE=$(idle_pct)
  if [ "$IDLE" -lt 90 ]; then
    echo "bench: warning: the CPUs were only ${IDLE}% idle before $1: other processes are busy; figures will be lower and noisier" >&2
  fi
}

# CPU seconds (user + system) used so far by process $1.
cpu_seconds() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  awk -v u="${12}" -v s="${13}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (u + s) / hz }'
}

# load NAME ROUND URL: runs the load generator against the server just
# started, leaves its JSON in $WORK/runs/NAME.ROUND.json, extended with the
# CPU use of server and client during the run (in % of one CPU: it shows
# which side was the bottleneck) and how idle the machine was before it.
load() {
  local name=$1 round=$2 url=$3
  check_hello "$url"
  check_idle "$name round $round"
  local cpu_before t_before t_after server_pct client_pct out=$WORK/runs/$name.$round.json
  say "load: $name round $round/$ROUNDS ($url): ${CONNECTIONS} connections, ${WARMUP}s warm-up + ${DURATION}s (max ${MAX_REQUESTS} requests)"
  cpu_before=$(cpu_seconds "$SERVER_PID")
  t_before=$(date +%s.%N)
  "${CLIENT_PIN[@]}" "$BIN/loadgen" "$url" --label "$name" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
    --max-requests "$MAX_REQUESTS" --threads "$LOADGEN_THREADS" --timeout 5 \
    >"$out.tmp"
  t_after=$(date +%s.%N)
  server_pct=$(awk -v a="$cpu_before" -v b="$(cpu_seconds "$SERVER_PID")" -v t0="$t_before" -v t1="$t_after" \
    'BEGIN { printf "%.0f", 100 * (b - a) / (t1 - t0) }')
  client_pct=$(awk -v c="$(jget "$out.tmp" .client_cpu_seconds)" -v t0="$t_before" -v t1="$t_after" \
    'BEGIN { printf "%.0f", 100 * c / (t1 - t0) }')
  # loadgen prints one JSON object on one line: extend it in place.
  sed -E "s/\}\$/,\"round\":$round,\"server_cpu_pct\":$server_pct,\"client_cpu_pct\":$client_pct,\"cpu_idle_pct_before\":$IDLE}/" \
    "$out.tmp" >"$out"
  rm "$out.tmp"
  cat "$out" >&2
}

# best NAME: picks the round with the most req/s into $WORK/NAME.json and
# writes the req/s of every round to $WORK/NAME.rounds.
best() {
  local name=$1 best_rps=-1 f rps all=()
  for f in "$WORK"/runs/"$name".*.json; do
    [ -s "$f" ] || continue
    rps=$(jget "$f" .rps)
    all+=("${rps%.0}")
    if awk -v a="$rps" -v b="$best_rps" 'BEGIN { exit !(a > b) }'; then
      best_rps=$rps
      cp "$f" "$WORK/$name.json"
    fi
  done
  (IFS=,; echo "${all[*]}") >"$WORK/$name.rounds"
}

corral_config() {
  cat >"$WORK/corral.toml" <<TOML
[server]
listen = "127.0.0.1:0"
drain_timeout_ms = 1000

[admin]
listen = "127.0.0.1:0"
token = "bench-$RANDOM$RANDOM"

[runtime]
state_dir = "$WORK/state"
max_instances = 256
max_memory_mb = 64

[[component]]
name = "hello"
wasm = "$HELLO_WASM"
routes = ["/hello"]
limits = { memory_mb = 16, timeout_ms = 1000 }
TOML
}

WASMTIME_NOTE=
TARGETS=()
if [ "$RUN_HTTP" = 1 ]; then
  mkdir -p "$WORK/runs"
  corral_config
  TARGETS=(native corral)
  WASMTIME=${WASMTIME:-$(command -v wasmtime || true)}
  if [ -n "$WASMTIME" ] && [ -x "$WASMTIME" ]; then
    WASMTIME_VERSION=$("$WASMTIME" --version)
    TARGETS+=(wasmtime)
  else
    WASMTIME_NOTE="skipped: no wasmtime binary (set WASMTIME=path or put wasmtime on PATH)"
    say "wasmtime serve: $WASMTIME_NOTE"
  fi
  # Rounds alternate the targets, so a disturbance hits one round of one
  # target rather than all of a target's runs; each server starts fresh.
  for round in $(seq 1 "$ROUNDS"); do
    for target in "${TARGETS[@]}"; do
      case $target in
        native)
          start_server native 'listening on ([0-9.:]+)' \
            "${SERVER_PIN[@]}" "$BIN/native-hello" --listen 127.0.0.1:0 ;;
        corral)
          start_server corral 'corral is up.*http=([0-9.:]+)' \
            "${SERVER_PIN[@]}" env CORRAL_LOG=info NO_COLOR=1 "$BIN/corral" up --config "$WORK/corral.toml" ;;
        wasmtime)
          start_server wasmtime 'Serving HTTP on http://([0-9.:]+)/' \
            "${SERVER_PIN[@]}" "$WASMTIME" serve -Scli --addr 127.0.0.1:0 "$HELLO_WASM" ;;
      esac
      load "$target" "$round" "http://$ADDR/hello"
      stop_server
    done
  done
  for target in "${TARGETS[@]}"; do best "$target"; done
fi

# -------------------------------------------------------------- runtime
if [ "$RUN_RUNTIME" = 1 ]; then
  say "cargo bench -p corral --bench runtime"
  cargo bench -p corral --bench runtime --no-run
  check_idle "the runtime bench"
  RUNTIME_IDLE=$IDLE
  timeout 600 cargo bench -p corral --bench runtime >"$WORK/runtime.json"
  cat "$WORK/runtime.json" >&2
fi

# ------------------------------------------------- capabilities, pipeline
# run_cargo_bench NAME [ARGS]: builds first (never measured), checks that
# the machine is idle, runs `cargo bench --bench NAME` bounded in time; the
# JSON goes to $WORK/NAME.json, the progress and table to $WORK/NAME.err.
run_cargo_bench() {
  local name=$1
  shift
  say "cargo bench -p corral --bench $name"
  cargo bench -p corral --bench "$name" --no-run
  check_idle "the $name bench"
  eval "${name^^}_IDLE=$IDLE"
  timeout 1800 cargo bench -p corral --bench "$name" -- "$@" \
    >"$WORK/$name.json" 2> >(tee "$WORK/$name.err" >&2)
}
if [ "$RUN_CAPS" = 1 ]; then run_cargo_bench capabilities; fi
if [ "$RUN_PIPELINE" = 1 ]; then run_cargo_bench pipeline; fi
if [ "$RUN_SERVICES" = 1 ]; then run_cargo_bench logger; run_cargo_bench services; fi

# -------------------------------------------------------------- results
mkdir -p "$(dirname "$OUT")"
json_or_null() { if [ -s "$1" ]; then cat "$1"; else echo null; fi; }
MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
{
  printf '{\n'
  printf '  "date": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "git_commit": "%s",\n' "$(git describe --always --dirty 2>/dev/null || echo unknown)"
  printf '  "machine": {"cpus": %s, "cpu_model": "%s", "kernel": "%s"},\n' \
    "$CPUS" "${MODEL:-unknown}" "$(uname -sr)"
  printf '  "settings": {"rounds": %s, "duration_s": %s, "warmup_s": %s, "connections": %s, "max_requests": %s, "loadgen_threads": %s, "pinning": "%s"},\n' \
    "$ROUNDS" "$DURATION" "$WARMUP" "$CONNECTIONS" "$MAX_REQUESTS" "$LOADGEN_THREADS" "$PINNING"
  printf '  "http_note": "per target, the round with the most req/s; rps_all_rounds lists every round",\n'
  printf '  "http": {\n'
  for name in native corral wasmtime; do
    key=$name; [ "$name" = wasmtime ] && key=wasmtime_serve
    sep=,; [ "$name" = wasmtime ] && sep=
    if [ -s "$WORK/$name.json" ]; then
      extra="\"rps_all_rounds\": [$(cat "$WORK/$name.rounds")]"
      [ "$name" = wasmtime ] && extra="$extra, \"version\": \"$WASMTIME_VERSION\""
      printf '    "%s": %s%s\n' "$key" "$(sed -E "s/\}\$/, $extra}/" "$WORK/$name.json")" "$sep"
    elif [ "$name" = wasmtime ] && [ -n "$WASMTIME_NOTE" ]; then
      printf '    "%s": {"skipped": "%s"}%s\n' "$key" "$WASMTIME_NOTE" "$sep"
    else
      printf '    "%s": null%s\n' "$key" "$sep"
    fi
  done
  printf '  },\n'
  runs=$(cat "$WORK"/runs/*.json 2>/dev/null | paste -sd, - || true)
  printf '  "http_all_runs": [%s],\n' "$runs"
  printf '  "runtime_cpu_idle_pct_before": %s,\n' "${RUNTIME_IDLE:-null}"
  printf '  "runtime": %s,\n' "$(json_or_null "$WORK/runtime.json")"
  printf '  "capabilities_cpu_idle_pct_before": %s,\n' "${CAPABILITIES_IDLE:-null}"
  printf '  "capabilities": %s,\n' "$(json_or_null "$WORK/capabilities.json")"
  printf '  "pipeline_cpu_idle_pct_before": %s,\n' "${PIPELINE_IDLE:-null}"
  printf '  "pipeline": %s,\n' "$(json_or_null "$WORK/pipeline.json")"
  printf '  "logger": %s,\n' "$(json_or_null "$WORK/logger.json")"
  printf '  "services": %s\n' "$(json_or_null "$WORK/services.json")"
  printf '}\n'
} >"$OUT"
if command -v jq >/dev/null; then jq . "$OUT" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"; fi

# --------------------------------------------------------------- summary
echo
echo "corral benchmarks, $(date -u +%Y-%m-%d), $CPUS CPUs (${MODEL:-unknown}); pinning: $PINNING"
if [ "$RUN_HTTP" = 1 ]; then
  echo "hello world over loopback: ${CONNECTIONS} connections, ${DURATION}s measured after ${WARMUP}s warm-up;"
  echo "best of $ROUNDS rounds by req/s (every round's req/s in the last column)"
  printf '%-16s %9s %8s %8s %8s %7s %7s %8s %8s  %s\n' \
    target req/s p50_ms p99_ms max_ms non2xx errors srv_cpu% cli_cpu% rounds
  for name in native corral wasmtime; do
    f=$WORK/$name.json
    if [ -s "$f" ]; then
      printf '%-16s %9s %8s %8s %8s %7s %7s %8s %8s  %s\n' "$name" \
        "$(jget "$f" .rps)" "$(jget "$f" .latency_ms.p50)" "$(jget "$f" .latency_ms.p99)" \
        "$(jget "$f" .latency_ms.max)" "$(jget "$f" .non_2xx)" "$(jget "$f" .errors)" \
        "$(jget "$f" .server_cpu_pct)" "$(jget "$f" .client_cpu_pct)" "$(cat "$WORK/$name.rounds")"
    elif [ "$name" = wasmtime ] && [ -n "$WASMTIME_NOTE" ]; then
      printf '%-16s %s\n' "wasmtime serve" "$WASMTIME_NOTE"
    fi
  done
fi
if [ "$RUN_RUNTIME" = 1 ] && [ -s "$WORK/runtime.json" ]; then
  f=$WORK/runtime.json
  echo
  printf 'instantiation per request: mean %s us, p50 %s us, p99 %s us (n=%s)\n' \
    "$(jget "$f" .instantiate_us.mean)" "$(jget "$f" .instantiate_us.p50)" \
    "$(jget "$f" .instantiate_us.p99)" "$(jget "$f" .instantiate_us.n)"
  printf 'request in-process:        mean %s us, p50 %s us, p99 %s us (instantiate + handler + body, no sockets)\n' \
    "$(jget "$f" .request_in_process_us.mean)" "$(jget "$f" .request_in_process_us.p50)" \
    "$(jget "$f" .request_in_process_us.p99)"
  printf 'redeploy, cold compile:    mean %s ms (min %s, max %s, n=%s)\n' \
    "$(jget "$f" .redeploy_cold_ms.mean)" "$(jget "$f" .redeploy_cold_ms.min)" \
    "$(jget "$f" .redeploy_cold_ms.max)" "$(jget "$f" .redeploy_cold_ms.n)"
  printf 'redeploy, compile cached:  mean %s ms (min %s, max %s, n=%s)\n' \
    "$(jget "$f" .redeploy_cached_ms.mean)" "$(jget "$f" .redeploy_cached_ms.min)" \
    "$(jget "$f" .redeploy_cached_ms.max)" "$(jget "$f" .redeploy_cached_ms.n)"
fi
for name in capabilities pipeline; do
  if [ -s "$WORK/$name.err" ]; then
    # The tables the bench printed, without its progress lines.
    grep -v '^  \.\. ' "$WORK/$name.err" | grep -v '^ *\(Finished\|Running\|Compiling\)' || true
  fi
done
echo
echo "results: $OUT"
