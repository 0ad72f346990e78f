#!/usr/bin/env bash
# CPU used by the agent itself with 1,000 plugins scheduled every 10 s (source-exec): a file://
# registry lists 1,000 plugins (all clones of one bare repository whose plugin prints "[]"),
# the agent clones them, then its own CPU (utime + stime) and its reaped children's CPU
# (cutime + cstime: the plugins) are sampled over MEASURE seconds. Also the agent's threads (the
# same for any number of plugins: runs are supervised by one thread, docs/ARCHITECTURE.md §5) and
# the delay between a plugin's due time and its start (p50, p99, max, from source-exec's health
# in /me/status). Prints figures only.
# Usage: bench/plugins_cpu.sh [BUILD_DIR] [PLUGINS] [MEASURE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
plugins=${2:-1000}
measure=${3:-60}
agent="$PWD/$build/agent"
modules="$PWD/$build/modules"
tmp=$(mktemp -d)
chmod 755 "$tmp"
pid=""
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# One bare repository with a `release` branch; every plugin's address is a symlink to it.
work="$tmp/work"
mkdir -p "$work" "$tmp/git/ops"
git -C "$work" init -q -b release
printf '#!/bin/sh\necho "[]"\n' > "$work/plugin"
chmod 755 "$work/plugin"
git -C "$work" add plugin
git -C "$work" -c user.name=bench -c user.email=bench@localhost commit -q -m plugin
git clone -q --bare "$work" "$tmp/git/ops/p.git"
entries=""
for i in $(seq 1 "$plugins"); do
    ln -s "$tmp/git/ops/p.git" "$tmp/git/ops/p$i.git"
    entries+="${entries:+,}{\"measurement_type\": \"PLUGIN\", \"name\": \"PLUGIN.p$i\", \"git\": \"git@git.example.com:ops/p$i.git\", \"interval\": \"10\"}"
done
printf '{"namespaces": {"bench": "1"}, "resources": {"bench": [%s]}}\n' "$entries" > "$tmp/registry.json"

port=$((20000 + RANDOM % 20000))
cat > "$tmp/agent.toml" <<CONFIG
[agent]
listen = "127.0.0.1:$port"
registryaddr = "file://$tmp/registry.json"
pluginsdir = "$tmp/plugins"
pluginsuser = "nobody"
git = "file://$tmp/git/%s.git"
statedir = "$tmp/state"
pidfile = "$tmp/agent.pid"
[modules]
dir = "$modules"
load = ["source-exec", "sink-file", "api-http"]
[log]
logdir = "$tmp/log"
loglevel = "WARN"
[source-exec]
clone_splay = 0
max_parallel_clones = 4
[sink-file]
path = "$tmp/metrics.lp"
CONFIG

"$agent" run -f "$tmp/agent.toml" >/dev/null 2>&1 &
pid=$!
start=$(date +%s)
while (( $(find "$tmp/plugins/bench" -maxdepth 1 -type l 2>/dev/null | wc -l) < plugins )); do
    sleep 1
    (( $(date +%s) - start > 600 )) && { echo "plugins_cpu: clones did not finish in 600 s" >&2; exit 1; }
done
echo "plugins_cpu: $plugins plugins cloned in $(( $(date +%s) - start )) s"
sleep 12 # one full period: every plugin scheduled

ticks=$(getconf CLK_TCK)
read_cpu() { awk '{print $14 + $15, $16 + $17}' "/proc/$pid/stat"; }
read -r self0 children0 < <(read_cpu)
runs0=$(grep -c '^PLUGIN\.p[0-9]*,' "$tmp/metrics.lp" || true)
sleep "$measure"
read -r self1 children1 < <(read_cpu)
runs1=$(grep -c '^PLUGIN\.p[0-9]*,' "$tmp/metrics.lp" || true)
threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
delays=$(curl -s "http://127.0.0.1:$port/me/status" | grep -o '"start_delay_ms":{[^}]*}' || echo "start_delay_ms: not reported")
echo "plugins_cpu: $threads threads in the agent with $plugins plugins"
echo "plugins_cpu: delay from due time to start, ms: $delays"
awk -v s=$((self1 - self0)) -v c=$((children1 - children0)) -v t="$ticks" -v m="$measure" -v r=$((runs1 - runs0)) -v n="$plugins" 'BEGIN {
    printf "plugins_cpu: %d plugins every 10 s, %d runs in %d s (%.1f runs/s)\n", n, r, m, r / m
    printf "plugins_cpu: agent itself: %.2f %% of one core (%.1f ms CPU per run)\n", 100 * s / t / m, (r > 0 ? 1000 * s / t / r : 0)
    printf "plugins_cpu: the plugins (reaped children): %.2f %% of one core\n", 100 * c / t / m
}'
