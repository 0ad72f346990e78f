#!/usr/bin/env bash
# /post throughput with wrk: 1,000-point JSON batches over keep-alive to `agent run` with api-http
# and a null sink (the test suite's sink-null: everything before a real sink is measured, the
# disk spool included). Prints points/s and latency percentiles; asserts nothing.
# Usage: bench/post_wrk.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seconds=${2:-10}
connections=${3:-16}
command -v wrk >/dev/null || { echo "post_wrk: wrk is not installed (Debian package wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/modules"
ln -s "$PWD/$build/modules/api-http.so" "$tmp/modules/api-http.so"
ln -s "$PWD/$build/test-modules/sink-null.so" "$tmp/modules/sink-null.so"
port=$(( 20000 + RANDOM % 20000 ))
cat > "$tmp/agent.toml" <<CONFIG
[agent]
listen = "127.0.0.1:$port"
hostname = "bench-host"
namespaces = ["bench"]
statedir = "$tmp/state"
pidfile = "$tmp/agent.pid"
[modules]
dir = "$tmp/modules"
load = ["api-http", "sink-null"]
[log]
logdir = "$tmp/log"
loglevel = "WARN"
[output]
buffersize = 1000000
CONFIG

# A 1,000-point body as a script would post it: name, tags, value, timestamp.
{
    printf '['
    for i in $(seq 1 1000); do
        (( i > 1 )) && printf ','
        printf '{"name":"app.requests.%d","timestamp":1700000000,"tags":{"service":"web","instance":"i-%d"},"value":%d.5}' \
            $(( i % 50 )) $(( i % 8 )) "$i"
    done
    printf ']'
} > "$tmp/body.json"
cat > "$tmp/post.lua" <<LUA
local f = io.open("$tmp/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

"$build/agent" run -f "$tmp/agent.toml" >"$tmp/agent.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
done
echo "post_wrk: body $(wc -c < "$tmp/body.json") bytes, 1000 points; wrk -t2 -c$connections -d${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:$port/post?ns=bench" | tee "$tmp/wrk.out"
awk '/^Requests\/sec:/ { printf "post_wrk: %.0f points/s (%.0f requests/s x 1000 points)\n", $2 * 1000, $2 }' "$tmp/wrk.out"
awk '/ 99%/ { print "post_wrk: p99 latency " $2 }' "$tmp/wrk.out"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^agent_http_requests_total|^agent_sink_points_(in|dropped)_total' || true
