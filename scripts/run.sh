#!/usr/bin/env bash
# `make run`: the built agent in the foreground on the default config, saying where data goes.
set -euo pipefail
build=${1:-build}
config=${2:-etc/agent.toml}
cd "$(dirname "$0")/.."
mkdir -p var
echo "agent: config $config"
echo "agent: metrics are appended to ./var/metrics.lp (line protocol), the log is ./var/log/agent.log"
echo "agent: watch them with: tail -f var/metrics.lp    stop with Ctrl-C"
exec "$build/agent" run -f "$config"
