#include "RouteTable.h"

#include <Poco/Exception.h>

#include <algorithm>

namespace agent {
namespace {

std::string ownerText(const std::string& owner) { return owner.empty() ? "the agent's core" : "module " + owner; }

// Only for the text of a 404: paths of modules that ship with the agent, so that a request for one
// whose module is not loaded says which module to load. Ownership comes from the loaded modules'
// declarations (declare()), never from this table.
const std::map<std::string, std::string> kShippedModuleHints = {
    {"/plugins/list", "source-exec"},   {"/plugins/update", "source-exec"}, {"/plugins/run", "source-exec"},
    {"/plugins/enable", "source-exec"}, {"/plugins/disable", "source-exec"}, {"/post", "api-http"},
};

} // namespace

void RouteTable::add(const std::string& path, std::vector<std::string> methods, RouteHandler handler) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = routes_.find(path);
    if (it != routes_.end() && !it->second.owner.empty())
        throw Poco::InvalidArgumentException("the core cannot register " + path + ": it belongs to " +
                                             ownerText(it->second.owner));
    routes_[path] = Route{"", std::set<std::string>(methods.begin(), methods.end()), std::move(handler)};
}

void RouteTable::addSlow(const std::string& path, std::vector<std::string> methods, RouteHandler handler) {
    add(path, std::move(methods), std::move(handler));
    std::lock_guard<std::mutex> lock(mutex_);
    routes_[path].slow = true;
}

std::vector<std::string> RouteTable::declare(const std::string& owner, const std::vector<std::string>& paths,
                                             const std::vector<std::string>& slowPaths) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> problems;
    for (const std::string& path : paths) {
        if (path.empty() || path.front() != '/') {
            problems.push_back("route \"" + path + "\" must start with '/'");
            continue;
        }
        auto it = routes_.find(path);
        if (it != routes_.end() && it->second.owner != owner)
            problems.push_back("route " + path + " belongs to " + ownerText(it->second.owner));
    }
    for (const std::string& path : slowPaths) {
        if (std::find(paths.begin(), paths.end(), path) == paths.end())
            problems.push_back("slow route \"" + path + "\" is not among the module's routes");
    }
    if (!problems.empty()) return problems;
    for (const std::string& path : paths) {
        Route& route = routes_[path];
        route.owner = owner;
        route.slow = std::find(slowPaths.begin(), slowPaths.end(), path) != slowPaths.end();
    }
    return problems;
}

void RouteTable::addFor(const std::string& owner, const std::string& path, std::vector<std::string> methods,
                        RouteHandler handler) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = routes_.find(path);
    if (it == routes_.end())
        throw Poco::InvalidArgumentException("module " + owner + " cannot register " + path +
                                             ": it is not among the routes its describe() declares");
    if (it->second.owner != owner)
        throw Poco::InvalidArgumentException("module " + owner + " cannot register " + path + ": it belongs to " +
                                             ownerText(it->second.owner));
    it->second.methods = std::set<std::string>(methods.begin(), methods.end());
    it->second.handler = std::move(handler);
}

void RouteTable::withdraw(const std::string& owner) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [path, route] : routes_) {
        if (route.owner == owner) route.handler = nullptr;
    }
}

HttpResponse RouteTable::dispatch(const HttpRequest& request, std::string& route) const {
    RouteHandler handler;
    bool slow = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = routes_.find(request.path);
        if (it == routes_.end()) {
            auto hint = kShippedModuleHints.find(request.path);
            if (hint != kShippedModuleHints.end()) {
                route = request.path;
                return errorResponse(404, request.path + " is served by module " + hint->second + ", which is not loaded");
            }
            route = "other";
            return errorResponse(404, "no route " + request.path);
        }
        route = it->first;
        if (!it->second.handler)
            return errorResponse(503, request.path + " is served by module " + it->second.owner + ", which is not running");
        if (!it->second.methods.empty() && it->second.methods.count(request.method) == 0) {
            std::string allowed;
            for (const std::string& method : it->second.methods) allowed += (allowed.empty() ? "" : ", ") + method;
            HttpResponse response = errorResponse(405, request.method + " is not allowed on " + request.path);
            response.headers.emplace_back("Allow", allowed);
            return response;
        }
        handler = it->second.handler;
        if (it->second.slow) {
            if (slowInFlight_ >= kSlowRequestsAtOnce) {
                HttpResponse response = errorResponse(
                    503, "the agent is already answering " + std::to_string(kSlowRequestsAtOnce) +
                             " slow requests (plugin runs, updates, registry polls); try again in a moment");
                response.headers.emplace_back("Retry-After", "1");
                return response;
            }
            ++slowInFlight_;
            slow = true;
        }
    }
    // A slow request gives its place back however the handler ends.
    struct SlowPlace {
        const RouteTable& table;
        bool held;
        ~SlowPlace() {
            if (!held) return;
            std::lock_guard<std::mutex> lock(table.mutex_);
            --table.slowInFlight_;
        }
    } place{*this, slow};
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
