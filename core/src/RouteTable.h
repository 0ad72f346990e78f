// The agent's HTTP routes: registered by the core and by modules, answered for the api-http
// module, with requests counted by route and status for /metrics.
#pragma once

#include <agent/Routes.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace agent {

class RouteTable : public RouteRegistry {
public:
    // `loadedModules` decides which module a missing route's 404 names.
    explicit RouteTable(std::vector<std::string> loadedModules) : loaded_(std::move(loadedModules)) {}

    void add(const std::string& path, std::vector<std::string> methods, RouteHandler handler) override;
    HttpResponse handle(const HttpRequest& request) const override;

    // Requests answered so far, by (route, status); unknown paths count under route "other".
    std::map<std::pair<std::string, int>, std::uint64_t> requestCounts() const;

private:
    struct Route {
        std::set<std::string> methods;
        RouteHandler handler;
    };
    HttpResponse dispatch(const HttpRequest& request, std::string& route) const;

    const std::vector<std::string> loaded_;
    mutable std::mutex mutex_; // guards routes_ and counts_
    std::map<std::string, Route> routes_;
    mutable std::map<std::pair<std::string, int>, std::uint64_t> counts_;
};

} // namespace agent
