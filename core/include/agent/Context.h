// What the core gives a started module: the bus, the scheduler, a logger, a state directory,
// the host identity and health reporting.
//
// ABI 5 added Context::moduleHealth(), so that a reporter (reporter-argus) can send the health of
// every module to a master without going through the HTTP API. ABI 6 gave every module its own
// executor (Context::scheduler(), Scheduler::post) and Module::describe(). ABI 7 (Module.h): Sink::write
// returns a WriteResult with delivered and rejected counts; SinkBatching::concurrency. ABI 8:
// PublishResult::noSink (an agent without sinks refuses what is posted to it), and in Metric.h
// tidyTagValues() and parseDecimalNumber(), the Go agent's rules for what its clients send. ABI 9:
// ModuleDescription::slowRoutes and kSlowRequestsAtOnce (Routes.h), a bounded share of the HTTP
// server's threads for routes that wait for a run or a clone; registryIntervals()
// (RegistryIntervals.h), the registry's intervals for the host's collectors.
#pragma once

#include <agent/Metric.h>
#include <agent/Routes.h>

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/Timespan.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace agent {

// What a publisher wants when a sink's spool is full.
enum class OverflowPolicy {
    DropOldest,    // make room by dropping the oldest spooled points (counted, logged): sources
    RejectWhenFull, // take nothing and say so, so the caller can refuse its client (HTTP 503)
};

struct PublishResult {
    std::size_t accepted = 0; // points now in every sink's spool: acknowledged
    std::size_t dropped = 0;  // older points some sink dropped to make room (counted there)
    bool rejected = false;    // RejectWhenFull and a spool was full: nothing was taken
    bool noSink = false;      // no sink is loaded (an agent that only reports or serves): nothing
                              // was taken, and retrying will not help
};

class Bus {
public:
    virtual ~Bus() = default;
    // Hands a batch to every sink. Returns once the batch is in every sink's spool; never waits
    // for a sink to deliver.
    virtual PublishResult publish(Batch&& batch, OverflowPolicy policy = OverflowPolicy::DropOldest) = 0;
};

using TaskId = std::uint64_t;

// A module's own executor: one timer and ModuleDescription::workers threads that run this
// module's tasks and nothing else (docs/ARCHITECTURE.md §5).
class Scheduler {
public:
    virtual ~Scheduler() = default;
    // Runs `task` every `period`, first after `offset`. A run that is due while the same task's
    // previous run is still running is skipped and counted; one that is due while the previous is
    // only waiting for a thread is not repeated (the waiting run is that period's). Exceptions are
    // logged and counted.
    virtual TaskId every(const std::string& name, Poco::Timespan period, Poco::Timespan offset,
                         std::function<void()> task) = 0;
    // Stops future runs; a run in progress finishes.
    virtual void cancel(TaskId id) = 0;
    // Runs `task` once, as soon as one of the module's threads is free. Dropped (not run) when the
    // module stops first.
    virtual void post(const std::string& name, std::function<void()> task) = 0;
};

struct HostIdentity {
    std::string hostname;
    std::vector<std::string> ips;        // non-loopback addresses
    std::vector<std::string> namespaces; // may be empty on a standalone host
};

// What the registry says this host collects, per namespace (docs/ARCHITECTURE.md §9). On a
// standalone host (no registry) there are no entries.
class Registry {
public:
    using Entry = std::map<std::string, std::string>;

    virtual ~Registry() = default;
    // The "collect" entries of a namespace, from the last good answer (or its cache).
    virtual std::vector<Entry> entries(const std::string& ns) const = 0;
    // Grows whenever the answer changes, so a module can notice a change cheaply.
    virtual std::uint64_t generation() const = 0;
    // Asks the registry now (the /update route); false and the reason when that failed.
    virtual bool pollNow(std::string& error) = 0;
};

class Context {
public:
    virtual ~Context() = default;

    virtual Bus& bus() = 0;
    // This module's own executor; stopped by the core after the module's stop() returned.
    virtual Scheduler& scheduler() = 0;
    virtual Poco::Logger& logger() = 0;
    // A directory of the module's own (created), under the agent's state dir.
    virtual std::string stateDir() const = 0;
    // Current identity: the namespaces follow the registry.
    virtual HostIdentity identity() const = 0;
    virtual Registry& registry() = 0;
    // The route table that Server modules (api-http) serve. A module may add the paths it
    // declared in ModuleDescription::routes; a Server module answers requests with handle().
    virtual RouteRegistry& routes() = 0;
    // Replaces the module's health object, shown by `/me/status` and read by reporters. The core
    // and reporters read the object from other threads: hand over a new object each time, never
    // change one after handing it over.
    virtual void setHealth(Poco::JSON::Object::Ptr health) = 0;
    // Every loaded module's health, this one's included: module name -> the object it last gave
    // setHealth ({} before its first). A new object each call; the values are shared, read-only.
    virtual Poco::JSON::Object::Ptr moduleHealth() const = 0;
};

} // namespace agent
