#!/usr/bin/env bash
# /post into a real InfluxDB: wrk posts 1,000-point batches to `agent run` (api-http + sink-influx)
# and, in the same run against the same influxd, the same points as line protocol straight to
# influxd's /write. The agent's figure is end to end: points/s from the first request until
# sink-influx has delivered the last point. The agent runs with sink-influx's defaults (batch_size
# 5000, flush_interval 1 s, concurrency 4); the direct writes use as many connections as the sink
# keeps (4). Prints figures; asserts nothing.
# Usage: bench/post_wrk_influx.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seconds=${2:-10}
for needed in wrk curl /usr/bin/influxd; do
    command -v "$needed" >/dev/null || { echo "post_wrk_influx: $needed is missing" >&2; exit 1; }
done
tmp=$(mktemp -d)
agent_pid=""
influx_pid=""
cleanup() {
    for pid in $agent_pid $influx_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
pick_port() { echo $(( 20000 + RANDOM % 30000 )); }
http_port=$(pick_port); rpc_port=$(pick_port); api_port=$(pick_port)
influx="http://127.0.0.1:$http_port"

cat > "$tmp/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$tmp/influx/meta"
[data]
  dir = "$tmp/influx/data"
  wal-dir = "$tmp/influx/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$http_port"
  log-enabled = false
[logging]
  level = "warn"
CONF
/usr/bin/influxd -config "$tmp/influxdb.conf" > "$tmp/influxd.log" 2>&1 &
influx_pid=$!
for _ in $(seq 1 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$influx/ping") == 204 ]] && break
    sleep 0.1
done
curl -s -XPOST "$influx/query" --data-urlencode 'q=CREATE DATABASE direct' >/dev/null
curl -s -XPOST "$influx/query" --data-urlencode 'q=CREATE DATABASE bench' >/dev/null

# The same 1,000 points as JSON for /post and as line protocol for /write.
{
    printf '['
    for i in $(seq 1 1000); do
        (( i > 1 )) && printf ','
        printf '{"name":"app.requests.%d","timestamp":1700000000,"tags":{"service":"web","instance":"i-%d"},"value":%d.5}' \
            $(( i % 50 )) "$i" "$i"
    done
    printf ']'
} > "$tmp/body.json"
for i in $(seq 1 1000); do
    printf 'RUN.app.requests.%d,host=bench-host,instance=i-%d,service=web value=%d.5 1700000000\n' $(( i % 50 )) "$i" "$i"
done > "$tmp/body.lp"
lua() { # lua FILE CONTENT-TYPE
    printf 'local f = io.open("%s", "rb")\nwrk.method = "POST"\nwrk.body = f:read("*a")\nf:close()\nwrk.headers["Content-Type"] = "%s"\n' "$1" "$2"
}
lua "$tmp/body.lp" "text/plain" > "$tmp/direct.lua"
lua "$tmp/body.json" "application/json" > "$tmp/post.lua"

echo "=== straight to influxd /write (line protocol, 1,000 points per request, 4 connections, ${seconds} s)"
connections=4 # sink-influx's default concurrency
wrk -t2 -c$connections -d"${seconds}s" --latency -s "$tmp/direct.lua" "$influx/write?db=direct&precision=s" | tee "$tmp/direct.out"
direct=$(awk '/^Requests\/sec:/ { print $2 * 1000 }' "$tmp/direct.out")

mkdir -p "$tmp/modules"
ln -s "$PWD/$build/modules/api-http.so" "$tmp/modules/"
ln -s "$PWD/$build/modules/sink-influx.so" "$tmp/modules/"
cat > "$tmp/agent.toml" <<CONFIG
[agent]
listen = "127.0.0.1:$api_port"
hostname = "bench-host"
namespaces = ["bench"]
statedir = "$tmp/state"
pidfile = "$tmp/agent.pid"
[modules]
dir = "$tmp/modules"
load = ["api-http", "sink-influx"]
[log]
logdir = "$tmp/log"
loglevel = "WARN"
[output]
buffersize = 1000000
[sink-influx]
urls = ["$influx"]
CONFIG
"$build/agent" run -f "$tmp/agent.toml" > "$tmp/agent.out" 2>&1 &
agent_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$api_port/healthz" >/dev/null && break; sleep 0.1; done

metric() { curl -s "http://127.0.0.1:$api_port/metrics" | awk -v name="$1" '$1 ~ "^"name"[{]" { print $2 }'; }
echo "=== through the agent: /post (JSON) -> spool -> sink-influx -> influxd (${seconds} s of posting)"
start=$(date +%s.%N)
wrk -t2 -c8 -d"${seconds}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:$api_port/post?ns=bench" | tee "$tmp/post.out"
for _ in $(seq 1 600); do # until sink-influx has delivered everything it took
    [[ "$(metric agent_sink_points_out_total)" == "$(metric agent_sink_points_in_total)" ]] && break
    sleep 0.1
done
end=$(date +%s.%N)
taken=$(metric agent_sink_points_in_total)
awk -v taken="$taken" -v start="$start" -v end="$end" -v direct="$direct" 'BEGIN {
    agent = taken / (end - start)
    printf "post_wrk_influx: straight to influxd %.0f points/s; through the agent %.0f points/s end to end (%.2fx)\n", direct, agent, agent / direct
}'
awk '/ 99%/ { print "post_wrk_influx: p99 latency of /post " $2 }' "$tmp/post.out"
