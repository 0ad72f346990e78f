#include "RouteTable.h"

#include <Poco/Exception.h>

#include <algorithm>

namespace agent {
namespace {

// Routes that belong to a module; when it is not loaded, a request for them says which.
const std::map<std::string, std::string> kModuleRoutes = {
    {"/plugins/list", "source-exec"},   {"/plugins/update", "source-exec"}, {"/plugins/run", "source-exec"},
    {"/plugins/enable", "source-exec"}, {"/plugins/disable", "source-exec"}, {"/post", "api-http"},
};

} // namespace

void RouteTable::add(const std::string& path, std::vector<std::string> methods, RouteHandler handler) {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_[path] = Route{std::set<std::string>(methods.begin(), methods.end()), std::move(handler)};
}

HttpResponse RouteTable::dispatch(const HttpRequest& request, std::string& route) const {
    RouteHandler handler;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = routes_.find(request.path);
        if (it == routes_.end()) {
            auto owner = kModuleRoutes.find(request.path);
            if (owner != kModuleRoutes.end() &&
                std::find(loaded_.begin(), loaded_.end(), owner->second) == loaded_.end()) {
                route = request.path;
                return errorResponse(404, request.path + " is served by module " + owner->second + ", which is not loaded");
            }
            route = "other";
            return errorResponse(404, "no route " + request.path);
        }
        route = it->first;
        if (!it->second.methods.empty() && it->second.methods.count(request.method) == 0) {
            std::string allowed;
            for (const std::string& method : it->second.methods) allowed += (allowed.empty() ? "" : ", ") + method;
            HttpResponse response = errorResponse(405, request.method + " is not allowed on " + request.path);
            response.headers.emplace_back("Allow", allowed);
            return response;
        }
        handler = it->second.handler;
    }
    try {
        return handler(request);
    } catch (const Poco::Exception& e) {
        return errorResponse(500, request.path + ": " + e.displayText());
    } catch (const std::exception& e) {
        return errorResponse(500, request.path + ": " + e.what());
    }
}

HttpResponse RouteTable::handle(const HttpRequest& request) const {
    std::string route;
    HttpResponse response = dispatch(request, route);
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_[{route, response.status}];
    return response;
}

std::map<std::pair<std::string, int>, std::uint64_t> RouteTable::requestCounts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return counts_;
}

} // namespace agent
