#include "StatusPage.h"

#include "StatusPageAssets.h"

#include <algorithm>

namespace agent::api {
namespace {

std::string routeOf(std::string_view name) { return name == "index.html" ? "/" : "/static/" + std::string(name); }

std::string contentTypeOf(std::string_view name) {
    auto endsWith = [name](std::string_view suffix) {
        return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
    };
    if (endsWith(".html")) return "text/html; charset=utf-8";
    if (endsWith(".js")) return "text/javascript; charset=utf-8";
    if (endsWith(".css")) return "text/css; charset=utf-8";
    if (endsWith(".svg")) return "image/svg+xml";
    return "application/octet-stream";
}

} // namespace

std::vector<std::string> statusPageRoutes() {
    std::vector<std::string> routes;
    for (const EmbeddedFile& file : embeddedFiles()) routes.push_back(routeOf(file.name));
    return routes;
}

bool isStatusPagePath(const std::string& path) {
    // Asked on every request when a token is set: the paths are worked out once.
    static const std::vector<std::string> paths = statusPageRoutes();
    return std::find(paths.begin(), paths.end(), path) != paths.end();
}

void registerStatusPage(agent::RouteRegistry& routes) {
    for (const EmbeddedFile& file : embeddedFiles()) {
        agent::HttpResponse response;
        response.contentType = contentTypeOf(file.name);
        response.body = std::string(file.bytes);
        // Everything the page loads comes from this agent: no other host, no inline script, and
        // nothing may frame it. The files change only with the module: the browser revalidates.
        response.headers = {{"Content-Security-Policy",
                             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                             "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"},
                            {"X-Content-Type-Options", "nosniff"},
                            {"Referrer-Policy", "no-referrer"},
                            {"Cache-Control", "no-cache"}};
        routes.add(routeOf(file.name), {"GET"}, [response](const agent::HttpRequest&) { return response; });
    }
}

} // namespace agent::api
