// The status page (docs/ARCHITECTURE.md §11.1): GET / and its few static files, compiled into
// api-http. The page holds no data: it asks the data routes (/me/status, /me/history, /me/log,
// /plugins/list) with the token it keeps in the browser's sessionStorage. So the page and its
// files are served without the token, and every data route keeps needing it.
#pragma once

#include <agent/Routes.h>

#include <string>
#include <vector>

namespace agent::api {

// The paths of the page and its files: "/" and "/static/<file>".
std::vector<std::string> statusPageRoutes();
// True for those paths, which need no token.
bool isStatusPagePath(const std::string& path);
// Registers them (GET and HEAD).
void registerStatusPage(agent::RouteRegistry& routes);

} // namespace agent::api
