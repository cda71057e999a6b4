#!/usr/bin/env bash
# Loopback benchmarks for corral (`just bench`). See README.md, "Benchmarks".
#
#  1. HTTP hello world, same run, same load generator (tools/loadgen):
#       - corral serving components/hello at /hello,
#       - a native hyper server (tools/native-hello) with the same answer,
#       - `wasmtime serve` on the same hello.wasm, only if a wasmtime binary
#         is given ($WASMTIME) or on PATH; never installed by this script.
#     Each: fixed concurrency, warm-up, then a measured window bounded in
#     time (DURATION) and in count (MAX_REQUESTS); req/s, p50/p99, non-2xx.
#  2. `cargo bench -p corral --bench runtime`: per-request instantiation and
#     redeploy time, cold (compile) and cached.
#  3. A summary table, and everything as JSON in target/bench/results.json.
#
# Usage: scripts/bench.sh [--quick] [--skip-http] [--skip-runtime]
# Settings (environment):
#   DURATION=10        measured seconds per target        (--quick: 3)
#   WARMUP=2           warm-up seconds per target         (--quick: 1)
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

DURATION=${DURATION:-}
WARMUP=${WARMUP:-}
CONNECTIONS=${CONNECTIONS:-32}
MAX_REQUESTS=${MAX_REQUESTS:-2000000}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
PIN=${PIN:-auto}
OUT=${OUT:-target/bench/results.json}
RUN_HTTP=1
RUN_RUNTIME=1
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --skip-http) RUN_HTTP=0 ;;
    --skip-runtime) RUN_RUNTIME=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}; fi
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
say "building release binaries (corral, loadgen, native-hello)"
cargo build --release -p corral -p loadgen -p native-hello
BIN=$ROOT/target/release
say "building the hello component (wasm32-wasip2)"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
(cd components && cargo build --release --target wasm32-wasip2 -p hello)
HELLO_WASM=$ROOT/components/target/wasm32-wasip2/release/hello.wasm
[ -f "$HELLO_WASM" ] || die "missing $HELLO_WASM"

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

# The 1-minute load average before each run goes into the results: other
# busy processes on the machine skew the figures.
LOADAVG_JSON=
loadavg_note() {
  local avg
  avg=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
  LOADAVG_JSON="${LOADAVG_JSON:+$LOADAVG_JSON, }\"$1\": $avg"
  if awk -v a="$avg" 'BEGIN { exit !(a > 0.5) }'; then
    echo "bench: warning: load average is $avg before '$1': other processes are using the CPU; figures will be lower and noisier" >&2
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

# CPU use of the server and the client during each run, in % of one CPU:
# it shows which side was the bottleneck.
CPU_JSON=
# load NAME URL: runs the load generator, leaves its JSON in $WORK/NAME.json.
load() {
  local name=$1 url=$2
  check_hello "$url"
  loadavg_note "$name"
  say "load: $name ($url): ${CONNECTIONS} connections, ${WARMUP}s warm-up + ${DURATION}s (max ${MAX_REQUESTS} requests)"
  local cpu_before t_before t_after server_pct client_pct
  cpu_before=$(cpu_seconds "$SERVER_PID")
  t_before=$(date +%s.%N)
  "${CLIENT_PIN[@]}" "$BIN/loadgen" "$url" --label "$name" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
    --max-requests "$MAX_REQUESTS" --threads "$LOADGEN_THREADS" --timeout 5 \
    >"$WORK/$name.json"
  t_after=$(date +%s.%N)
  server_pct=$(awk -v a="$cpu_before" -v b="$(cpu_seconds "$SERVER_PID")" -v t0="$t_before" -v t1="$t_after" \
    'BEGIN { printf "%.0f", 100 * (b - a) / (t1 - t0) }')
  client_pct=$(awk -v c="$(jget "$WORK/$name.json" .client_cpu_seconds)" -v t0="$t_before" -v t1="$t_after" \
    'BEGIN { printf "%.0f", 100 * c / (t1 - t0) }')
  echo "$server_pct" >"$WORK/$name.server_cpu"
  echo "$client_pct" >"$WORK/$name.client_cpu"
  CPU_JSON="${CPU_JSON:+$CPU_JSON, }\"$name\": {\"server\": $server_pct, \"client\": $client_pct}"
  cat "$WORK/$name.json" >&2
}

WASMTIME_NOTE=
if [ "$RUN_HTTP" = 1 ]; then
  # native hyper baseline
  start_server native 'listening on ([0-9.:]+)' \
    "${SERVER_PIN[@]}" "$BIN/native-hello" --listen 127.0.0.1:0
  load native "http://$ADDR/hello"
  stop_server

  # corral
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
  start_server corral 'corral is up.*http=([0-9.:]+)' \
    "${SERVER_PIN[@]}" env CORRAL_LOG=info NO_COLOR=1 "$BIN/corral" up --config "$WORK/corral.toml"
  load corral "http://$ADDR/hello"
  stop_server

  # wasmtime serve (optional)
  WASMTIME=${WASMTIME:-$(command -v wasmtime || true)}
  if [ -n "$WASMTIME" ] && [ -x "$WASMTIME" ]; then
    WASMTIME_VERSION=$("$WASMTIME" --version)
    start_server wasmtime 'Serving HTTP on http://([0-9.:]+)/' \
      "${SERVER_PIN[@]}" "$WASMTIME" serve -Scli --addr 127.0.0.1:0 "$HELLO_WASM"
    load wasmtime "http://$ADDR/hello"
    stop_server
  else
    WASMTIME_NOTE="skipped: no wasmtime binary (set WASMTIME=path or put wasmtime on PATH)"
    say "wasmtime serve: $WASMTIME_NOTE"
  fi
fi

# -------------------------------------------------------------- runtime
if [ "$RUN_RUNTIME" = 1 ]; then
  say "cargo bench -p corral --bench runtime"
  cargo bench -p corral --bench runtime --no-run
  loadavg_note runtime
  timeout 600 cargo bench -p corral --bench runtime >"$WORK/runtime.json"
  cat "$WORK/runtime.json" >&2
fi

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
  printf '  "settings": {"duration_s": %s, "warmup_s": %s, "connections": %s, "max_requests": %s, "loadgen_threads": %s, "pinning": "%s"},\n' \
    "$DURATION" "$WARMUP" "$CONNECTIONS" "$MAX_REQUESTS" "$LOADGEN_THREADS" "$PINNING"
  printf '  "loadavg_1m_before": {%s},\n' "$LOADAVG_JSON"
  printf '  "http": {\n'
  printf '    "native": %s,\n' "$(json_or_null "$WORK/native.json")"
  printf '    "corral": %s,\n' "$(json_or_null "$WORK/corral.json")"
  printf '    "cpu_pct_of_one_core": {%s},\n' "$CPU_JSON"
  if [ -s "$WORK/wasmtime.json" ]; then
    printf '    "wasmtime_serve": %s,\n' "$(cat "$WORK/wasmtime.json")"
    printf '    "wasmtime_version": "%s"\n' "$WASMTIME_VERSION"
  else
    printf '    "wasmtime_serve": {"skipped": "%s"}\n' "${WASMTIME_NOTE:-not run}"
  fi
  printf '  },\n'
  printf '  "runtime": %s\n' "$(json_or_null "$WORK/runtime.json")"
  printf '}\n'
} >"$OUT"
if command -v jq >/dev/null; then jq . "$OUT" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"; fi

# --------------------------------------------------------------- summary
echo
echo "corral benchmarks, $(date -u +%Y-%m-%d), $CPUS CPUs (${MODEL:-unknown}); pinning: $PINNING"
if [ "$RUN_HTTP" = 1 ]; then
  echo "hello world over loopback: ${CONNECTIONS} connections, ${DURATION}s measured after ${WARMUP}s warm-up"
  printf '%-16s %9s %8s %8s %8s %7s %7s %8s %8s\n' \
    target req/s p50_ms p99_ms max_ms non2xx errors srv_cpu% cli_cpu%
  for name in native corral wasmtime; do
    f=$WORK/$name.json
    if [ -s "$f" ]; then
      printf '%-16s %9s %8s %8s %8s %7s %7s %8s %8s\n' "$name" \
        "$(jget "$f" .rps)" "$(jget "$f" .latency_ms.p50)" "$(jget "$f" .latency_ms.p99)" \
        "$(jget "$f" .latency_ms.max)" "$(jget "$f" .non_2xx)" "$(jget "$f" .errors)" \
        "$(cat "$WORK/$name.server_cpu")" "$(cat "$WORK/$name.client_cpu")"
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
echo
echo "results: $OUT"
