// The routes the core answers itself: /healthz, /me/ns, /me/status, /update and /metrics
// (the agent's own counters in Prometheus text format), and /me/history and /me/log.
#pragma once

#include "History.h"
#include "LogRing.h"
#include "ModuleHost.h"

namespace agent {

void registerCoreRoutes(ModuleHost& host, std::chrono::system_clock::time_point started);

// The status page's data (docs/ARCHITECTURE.md §11.1): GET /me/history (the sampler's ring) and
// GET /me/log (the last warnings and errors). Both need the token like every data route.
void registerHistoryRoutes(RouteTable& routes, const HistorySampler& history, const LogRing& log);

// The /metrics text: counters of the sinks and their spools, the registry, the HTTP requests and
// every module health that carries "runs_by_result" (source-exec's plugin runs).
std::string prometheusMetrics(ModuleHost& host);

} // namespace agent
