#!/usr/bin/env bash
# `make bench`: every benchmark executable of the build (bench/*Bench.cpp), then the idle-RSS
# check of `agent run`. Prints figures only; nothing here fails on a slow result.
# Usage: bench/run.sh [BUILD_DIR]   (default: build)
set -euo pipefail

cd "$(dirname "$0")/.."
build=${1:-build}

echo "bench: $(nproc) cores, $(lscpu 2>/dev/null | grep 'Model name' | tr -s ' ' || echo 'model unknown')"
echo "bench: load average $(cut -d' ' -f1-3 /proc/loadavg) (anything else running makes the figures noisy)"

found=0
for source in bench/*Bench.cpp; do
    name=$(basename "$source" .cpp)
    if [[ ! -x $build/$name ]]; then
        echo "bench: $build/$name not built (AGENT_BUILD_BENCH=OFF, or a module bench without AGENT_BUILD_TESTS); skipped" >&2
        continue
    fi
    found=1
    echo
    echo "=== $name"
    # Benchmark 1.7 takes a plain number of seconds here (1.8 would want "1s").
    "$build/$name" --benchmark_min_time=1
done
((found)) || { echo "bench: no bench/*Bench.cpp found" >&2; exit 1; }

echo
echo "=== idle RSS"
bash bench/idle_rss.sh "$build"

echo
echo "=== sink-influx into a real influxd, next to curl posting the same line protocol"
bash bench/InfluxBench.sh "$build"

echo
echo "=== recovery: a 2,000,000-point backlog drained into a real influxd, next to direct writes; kills and stalls"
bash bench/recovery.sh "$build"

echo
echo "=== source-exec: a clone and a fetch check through the git helper process"
bash bench/git_helper.sh "$build"

echo
echo "=== source-exec: threads, CPU per run and start delay with 10 and 1,000 plugins every 10 s; heartbeat gaps next to slow plugins"
bash bench/isolation.sh "$build"

echo
echo "=== source-host: CPU of the agent collecting every host group every second"
bash bench/host_cpu.sh "$build"

echo
echo "=== /post with wrk: 1,000-point batches to api-http and a null sink"
bash bench/post_wrk.sh "$build"

echo
echo "=== /post into a real InfluxDB, next to the same points posted straight to it"
bash bench/post_wrk_influx.sh "$build"
