#!/usr/bin/env bash
# InfluxDB write throughput: points/s from the agent's bus into a real influxd through sink-influx,
# against the same line protocol posted directly by one client (curl, one keep-alive connection,
# prebuilt files of batch_size lines), in the same run, on the same influxd. Also the agent's CPU
# use while it drains (utime + stime from /proc/<pid>/stat). Prints figures; asserts nothing.
#
# How the agent side is measured: the agent starts while influxd is down, so the burst source's
# points all wait in the sink's spool; then influxd starts and the clock runs from its first
# /ping until `SELECT count(n)` shows every point. That is the sink draining a backlog at full
# speed (creating the database included), not the source's pace.
#
# Usage: bench/InfluxBench.sh BUILD_DIR [POINTS_PER_COLLECTION] [COLLECTIONS]
#   BUILD_DIR needs agent, modules/sink-influx.so and test-modules/source-burst.so.
# Environment: INFLUXD (default /usr/bin/influxd), BENCH_BATCH_SIZE (default 5000), BENCH_GZIP (false; not GZIP, which gzip itself reads).
set -euo pipefail

source "$(dirname "$0")/influxd.sh"
build=$(cd "${1:?usage: $0 BUILD_DIR [POINTS_PER_COLLECTION] [COLLECTIONS]}" && pwd)
per_collection=${2:-50000}
collections=${3:-8}
total=$((per_collection * collections))
batch_size=${BENCH_BATCH_SIZE:-5000}
gzip=${BENCH_GZIP:-false}
influxd=${INFLUXD:-/usr/bin/influxd}

for needed in "$build/agent" "$build/modules/sink-influx.so" "$build/test-modules/source-burst.so" "$influxd"; do
    [[ -e $needed ]] || { echo "InfluxBench: $needed not found" >&2; exit 1; }
done
for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "InfluxBench: $tool is needed" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/influxbench.XXXXXX")
influx_pid=""
agent_pid=""
cleanup() {
    for pid in $agent_pid $influx_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat, after the
# command name, which may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
ticks_per_second=$(getconf CLK_TCK)

influxd_prepare "$work/influx"
url=$influxd_url

count() { # count(n) of measurement burst in database $1; 0 when there is none yet
    curl -s "$url/query" --data-urlencode "db=$1" --data-urlencode 'q=SELECT count(n) FROM burst' |
        python3 -c 'import json,sys
try:
    print(json.load(sys.stdin)["results"][0]["series"][0]["values"][0][1])
except Exception:
    print(0)'
}

# Points influxd has taken in since it started (its expvar counter write.pointReqLocal). Cheap to
# read, unlike a SELECT count() over hundreds of thousands of series, which would compete with the
# writes being measured for the same two cores.
points_taken() {
    curl -s "$url/debug/vars" | python3 -c 'import json,sys
print(json.load(sys.stdin).get("write", {}).get("values", {}).get("pointReqLocal", 0))'
}

wait_for_points() { # expected; prints the time influxd had taken them in
    for _ in $(seq 6000); do
        [[ $(points_taken) -ge $1 ]] && { now; return 0; }
        sleep 0.05
    done
    echo "InfluxBench: influxd never took $1 points (took $(points_taken))" >&2
    exit 1
}

echo "InfluxBench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); influxd $("$influxd" version 2>/dev/null | head -1)"
echo "InfluxBench: $total points ($collections collections of $per_collection), batch_size $batch_size, gzip $gzip"

# --- The direct client's input, built first so that building it is not timed: the same lines the
# sink sends (tags host, n, seq; fields value and n), in files of batch_size lines.
mkdir -p "$work/direct"
python3 - "$work/direct" "$per_collection" "$collections" "$batch_size" <<'EOF'
import sys, time
out, per, collections, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
now = int(time.time())
lines = []
for seq in range(collections):
    for n in range(per):
        lines.append(f"burst,host=bench-host,n={n},seq={seq} value={n},n={n}i {now + seq}\n")
for i in range(0, len(lines), size):
    with open(f"{out}/chunk-{i // size:06d}.lp", "w") as f:
        f.writelines(lines[i:i + size])
EOF

# --- The agent: its source publishes everything while influxd is down.
mkdir -p "$work/modules"
ln -s "$build/modules/sink-influx.so" "$work/modules/sink-influx.so"
ln -s "$build/test-modules/source-burst.so" "$work/modules/source-burst.so"
cat >"$work/agent.toml" <<EOF
[agent]
listen = ""
hostname = "bench-host"
namespaces = ["bench_agent"]
statedir = "$work/state"
pidfile = "$work/agent.pid"
[modules]
dir = "$work/modules"
load = ["source-burst", "sink-influx"]
[log]
logdir = "$work/log"
loglevel = "WARN"
[output]
buffersize = $((total + per_collection))
retry_initial = 0.05
retry_max = 0.2
[source-burst]
points = $per_collection
collections = $collections
interval = 1
[sink-influx]
urls = ["$url"]
batch_size = $batch_size
flush_interval = 1
gzip = $gzip
EOF
"$build/agent" run -f "$work/agent.toml" >"$work/agent.out" 2>&1 &
agent_pid=$!
sleep $((collections + 2)) # every collection published, into the spool
kill -0 "$agent_pid" 2>/dev/null || { echo "InfluxBench: the agent exited:" >&2; cat "$work/agent.out" >&2; exit 1; }

influxd_start "$work/influx"
influx_pid=$influxd_pid
t0=$(now)
cpu0=$(cpu_ticks "$agent_pid")
server0=$(cpu_ticks "$influx_pid")
t1=$(wait_for_points "$total")
cpu1=$(cpu_ticks "$agent_pid")
server1=$(cpu_ticks "$influx_pid")
kill -TERM "$agent_pid"
wait "$agent_pid" || true
agent_pid=""
agent_count=$(count bench_agent)

# --- The direct client: one curl, one connection kept alive, one request per file.
curl -s -o /dev/null -XPOST "$url/query" --data-urlencode 'q=CREATE DATABASE bench_direct'
encoding=()
if [[ $gzip == true ]]; then
    for f in "$work"/direct/chunk-*.lp; do gzip -1 "$f"; mv "$f.gz" "$f"; done
    encoding=(-H 'Content-Encoding: gzip')
fi
args=()
for f in "$work"/direct/chunk-*.lp; do
    ((${#args[@]})) && args+=(--next)
    args+=(-s -o /dev/null -w '%{http_code}\n' "${encoding[@]}" --data-binary "@$f" "$url/write?db=bench_direct&precision=s")
done
d0=$(now)
direct_server0=$(cpu_ticks "$influx_pid")
codes=$(curl "${args[@]}" | sort | uniq -c | tr -s ' ' | paste -sd, -)
d1=$(now)
direct_server1=$(cpu_ticks "$influx_pid")
direct_count=$(count bench_direct)

python3 - "$total" "$ticks_per_second" "$t0" "$t1" "$cpu0" "$cpu1" "$server0" "$server1" "$agent_count" \
    "$d0" "$d1" "$direct_server0" "$direct_server1" "$direct_count" "$codes" <<'EOF'
import sys
(total, hz, t0, t1, c0, c1, s0, s1, agent_count, d0, d1, ds0, ds1, direct_count, codes) = sys.argv[1:]
total, hz = int(total), int(hz)
agent_s, direct_s = float(t1) - float(t0), float(d1) - float(d0)
cpu = (int(c1) - int(c0)) / hz
server, direct_server = (int(s1) - int(s0)) / hz, (int(ds1) - int(ds0)) / hz
print(f"agent  (bus -> sink-influx): {total} points in {agent_s:.2f} s = {total / agent_s:,.0f} points/s "
      f"(includes CREATE DATABASE; SELECT count = {agent_count})")
print(f"  agent CPU:                 {cpu:.2f} s user+sys = {100 * cpu / agent_s:.0f}% of one core, "
      f"{1e6 * cpu / total:.2f} us per point")
print(f"  influxd CPU:               {server:.2f} s = {100 * server / agent_s:.0f}% of one core")
print(f"direct (curl, 1 connection): {total} points in {direct_s:.2f} s = {total / direct_s:,.0f} points/s "
      f"(HTTP codes: {codes.strip()}; SELECT count = {direct_count})")
print(f"  influxd CPU:               {direct_server:.2f} s = {100 * direct_server / direct_s:.0f}% of one core")
print(f"agent throughput / direct:   {direct_s / agent_s:.2f}")
EOF
