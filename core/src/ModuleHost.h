// Owns the loaded modules and wires them: loads and configures them, starts the bus, the sinks,
// the other modules and the source schedules, and stops all of it in order within a bound.
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

class ModuleHost {
public:
    ModuleHost(const AgentConfig& config, HostIdentity identity, Poco::Logger& logger);
    ~ModuleHost();
    ModuleHost(const ModuleHost&) = delete;
    ModuleHost& operator=(const ModuleHost&) = delete;

    // Loads, validates and configures each module; one report per module. A module that fails
    // is not kept. Returns true when every module is fine.
    bool load(const std::vector<std::string>& names, std::vector<ModuleReport>& reports);

    std::size_t sinkCount() const;
    // Starts sinks' writers, every module, the source schedules. Throws if a module's start fails.
    void start();
    // Sources and other modules first, then the sinks' drain, then the sinks. Idempotent.
    void stop();

    // For `agent once`: starts the sources with a bus that collects, runs each source once (twice
    // when it needs a baseline, a second apart) and returns every metric published.
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
        std::unique_ptr<ModuleContext> context;
        bool started = false;
    };

    void startModule(Slot& slot, Bus& bus);
    void stopModule(Slot& slot);

    const AgentConfig& config_;
    HostIdentityStore identity_;
    Poco::Logger& logger_;
    RegistryPoller registry_;
    RouteTable routes_;
    ModuleLoader loader_; // declared first: destroyed after the module instances
    std::unique_ptr<TaskScheduler> scheduler_;
    std::unique_ptr<MetricBus> bus_;
    std::vector<Slot> slots_;
    bool running_ = false;
};

} // namespace agent
