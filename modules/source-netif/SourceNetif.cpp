// source-netif: network interface traffic rates (net.in, net.out, packets, errors, drops, link
// speed and use) for the interfaces named by `ifaceprefix`, read from /proc/net/dev and
// /sys/class/net. The reading and the rate rules live in NetifCollector; this file holds the
// config table, the per-namespace copies, logging and health.
#include "NetifCollector.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Metric.h>
#include <agent/Module.h>
#include <agent/ModuleConfig.h>

#include <Poco/ClassLibrary.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/SharedPtr.h>
#include <Poco/Timespan.h>
#include <Poco/Types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace {

using agent::netif::NetifCollector;

// An interval longer than a day is almost certainly a typo (milliseconds for seconds).
constexpr std::int64_t kMaxIntervalSeconds = 86'400;

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
        intervalSeconds_ = interval;
        collector_ = std::make_unique<NetifCollector>(procNetDev, sysClassNet, std::move(prefixes));
    }

    void start(agent::Context& context) override { context_ = &context; }

    void stop() override {}

    Poco::Timespan collectInterval() const override {
        return Poco::Timespan(static_cast<long>(intervalSeconds_), 0);
    }

    bool needsBaseline() const override { return true; }

    void collect(agent::Batch& out) override {
        const double monotonicSeconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
        const std::int64_t timestamp =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();

        agent::Batch points;
        agent::netif::CollectReport report;
        Poco::JSON::Object::Ptr health = Poco::makeShared<Poco::JSON::Object>();
        {
            std::lock_guard<std::mutex> lock(collectorMutex_);
            if (!collector_) throw Poco::IllegalStateException("source-netif: collect() before configure()");
            report = collector_->collect(monotonicSeconds, timestamp, points);
            health->set("interfaces", static_cast<Poco::UInt64>(collector_->interfaceCount()));
            health->set("malformed_lines", static_cast<Poco::UInt64>(collector_->malformedLinesTotal()));
            health->set("last_error", collector_->lastError());
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
        context_->setHealth(health);
    }

private:
    static const agent::ConfigSchema kSchema;

    std::int64_t intervalSeconds_ = 10;
    agent::Context* context_ = nullptr; // owned by the core, outlives the module's start..stop
    // configure() runs on the core's main thread and collect() on a worker thread.
    std::mutex collectorMutex_;
    agent::netif::NetifCollectorPtr collector_;
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
