#!/usr/bin/env bash
# CPU used by `agent run` with source-host collecting every group every second (target: under
# 0.5 % of one core), delivering to sink-file. The agent's utime + stime from /proc/<pid>/stat are
# sampled after a settling period and again MEASURE seconds later. Prints figures only.
# Usage: bench/host_cpu.sh [BUILD_DIR] [MEASURE_SECONDS]   (defaults: build, 60)
# Everything the agent writes goes to a temporary directory that is removed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
build=${1:-build}
measure=${2:-60}
settle=5
case $build in /*) ;; *) build=$repo/$build ;; esac
[[ -x $build/agent ]] || { echo "host_cpu: $build/agent not found; build first" >&2; exit 1; }
[[ -f $build/modules/source-host.so ]] || { echo "host_cpu: $build/modules/source-host.so not found" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/agent-host-cpu.XXXXXX")
pid=
cleanup() {
    # Only the agent this script started, by its pid.
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/agent.toml" <<CONFIG
[agent]
listen = ""
hostname = "bench-host"
namespaces = ["bench"]
statedir = "$tmp/state"
pidfile = "$tmp/agent.pid"
[modules]
dir = "$build/modules"
load = ["source-host", "sink-file"]
[log]
logdir = "$tmp/log"
loglevel = "WARN"
[source-host]
interval = 1
[sink-file]
path = "$tmp/metrics.lp"
CONFIG

(cd "$tmp" && exec "$build/agent" run -f "$tmp/agent.toml" >"$tmp/stdout.log" 2>&1) &
pid=$!
sleep "$settle"
kill -0 "$pid" 2>/dev/null || { echo "host_cpu: the agent exited early; its output:" >&2; cat "$tmp/stdout.log" >&2; exit 1; }

ticks=$(getconf CLK_TCK)
# utime and stime are fields 14 and 15; the command name (field 2) has no space here.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rounds() { grep -c '^agent\.alive,' "$tmp/metrics.lp" || true; }
lines() { wc -l <"$tmp/metrics.lp"; }

cpu0=$(cpu_ticks) rounds0=$(rounds) lines0=$(lines)
start=$(date +%s%N)
sleep "$measure"
cpu1=$(cpu_ticks) rounds1=$(rounds) lines1=$(lines)
end=$(date +%s%N)

awk -v c=$((cpu1 - cpu0)) -v t="$ticks" -v ns=$((end - start)) -v r=$((rounds1 - rounds0)) \
    -v p=$((lines1 - lines0)) 'BEGIN {
    s = ns / 1e9
    printf "host_cpu: source-host, every group every 1 s, into sink-file; %d rounds, %d points in %.1f s\n", r, p, s
    printf "host_cpu: agent CPU (utime + stime): %.1f ms = %.3f %% of one core (%.2f ms per round; clock tick %.0f ms)\n",
        1000 * c / t, 100 * c / t / s, (r > 0 ? 1000 * c / t / r : 0), 1000 / t
}'
