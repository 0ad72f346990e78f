#!/usr/bin/env bash
# A fleet on this machine: AGENTS agents (default 200) against one registry, one git daemon
# serving ten plugin repositories, each agent with its own host name, state, plugins and sink
# file. Phases of up to PHASE_SECONDS each (default 200): every agent starts at once; the registry
# changes (a plugin added, one removed, one interval shortened); every agent restarts at once.
# Prints the registry's and the git server's requests per second, how long the fleet took to run
# every plugin and to apply the change, PSS and CPU per agent, points delivered against
# acknowledged. Asserts nothing (docs/FLEET.md holds the figures). Needs root: plugins run as nobody.
# Usage: bench/fleet.sh [AGENTS] [PHASE_SECONDS]   (BUILD=build by default)
set -euo pipefail

cd "$(dirname "$0")/.."
agents=${1:-200}
phase=${2:-200}
build=${BUILD:-build}

[[ $(id -u) -eq 0 ]] || { echo "fleet: needs root (plugins run as nobody)" >&2; exit 1; }
[[ -f $build/CMakeCache.txt ]] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target agent fleet_driver >/dev/null
for module in source-netif source-host source-exec api-http sink-file; do
    cmake --build "$build" -j"$(nproc)" --target "$module" >/dev/null
done

# Each agent holds a few dozen descriptors; git daemon's children and the driver need more.
ulimit -n 65536 2>/dev/null || true
echo "fleet: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
build=$(cd "$build" && pwd)
exec "$build/fleet_driver" "$build/agent" "$build/modules" "$agents" "$phase"
