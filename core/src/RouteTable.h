// The agent's HTTP routes: registered by the core and by modules, answered for the Server modules
// (api-http), with requests counted by route and status for /metrics.
//
// A module's paths are owned by declaration (ModuleDescription::routes): the table knows the owner
// of each declared path, refuses a path to any other module, and answers 503 naming the owner
// while the owner has not registered it or has stopped. Paths the core adds itself (add()) are the
// core's. Slow routes (ModuleDescription::slowRoutes, addSlow()) share a budget of
// kSlowRequestsAtOnce requests in flight; beyond it they answer 503 with Retry-After at once.
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
    // The core's own routes.
    void add(const std::string& path, std::vector<std::string> methods, RouteHandler handler) override;
    // The same for a route of the core whose answer may wait long (/update).
    void addSlow(const std::string& path, std::vector<std::string> methods, RouteHandler handler);
    HttpResponse handle(const HttpRequest& request) const override;

    // Records that `owner` serves `paths` (at load), `slowPaths` among them slow. Returns one
    // problem per path that is not absolute, belongs to the core or to another module, and per slow
    // path that is not among `paths`; nothing is recorded then.
    std::vector<std::string> declare(const std::string& owner, const std::vector<std::string>& paths,
                                     const std::vector<std::string>& slowPaths = {});
    // A module's registration. Throws Poco::InvalidArgumentException for a path `owner` did not
    // declare, or one that another module or the core owns.
    void addFor(const std::string& owner, const std::string& path, std::vector<std::string> methods,
                RouteHandler handler);
    // Removes the handlers of `owner` (it stopped); its paths answer 503 from now on.
    void withdraw(const std::string& owner);

    // Requests answered so far, by (route, status); unknown paths count under route "other".
    std::map<std::pair<std::string, int>, std::uint64_t> requestCounts() const;

private:
    struct Route {
        std::string owner; // "" = the core
        std::set<std::string> methods;
        RouteHandler handler; // empty while the owner has not registered it (or has stopped)
        bool slow = false;
    };
    HttpResponse dispatch(const HttpRequest& request, std::string& route) const;

    mutable std::mutex mutex_; // guards routes_, counts_ and slowInFlight_
    std::map<std::string, Route> routes_;
    mutable std::map<std::pair<std::string, int>, std::uint64_t> counts_;
    mutable unsigned slowInFlight_ = 0;
};

// What one module sees as Context::routes(): registrations are checked against its declaration;
// handle() answers from the whole table (a Server module serves every route).
class ModuleRoutes : public RouteRegistry {
public:
    ModuleRoutes(RouteTable& table, std::string owner) : table_(table), owner_(std::move(owner)) {}
    void add(const std::string& path, std::vector<std::string> methods, RouteHandler handler) override {
        table_.addFor(owner_, path, std::move(methods), std::move(handler));
    }
    HttpResponse handle(const HttpRequest& request) const override { return table_.handle(request); }

private:
    RouteTable& table_;
    const std::string owner_;
};

} // namespace agent
