#!/usr/bin/env bash
# Idle memory and stop time of `agent run` on etc/agent.toml (every module it loads; target: VmRSS <= 10 MB).
# Usage: bench/idle_rss.sh [BUILD_DIR] [SETTLE_SECONDS]   (defaults: build, 15)
# Everything the agent writes (config, state, pid file, log, metrics) goes to a temporary
# directory that is removed at the end; only bash and coreutils are used.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
build=${1:-build}
settle=${2:-15}
case $build in /*) ;; *) build=$repo/$build ;; esac
[[ -x $build/agent ]] || { echo "idle_rss: $build/agent not found; build first" >&2; exit 1; }
[[ -d $build/modules ]] || { echo "idle_rss: $build/modules not found" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/agent-idle-rss.XXXXXX")
pid=
cleanup() {
    # Only the agent this script started, by its pid.
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# The config is etc/agent.toml with every path moved into $tmp, the modules taken from the build
# and a 5 s collection interval, so that 15 s cover the baseline read and at least one real one.
# Rewritten key by key (per section) rather than copied by hand, so it follows etc/agent.toml.
declare -A override=(
    [agent.pluginsdir]="\"$tmp/plugins\""
    [agent.statedir]="\"$tmp/state\""
    [agent.pidfile]="\"$tmp/agent.pid\""
    [log.logdir]="\"$tmp/log\""
    [modules.dir]="\"$build/modules\""
    [source-netif.interval]=5
    [source-host.interval]=5
    [sink-file.path]="\"$tmp/metrics.lp\""
)
declare -A written=()
section=
flush_section() { # appends the overridden keys the section did not have
    local full
    for full in "${!override[@]}"; do
        if [[ ${full%.*} == "$section" && -z ${written[$full]:-} ]]; then
            echo "${full##*.} = ${override[$full]}"
            written[$full]=1
        fi
    done
}
{
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line =~ ^[[:space:]]*\[([^]]+)\] ]]; then
            flush_section
            section=${BASH_REMATCH[1]}
        elif [[ $line =~ ^[[:space:]]*([A-Za-z0-9_-]+)[[:space:]]*= ]]; then
            full=$section.${BASH_REMATCH[1]}
            if [[ -n ${override[$full]:-} ]]; then
                line="${BASH_REMATCH[1]} = ${override[$full]}"
                written[$full]=1
            fi
        fi
        printf '%s\n' "$line"
    done <"$repo/etc/agent.toml"
    flush_section
    for full in "${!override[@]}"; do # sections etc/agent.toml does not have at all
        if [[ -z ${written[$full]:-} ]]; then
            printf '\n[%s]\n%s = %s\n' "${full%.*}" "${full##*.}" "${override[$full]}"
        fi
    done
} >"$tmp/agent.toml"

modules=$(sed -n 's/^load = \[\(.*\)\]$/\1/p' "$tmp/agent.toml" | tr -d '"')
echo "idle_rss: $build/agent run -f $tmp/agent.toml (modules: $modules; interval 5 s), settling ${settle} s"
(cd "$tmp" && exec "$build/agent" run -f "$tmp/agent.toml" >"$tmp/stdout.log" 2>&1) &
pid=$!

for ((i = 0; i < settle; i++)); do
    sleep 1
    if ! kill -0 "$pid" 2>/dev/null; then
        rc=0
        wait "$pid" || rc=$?
        pid=
        echo "idle_rss: the agent exited early (exit code $rc); its output:" >&2
        cat "$tmp/stdout.log" >&2
        exit 1
    fi
done

# /proc reports kB (KiB); printed as MiB with one decimal.
declare -A status=()
while IFS=: read -r key value; do
    read -r kb _ <<<"$value"
    status[$key]=$kb
done <"/proc/$pid/status"
mib() { printf '%d.%d' $(($1 / 1024)) $(($1 * 10 / 1024 % 10)); }
threads=${status[Threads]}
lines=0
[[ -f $tmp/metrics.lp ]] && lines=$(wc -l <"$tmp/metrics.lp")
echo "idle_rss: VmRSS $(mib "${status[VmRSS]}") MiB (anon $(mib "${status[RssAnon]}"), file $(mib "${status[RssFile]}"), shmem $(mib "${status[RssShmem]}")), VmHWM $(mib "${status[VmHWM]}") MiB, threads $threads"
echo "idle_rss: $lines lines in the metrics file after ${settle} s"
((lines > 0)) || echo "idle_rss: warning: no metrics written yet; the figure may not include a collection" >&2

start=$(date +%s%N)
kill -TERM "$pid"
rc=0
# The agent's own watchdog gives up after drain_timeout + 2 s; 30 s is well beyond that.
for ((i = 0; i < 3000; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
if kill -0 "$pid" 2>/dev/null; then
    echo "idle_rss: the agent did not exit 30 s after SIGTERM; killing it" >&2
    kill -KILL "$pid"
fi
wait "$pid" || rc=$?
pid=
end=$(date +%s%N)
ms=$(((end - start) / 1000000))
echo "idle_rss: SIGTERM to exit: ${ms} ms, exit code $rc"
if ((rc != 0)); then
    echo "idle_rss: agent output:" >&2
    cat "$tmp/stdout.log" >&2
fi
