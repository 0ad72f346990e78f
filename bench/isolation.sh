#!/usr/bin/env bash
# Isolation figures (docs/ARCHITECTURE.md §5): the agent's threads, CPU per run and start delay
# with 10 and with 1,000 plugins every 10 s (bench/plugins_cpu.sh), then the heartbeat gaps of the
# acceptance scenario (50 plugins running 90 % of their period, 5 that ignore SIGTERM and hang, 10
# whose git server never answers, agent.alive every second), as the integration test
# Isolation.SlowHangingAndUnclonablePluginsDelayNeitherTheHostCollectorNorEachOther prints them.
# Prints figures only. Usage: bench/isolation.sh [BUILD_DIR] [MEASURE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
measure=${2:-60}

for plugins in 10 1000; do
    bash bench/plugins_cpu.sh "$build" "$plugins" "$measure"
done
if [[ -x $build/integration_tests ]]; then
    "$build/integration_tests" --gtest_filter='Isolation.SlowHanging*' 2>&1 | grep -E '\[ figures  \]|OK|FAILED' || true
else
    echo "isolation: $build/integration_tests not built (AGENT_BUILD_TESTS=OFF); scenario skipped" >&2
fi
