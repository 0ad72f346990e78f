#!/usr/bin/env bash
# /post into a real InfluxDB: wrk posts 1,000-point batches to `agent run` (api-http + sink-influx)
# and, in the same run against the same influxd, the same points as line protocol straight to
# influxd's /write. The agent's figure is end to end: points/s from the first request until
# sink-influx has delivered the last point. The agent runs with sink-influx's defaults (batch_size
# 5000, flush_interval 1 s, concurrency 4); the direct writes use as many connections as the sink
# keeps (4).
#
# Two placements, each with a fresh influxd:
#   apart:  influxd on CPU 0; the clients (wrk) and the agent on CPU 1, as on a monitored host that
#           writes to a database elsewhere. The direct writes' wrk is on CPU 1 as well.
#   shared: every process on every CPU. On a small machine the agent's own CPU (parsing, spooling,
#           encoding) is then taken from influxd, and the ratio says how much.
# The agent's CPU per point (utime + stime over the points it took) is printed for both.
# Prints figures; asserts nothing.
# Usage: bench/post_wrk_influx.sh [BUILD_DIR] [SECONDS] [PLACEMENTS...]   (default: apart shared)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/influxd.sh
build=${1:-build}
seconds=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
placements=("$@")
(( ${#placements[@]} > 0 )) || placements=(apart shared)
for needed in wrk curl python3 taskset "${INFLUXD:-/usr/bin/influxd}"; do
    command -v "$needed" >/dev/null || { echo "post_wrk_influx: $needed is missing" >&2; exit 1; }
done
if (( $(nproc) < 2 )); then
    echo "post_wrk_influx: one CPU only; the apart placement is skipped" >&2
    placements=(shared)
fi
tmp=$(mktemp -d)
agent_pid=""
influx_pid=""
stop_all() {
    for pid in $agent_pid $influx_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    agent_pid=""
    influx_pid=""
}
trap 'stop_all; rm -rf "$tmp"' EXIT
pick_port() { echo $(( 20000 + RANDOM % 30000 )); }

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
mkdir -p "$tmp/modules"
ln -s "$PWD/$build/modules/api-http.so" "$tmp/modules/"
ln -s "$PWD/$build/modules/sink-influx.so" "$tmp/modules/"

cpu_seconds() { # utime + stime of a process, in seconds
    awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / tck }' "/proc/$1/stat"
}

measure() { # measure PLACEMENT
    local placement=$1 database_cpus="" client_cpus=""
    if [[ $placement == apart ]]; then database_cpus="taskset -c 0"; client_cpus="taskset -c 1"; fi
    local run="$tmp/$placement"
    local api_port
    api_port=$(pick_port)
    mkdir -p "$run"
    influxd_prepare "$run/influx"
    # shellcheck disable=SC2086 # $database_cpus is a command prefix, or nothing
    influxd_start "$run/influx" $database_cpus
    influx_pid=$influxd_pid
    local influx=$influxd_url
    curl -s -XPOST "$influx/query" --data-urlencode 'q=CREATE DATABASE direct' >/dev/null
    curl -s -XPOST "$influx/query" --data-urlencode 'q=CREATE DATABASE bench' >/dev/null

    echo "=== [$placement] straight to influxd /write (line protocol, 1,000 points per request, 4 connections, ${seconds} s)"
    local connections=4 # sink-influx's default concurrency
    $client_cpus wrk -t2 -c$connections -d"${seconds}s" --latency -s "$tmp/direct.lua" \
        "$influx/write?db=direct&precision=s" | tee "$run/direct.out"
    local direct
    direct=$(awk '/^Requests\/sec:/ { print $2 * 1000 }' "$run/direct.out")

    cat > "$run/agent.toml" <<CONFIG
[agent]
listen = "127.0.0.1:$api_port"
hostname = "bench-host"
namespaces = ["bench"]
statedir = "$run/state"
pidfile = "$run/agent.pid"
[modules]
dir = "$tmp/modules"
load = ["api-http", "sink-influx"]
[log]
logdir = "$run/log"
loglevel = "WARN"
[output]
buffersize = 1000000
[sink-influx]
urls = ["$influx"]
CONFIG
    $client_cpus "$build/agent" run -f "$run/agent.toml" > "$run/agent.out" 2>&1 &
    agent_pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$api_port/healthz" >/dev/null && break; sleep 0.1; done

    metric() { curl -s "http://127.0.0.1:$api_port/metrics" | awk -v name="$1" '$1 ~ "^"name"[{]" { print $2 }'; }
    echo "=== [$placement] through the agent: /post (JSON) -> spool -> sink-influx -> influxd (${seconds} s of posting)"
    local cpu_before start end
    cpu_before=$(cpu_seconds "$agent_pid")
    start=$(date +%s.%N)
    $client_cpus wrk -t2 -c8 -d"${seconds}s" --latency -s "$tmp/post.lua" \
        "http://127.0.0.1:$api_port/post?ns=bench" | tee "$run/post.out"
    for _ in $(seq 1 1200); do # until sink-influx has delivered everything it took
        [[ "$(metric agent_sink_points_out_total)" == "$(metric agent_sink_points_in_total)" ]] && break
        sleep 0.1
    done
    end=$(date +%s.%N)
    local taken cpu_after
    taken=$(metric agent_sink_points_in_total)
    cpu_after=$(cpu_seconds "$agent_pid")
    awk -v taken="$taken" -v start="$start" -v end="$end" -v direct="$direct" -v placement="$placement" \
        -v cpu="$(awk -v a="$cpu_after" -v b="$cpu_before" 'BEGIN { print a - b }')" 'BEGIN {
        agent = taken / (end - start)
        printf "post_wrk_influx [%s]: straight to influxd %.0f points/s; through the agent %.0f points/s end to end (%.2fx); the agent used %.2f us of CPU per point (%d points)\n", placement, direct, agent, agent / direct, cpu / taken * 1e6, taken
    }'
    awk -v placement="$placement" '/ 99%/ { print "post_wrk_influx [" placement "]: p99 latency of /post " $2 }' "$run/post.out"
    stop_all
}

for placement in "${placements[@]}"; do
    case $placement in
    apart | shared) measure "$placement" ;;
    *) echo "post_wrk_influx: unknown placement $placement (apart or shared)" >&2; exit 2 ;;
    esac
done
