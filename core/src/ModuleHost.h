// Owns the loaded modules and wires them: loads and configures them, gives each its own executor,
// starts the bus, the sinks, the other modules and the source schedules, and stops all of it in
// order within one deadline ([agent] stop_timeout). The order follows the modules' roles
// (Module::describe()), never their names.
#pragma once

#include "AgentConfig.h"
#include "MetricBus.h"
#include "ModuleLoader.h"
#include "RegistryPoller.h"
#include "RouteTable.h"
#include "TaskScheduler.h"

#include <agent/Context.h>

#include <Poco/JSON/Object.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace agent {

struct ModuleReport {
    std::string name;
    std::string path;
    bool ok = false;
    std::vector<std::string> problems; // one line each: load refusal, config errors
};

// Start order by roles, as indices into `roles` (load order): sinks, then every module that is no
// Server, then the Servers, so that no request reaches a module that has not started.
std::vector<std::size_t> startOrder(const std::vector<Roles>& roles);
// Stop order: Servers, then Reporters, then the other non-sinks in reverse load order, then the
// sinks in reverse load order (the bus drains before the first sink stops).
std::vector<std::size_t> stopOrder(const std::vector<Roles>& roles);

class ModuleHost {
public:
    ModuleHost(const AgentConfig& config, HostIdentity identity, Poco::Logger& logger);
    ~ModuleHost();
    ModuleHost(const ModuleHost&) = delete;
    ModuleHost& operator=(const ModuleHost&) = delete;

    // Loads, validates and configures each module; one report per module. A module that fails
    // is not kept. Returns true when every module is fine.
    bool load(const std::vector<std::string>& names, std::vector<ModuleReport>& reports);

    // Loaded modules with the Sink role.
    std::size_t sinkCount() const;
    // The loaded modules that declare `role`, in load order.
    std::vector<std::string> modulesWith(Role role) const;
    // Starts sinks' writers, every module and its executor, the source schedules (startOrder()).
    // Throws if a module's start fails.
    void start();
    // Stops everything in stopOrder() within [agent] stop_timeout. Returns false when some work
    // had to be abandoned (a task still running at the deadline): its thread runs on in module
    // code, so that module's instance and library are kept (leaked) and the process should end
    // without running destructors that would free what that thread uses. Idempotent.
    bool stop();
    // True after a stop() that abandoned work.
    bool abandonedWork() const { return abandoned_; }

    // For `agent once`: starts the Source modules only (the others stay configured, not started)
    // with a bus that collects, runs each source once (twice when it needs a baseline, a second
    // apart) and returns every metric published.
    Batch collectOnce();

    Poco::JSON::Object::Ptr status() const;
    // Context::moduleHealth(): module name -> its last health object ({} before its first).
    Poco::JSON::Object::Ptr moduleHealth() const;
    RegistryPoller& registry() { return registry_; }
    RouteTable& routes() { return routes_; }
    HostIdentity identity() const { return identity_.get(); }
    MetricBus& bus() { return *bus_; }

private:
    class ModuleContext;
    struct Slot {
        LoadedModule module;
        std::unique_ptr<TaskScheduler> executor; // destroyed before the module (declared after it)
        std::unique_ptr<ModuleRoutes> routes;
        std::unique_ptr<ModuleContext> context;
        bool started = false;
        bool abandoned = false; // its executor left a thread in its code: never free or unload it
    };
    using Deadline = TaskScheduler::Clock::time_point;

    void startModule(Slot& slot, Bus& bus);
    void startExecutor(Slot& slot);
    void stopModule(Slot& slot, Deadline deadline);
    void stopBus(Deadline deadline);
    std::vector<Roles> roles() const;

    const AgentConfig& config_;
    HostIdentityStore identity_;
    Poco::Logger& logger_;
    RegistryPoller registry_;
    RouteTable routes_;
    ModuleLoader loader_; // declared first: destroyed after the module instances
    std::unique_ptr<MetricBus> bus_;
    std::vector<Slot> slots_;
    bool running_ = false;
    bool abandoned_ = false;
};

} // namespace agent
