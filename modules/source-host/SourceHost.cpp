// source-host: the host's CPU, memory, load, disk I/O, file system, process and kernel figures
// under the Go agent's names, plus its heartbeat agent.alive. The reading and the rules live in
// HostCollector, the keys in HostConfig; this file schedules the groups on their intervals,
// copies the points to every namespace of the host, logs and reports health.
#include "HostCollector.h"
#include "HostConfig.h"

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
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

using agent::host::CollectReport;
using agent::host::Group;

agent::host::Tick now() {
    agent::host::Tick tick;
    tick.monotonicSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    tick.timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return tick;
}

// Every point goes once to each namespace of the host; a standalone host has none, and its
// points go out once with an empty namespace.
void appendPerNamespace(agent::Batch& points, const std::vector<std::string>& namespaces, agent::Batch& out) {
    if (namespaces.empty()) {
        for (agent::Metric& metric : points)
            out.push_back(std::move(metric));
        return;
    }
    out.reserve(out.size() + points.size() * namespaces.size());
    for (const std::string& ns : namespaces) {
        for (const agent::Metric& metric : points) {
            out.push_back(metric);
            out.back().ns = ns;
        }
    }
}

// "source-host cpu+mem+disk", as the scheduler's statistics name it.
std::string taskName(const agent::host::CollectionTask& task) {
    std::string name = "source-host ";
    for (std::size_t i = 0; i < task.groups.size(); ++i) {
        if (i > 0) name += '+';
        name += agent::host::groupName(task.groups[i]);
    }
    return name;
}

class SourceHost : public agent::Source {
public:
    const agent::ConfigSchema& configSchema() const override { return agent::host::hostConfigSchema(); }

    void configure(const agent::ModuleConfig& config) override {
        agent::host::HostSettings settings = agent::host::readHostSettings(config);
        collector_ = std::make_unique<agent::host::HostCollector>(settings.groups(), settings.options);
        settings_ = std::move(settings);
    }

    // The groups are scheduled by start(), each on its own interval.
    Poco::Timespan collectInterval() const override { return 0; }

    bool needsBaseline() const override { return true; }

    void start(agent::Context& context) override {
        context_ = &context;
        for (const agent::host::CollectionTask& task : agent::host::planTasks(settings_.schedules)) {
            tasks_.push_back(context.scheduler().every(taskName(task),
                                                       Poco::Timespan(static_cast<long>(task.intervalSeconds), 0), 0,
                                                       [this, groups = task.groups] { collectAndPublish(groups); }));
        }
    }

    void stop() override {
        if (context_ == nullptr) return;
        for (agent::TaskId task : tasks_)
            context_->scheduler().cancel(task);
        tasks_.clear();
    }

    // One round of every group (`agent once`, and a test driving the module by hand).
    void collect(agent::Batch& out) override {
        if (!collector_) throw Poco::IllegalStateException("source-host: collect() before configure()");
        for (Group group : collector_->groups())
            collectGroup(group, out);
    }

private:
    struct GroupHealth {
        std::uint64_t rounds = 0;
        std::uint64_t points = 0; // in the latest round, before the copies per namespace
        std::uint64_t warnings = 0;
    };

    void collectAndPublish(const std::vector<Group>& groups) {
        agent::Batch batch;
        for (Group group : groups)
            collectGroup(group, batch);
        if (!batch.empty()) context_->bus().publish(std::move(batch));
    }

    void collectGroup(Group group, agent::Batch& out) {
        agent::Batch points;
        const CollectReport report = collector_->collect(group, now(), points);
        noteHealth(group, points.size(), report);
        if (context_ == nullptr) {
            // Not started: nothing to log to, no identity.
            appendPerNamespace(points, {}, out);
            return;
        }
        Poco::Logger& logger = context_->logger();
        for (const std::string& warning : report.warnings)
            logger.warning(warning);
        for (const std::string& notice : report.notices)
            logger.information(notice);
        appendPerNamespace(points, context_->identity().namespaces, out);
    }

    void noteHealth(Group group, std::size_t points, const CollectReport& report) {
        Poco::JSON::Object::Ptr health = Poco::makeShared<Poco::JSON::Object>();
        {
            std::lock_guard<std::mutex> lock(healthMutex_);
            GroupHealth& entry = health_[group];
            ++entry.rounds;
            entry.points = points;
            entry.warnings += report.warnings.size();
            for (const auto& [name, figures] : health_) {
                Poco::JSON::Object::Ptr object = Poco::makeShared<Poco::JSON::Object>();
                object->set("rounds", static_cast<Poco::UInt64>(figures.rounds));
                object->set("points", static_cast<Poco::UInt64>(figures.points));
                object->set("warnings", static_cast<Poco::UInt64>(figures.warnings));
                health->set(agent::host::groupName(name), object);
            }
        }
        if (context_ != nullptr) context_->setHealth(health);
    }

    agent::host::HostSettings settings_;
    agent::host::HostCollectorPtr collector_; // set by configure(), before any task runs
    agent::Context* context_ = nullptr;       // owned by the core, outlives start..stop
    std::vector<agent::TaskId> tasks_;
    std::mutex healthMutex_; // guards health_: groups run on different scheduler threads
    std::map<Group, GroupHealth> health_;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SourceHost, "source-host")
POCO_END_MANIFEST
AGENT_MODULE_ABI()
