// HTTP routes that modules and the core register; the api-http module only serves them. A
// handler gets a parsed request and answers JSON (or any content type); errors are JSON
// {"error": "..."} with a fitting status, made with errorResponse().
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace agent {

struct HttpRequest {
    std::string method;                        // GET, POST, ...
    std::string path;                          // without the query
    std::map<std::string, std::string> query;  // decoded; a repeated key keeps its last value
    std::string body;
};

struct HttpResponse {
    int status = 200;
    std::string contentType = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

using RouteHandler = std::function<HttpResponse(const HttpRequest&)>;

// Requests to slow routes (ModuleDescription::slowRoutes, and the core's /update) answered at
// once, agent-wide. api-http's default 8 threads keep at least 4 for every other route.
constexpr unsigned kSlowRequestsAtOnce = 4;

HttpResponse jsonResponse(int status, const std::string& json);
HttpResponse errorResponse(int status, const std::string& message);

class RouteRegistry {
public:
    virtual ~RouteRegistry() = default;
    // Registers `path` (exact match) for `methods` (empty = any method).
    virtual void add(const std::string& path, std::vector<std::string> methods, RouteHandler handler) = 0;
    // Answers a request: the route's handler, 405 for a method it does not take, 503 naming the
    // module for a path a module declared but does not serve now (not started yet, or stopped),
    // 503 with Retry-After for a slow route while kSlowRequestsAtOnce slow requests are being
    // answered, 404 otherwise (naming the module that would serve it when it ships with the agent).
    virtual HttpResponse handle(const HttpRequest& request) const = 0;
};

} // namespace agent
