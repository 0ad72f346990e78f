// The routes the core answers itself: /healthz, /me/ns, /me/status, /update and /metrics
// (the agent's own counters in Prometheus text format).
#pragma once

#include "ModuleHost.h"

namespace agent {

void registerCoreRoutes(ModuleHost& host, std::chrono::system_clock::time_point started);

// The /metrics text: counters of the sinks and their spools, the registry, the HTTP requests and
// every module health that carries "runs_by_result" (source-exec's plugin runs).
std::string prometheusMetrics(ModuleHost& host);

} // namespace agent
