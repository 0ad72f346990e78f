#!/usr/bin/env bash
# Recovery figures (docs/ARCHITECTURE.md §8), as the integration tests print them against a real
# influxd: a 2,000,000-point backlog's drain rate next to writing the same points straight to
# InfluxDB with the same number of connections (Recovery.ABacklogOfTwoMillionPointsDrainsAsFastAsDirectWrites),
# and the kill-and-stall run (Recovery.EveryAcknowledgedPointArrivesThroughTenKillsAndTwoStalls).
# Prints figures only. Usage: bench/recovery.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if [[ ! -x $build/integration_tests ]]; then
    echo "recovery: $build/integration_tests not built (AGENT_BUILD_TESTS=OFF); skipped" >&2
    exit 0
fi
"$build/integration_tests" --gtest_filter='Recovery.ABacklog*:Recovery.EveryAcknowledged*' 2>&1 |
    grep -E '\[ figures  \]|OK \]|FAILED' || true
