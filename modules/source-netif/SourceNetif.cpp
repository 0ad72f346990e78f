// source-netif: network interface traffic rates (net.in, net.out, packets, errors, drops, link
// speed and use) for the interfaces named by `ifaceprefix`, read from /proc/net/dev and
// /sys/class/net. The reading and the rate rules live in NetifCollector; this file holds the
// config table, the schedule (the section's interval, or the one a registry NET entry sets), the
// per-namespace copies, logging and health.
#include "NetifCollector.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Metric.h>
#include <agent/Module.h>
#include <agent/ModuleConfig.h>
#include <agent/RegistryIntervals.h>

#include <Poco/ClassLibrary.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/SharedPtr.h>
#include <Poco/Timespan.h>
#include <Poco/Types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

using agent::netif::NetifCollector;

// An interval longer than a day is almost certainly a typo (milliseconds for seconds).
constexpr std::int64_t kMaxIntervalSeconds = 86'400;

// How often the module looks whether the registry's answer changed (as source-host does: the
// answer changes every ten minutes at most, and looking costs a counter read).
constexpr long kRegistryCheckSeconds = 5;

double monotonicNow() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class SourceNetif : public agent::Source {
public:
    SourceNetif() = default;

    const agent::ConfigSchema& configSchema() const override { return kSchema; }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;

        std::int64_t interval = 0;
        try {
            interval = config.getInt("interval");
            if (interval < 1) errors.add(config, "interval", "must be at least 1 (seconds)");
            if (interval > kMaxIntervalSeconds)
                errors.add(config, "interval", "must be at most " + std::to_string(kMaxIntervalSeconds) + " (one day)");
        } catch (const Poco::Exception& e) {
            errors.add(config, "interval", "not an integer: " + e.displayText());
        }

        std::vector<std::string> prefixes;
        try {
            prefixes = config.getStringList("ifaceprefix");
            if (prefixes.empty())
                errors.add(config, "ifaceprefix",
                           "an empty list watches no interface; list prefixes, or \"\" for every interface");
        } catch (const Poco::Exception& e) {
            errors.add(config, "ifaceprefix", "not a list of strings: " + e.displayText());
        }

        const std::string procNetDev = config.getString("proc_net_dev");
        if (procNetDev.empty()) errors.add(config, "proc_net_dev", "must name a file");
        const std::string sysClassNet = config.getString("sys_class_net");
        if (sysClassNet.empty()) errors.add(config, "sys_class_net", "must name a directory");

        errors.throwIfAny();

        std::lock_guard<std::mutex> lock(collectorMutex_);
        sectionSeconds_ = interval;
        appliedSeconds_ = interval;
        collector_ = std::make_unique<NetifCollector>(procNetDev, sysClassNet, std::move(prefixes));
    }

    void start(agent::Context& context) override {
        context_ = &context;
        std::lock_guard<std::mutex> lock(scheduleMutex_);
        followRegistry(); // a cached registry answer may be there already
        scheduleCollection();
        publishHealth();
        registryWatch_ = context.scheduler().every("source-netif registry", Poco::Timespan(kRegistryCheckSeconds, 0), 0,
                                                   [this] {
                                                       std::lock_guard<std::mutex> lock(scheduleMutex_);
                                                       if (stopped_ || !followRegistry()) return;
                                                       scheduleCollection();
                                                       publishHealth();
                                                   });
    }

    void stop() override {
        if (context_ == nullptr) return;
        std::lock_guard<std::mutex> lock(scheduleMutex_);
        stopped_ = true; // a watch already waiting for the lock must not schedule anything now
        context_->scheduler().cancel(registryWatch_);
        context_->scheduler().cancel(collectTask_);
    }

    // The module schedules its collections itself (start()), so that a registry NET entry can
    // change the interval without a restart.
    Poco::Timespan collectInterval() const override { return 0; }

    bool needsBaseline() const override { return true; }

    void collect(agent::Batch& out) override {
        const double monotonicSeconds = monotonicNow();
        const std::int64_t timestamp =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();

        agent::Batch points;
        agent::netif::CollectReport report;
        {
            std::lock_guard<std::mutex> lock(collectorMutex_);
            if (!collector_) throw Poco::IllegalStateException("source-netif: collect() before configure()");
            report = collector_->collect(monotonicSeconds, timestamp, points);
            lastCollect_ = monotonicSeconds;
        }

        if (context_ == nullptr) {
            // Not started (a test driving the module by hand): nothing to log to, no identity.
            agent::appendPerNamespace(points, {}, out);
            return;
        }
        Poco::Logger& logger = context_->logger();
        if (report.errorIsNew) logger.error(report.error);
        for (const std::string& warning : report.warnings) logger.warning(warning);
        for (const std::string& notice : report.notices) logger.information(notice);

        agent::appendPerNamespace(points, context_->identity().namespaces, out);
        publishHealth();
    }

private:
    static const agent::ConfigSchema kSchema;

    // Reads the registry's NET interval when its answer changed; true when the interval to apply,
    // or where it comes from, changed with it. Caller holds scheduleMutex_.
    bool followRegistry() {
        agent::Registry& registry = context_->registry();
        const std::uint64_t generation = registry.generation();
        if (generation == registryGeneration_) return false;
        registryGeneration_ = generation;
        std::vector<std::string> problems;
        const std::map<std::string, std::int64_t> byType =
            agent::registryIntervals(agent::namespaceEntries(registry, context_->identity().namespaces), {"NET"},
                                     kMaxIntervalSeconds, problems);
        const auto net = byType.find("NET");
        const bool fromRegistry = net != byType.end();
        for (const std::string& problem : problems)
            context_->logger().warning("source-netif: %s", problem);
        const std::int64_t wanted = fromRegistry ? net->second : sectionSeconds_;
        if (wanted == appliedSeconds_ && fromRegistry == fromRegistry_) return false;
        appliedSeconds_ = wanted;
        fromRegistry_ = fromRegistry;
        context_->logger().information("source-netif: interval now %s s (%s; registry generation %s)",
                                       std::to_string(wanted),
                                       std::string(fromRegistry ? "a registry NET entry"
                                                                : "the section's: no NET entry in the registry"),
                                       std::to_string(generation));
        return true;
    }

    // (Re)schedules the collection on the applied interval. The new task waits until the
    // interfaces are due: never sooner than the interval after the last read (a longer interval
    // does not bring an extra read, the same one keeps its phase), at once when that moment has
    // passed (a shorter one takes effect now). Caller holds scheduleMutex_.
    void scheduleCollection() {
        context_->scheduler().cancel(collectTask_);
        const std::int64_t seconds = appliedSeconds_;
        double wait = 0;
        {
            std::lock_guard<std::mutex> lock(collectorMutex_);
            if (lastCollect_ > 0) wait = std::max(0.0, lastCollect_ + static_cast<double>(seconds) - monotonicNow());
        }
        // A cancelled run still going when its successor starts only waits for collectorMutex_.
        collectTask_ = context_->scheduler().every(
            "collect source-netif", Poco::Timespan(static_cast<long>(seconds), 0),
            Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(wait * 1e6)), [this] { collectAndPublish(); });
    }

    // After every collection and every change of interval, so the interval shown is the one in use.
    void publishHealth() {
        Poco::JSON::Object::Ptr health = Poco::makeShared<Poco::JSON::Object>();
        {
            std::lock_guard<std::mutex> lock(collectorMutex_);
            health->set("interfaces", static_cast<Poco::UInt64>(collector_->interfaceCount()));
            health->set("malformed_lines", static_cast<Poco::UInt64>(collector_->malformedLinesTotal()));
            health->set("last_error", collector_->lastError());
        }
        health->set("interval", static_cast<Poco::Int64>(appliedSeconds_.load()));
        health->set("interval_from", fromRegistry_.load() ? "registry" : "section");
        context_->setHealth(health);
    }

    void collectAndPublish() {
        agent::Batch batch;
        collect(batch);
        if (!batch.empty()) context_->bus().publish(std::move(batch));
    }

    agent::Context* context_ = nullptr; // owned by the core, outlives the module's start..stop
    // configure() runs on the core's main thread and collect() on a worker thread.
    std::mutex collectorMutex_; // guards collector_ and lastCollect_
    agent::netif::NetifCollectorPtr collector_;
    double lastCollect_ = 0; // monotonic seconds of the last read; 0: never

    std::int64_t sectionSeconds_ = 10; // [source-netif] interval
    // The interval in use (the section's or the registry's) and where it came from; written under
    // scheduleMutex_, read for the health.
    std::atomic<std::int64_t> appliedSeconds_{10};
    std::atomic<bool> fromRegistry_{false};
    std::mutex scheduleMutex_; // guards registryGeneration_, the task ids and stopped_: start, stop, the watch
    std::uint64_t registryGeneration_ = 0;
    agent::TaskId registryWatch_ = 0;
    agent::TaskId collectTask_ = 0;
    bool stopped_ = false;
};

const agent::ConfigSchema SourceNetif::kSchema = {
    {"interval", agent::ConfigType::Integer, "10", "seconds between collections"},
    {"ifaceprefix", agent::ConfigType::StringList, R"(["eth", "en"])",
     "watch interfaces whose name starts with one of these (\"\" matches every interface)", "agent.ifaceprefix"},
    {"proc_net_dev", agent::ConfigType::String, "/proc/net/dev", "file with the interface counters"},
    {"sys_class_net", agent::ConfigType::String, "/sys/class/net",
     "directory holding <interface>/speed (link speed in Mbit/s)"},
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SourceNetif, "source-netif")
POCO_END_MANIFEST
AGENT_MODULE_ABI()
