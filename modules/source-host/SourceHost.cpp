// source-host: the host's CPU, memory, load, disk I/O, file system, process and kernel figures
// under the Go agent's names, plus its heartbeat agent.alive. The reading and the rules live in
// HostCollector, the keys in HostConfig; this file schedules the groups on their intervals (the
// section's, or the registry's per measurement type), copies the points to every namespace of
// the host, logs and reports health.
#include "HostCollector.h"
#include "HostConfig.h"

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
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace {

using agent::host::CollectReport;
using agent::host::Group;

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
    // Two threads: a statvfs() hanging on a dead network mount holds the fs group's thread, and
    // `alive` and the other groups must go on meanwhile on the other.
    agent::ModuleDescription describe() const override {
        return {static_cast<agent::Roles>(agent::Role::Source), {}, 2};
    }

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
        std::lock_guard<std::mutex> lock(tasksMutex_);
        applied_ = settings_.schedules;
        followRegistry(); // a cached registry answer may be there already
        scheduleGroups();
        registryWatch_ = context.scheduler().every("source-host registry", Poco::Timespan(kRegistryCheckSeconds, 0), 0,
                                                   [this] {
                                                       std::lock_guard<std::mutex> lock(tasksMutex_);
                                                       if (!stopped_ && followRegistry()) scheduleGroups();
                                                   });
    }

    void stop() override {
        if (context_ == nullptr) return;
        std::lock_guard<std::mutex> lock(tasksMutex_);
        stopped_ = true; // a watch already waiting for the lock must not schedule anything now
        context_->scheduler().cancel(registryWatch_);
        cancelGroups();
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

    // How often the module looks whether the registry's answer changed (it changes every ten
    // minutes at most; looking costs a counter read).
    static constexpr long kRegistryCheckSeconds = 5;

    // Schedules the tasks that applied_ needs and that do not run yet; a task that stays as it
    // was keeps its phase (a group whose interval did not change is not collected twice).
    void scheduleGroups() {
        std::vector<Scheduled> kept;
        const std::vector<agent::host::CollectionTask> plan = agent::host::planTasks(applied_);
        for (const agent::host::CollectionTask& task : plan) {
            auto running = std::find_if(tasks_.begin(), tasks_.end(), [&task](const Scheduled& scheduled) {
                return scheduled.task.intervalSeconds == task.intervalSeconds && scheduled.task.groups == task.groups;
            });
            if (running != tasks_.end()) {
                kept.push_back(*running);
                tasks_.erase(running);
                continue;
            }
            kept.push_back({task, context_->scheduler().every(taskName(task),
                                                              Poco::Timespan(static_cast<long>(task.intervalSeconds), 0),
                                                              firstDelay(task),
                                                              [this, groups = task.groups] { collectAndPublish(groups); })});
        }
        cancelGroups(); // what is left in tasks_ is no longer planned
        tasks_ = std::move(kept);
    }

    // A new task waits until its groups are due: never sooner than its interval after their
    // last round (a group that moved to another task is not collected twice in a row).
    Poco::Timespan firstDelay(const agent::host::CollectionTask& task) {
        const double now = agent::host::Tick::now().monotonicSeconds;
        double wait = 0;
        for (Group group : task.groups) {
            std::lock_guard<std::mutex> lock(groupMutexes_[static_cast<std::size_t>(group)]);
            const double last = lastRound_[static_cast<std::size_t>(group)];
            if (last > 0) wait = std::max(wait, last + static_cast<double>(task.intervalSeconds) - now);
        }
        return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(wait * 1e6));
    }

    void cancelGroups() {
        for (const Scheduled& scheduled : tasks_)
            context_->scheduler().cancel(scheduled.id);
        tasks_.clear();
    }

    // Reads the registry's intervals when its answer changed; true when the groups' schedules
    // changed with it. Caller holds tasksMutex_.
    bool followRegistry() {
        agent::Registry& registry = context_->registry();
        const std::uint64_t generation = registry.generation();
        if (generation == registryGeneration_) return false;
        registryGeneration_ = generation;
        std::vector<std::string> problems;
        const std::map<std::string, std::int64_t> byType =
            agent::registryIntervals(agent::namespaceEntries(registry, context_->identity().namespaces),
                                     agent::host::registryTypesOfHost(), agent::host::kMaxIntervalSeconds, problems);
        std::vector<agent::host::GroupSchedule> wanted = agent::host::withRegistryIntervals(settings_.schedules, byType);
        for (const std::string& problem : problems)
            context_->logger().warning("source-host: %s", problem);
        if (sameSchedules(wanted, applied_)) return false;
        applied_ = std::move(wanted);
        std::string described;
        for (const agent::host::GroupSchedule& schedule : applied_)
            described += (described.empty() ? "" : ", ") + std::string(agent::host::groupName(schedule.group)) + " " +
                         std::to_string(schedule.intervalSeconds) + " s";
        context_->logger().information("source-host: intervals now %s (registry generation %s)", described,
                                       std::to_string(generation));
        return true;
    }

    static bool sameSchedules(const std::vector<agent::host::GroupSchedule>& a,
                              const std::vector<agent::host::GroupSchedule>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (a[i].group != b[i].group || a[i].intervalSeconds != b[i].intervalSeconds) return false;
        return true;
    }

    void collectAndPublish(const std::vector<Group>& groups) {
        agent::Batch batch;
        for (Group group : groups)
            collectGroup(group, batch);
        if (!batch.empty()) context_->bus().publish(std::move(batch));
    }

    void collectGroup(Group group, agent::Batch& out) {
        agent::Batch points;
        CollectReport report;
        {
            // A task cancelled by a change of intervals may still be running when its successor
            // starts: one group is read by one thread at a time.
            std::lock_guard<std::mutex> lock(groupMutexes_[static_cast<std::size_t>(group)]);
            const agent::host::Tick tick = agent::host::Tick::now();
            report = collector_->collect(group, tick, points);
            lastRound_[static_cast<std::size_t>(group)] = tick.monotonicSeconds;
        }
        noteHealth(group, points.size(), report);
        if (context_ == nullptr) {
            // Not started: nothing to log to, no identity.
            agent::appendPerNamespace(points, {}, out);
            return;
        }
        Poco::Logger& logger = context_->logger();
        for (const std::string& warning : report.warnings)
            logger.warning(warning);
        for (const std::string& notice : report.notices)
            logger.information(notice);
        agent::appendPerNamespace(points, context_->identity().namespaces, out);
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
    std::mutex tasksMutex_; // guards tasks_, applied_, registryGeneration_, stopped_: start, stop, the watch
    struct Scheduled {
        agent::host::CollectionTask task;
        agent::TaskId id;
    };
    std::vector<Scheduled> tasks_;
    std::vector<agent::host::GroupSchedule> applied_; // the section's intervals, or the registry's
    std::uint64_t registryGeneration_ = 0;
    agent::TaskId registryWatch_ = 0;
    bool stopped_ = false;
    std::array<std::mutex, agent::host::kAllGroups.size()> groupMutexes_;
    std::array<double, agent::host::kAllGroups.size()> lastRound_{}; // monotonic seconds; 0: never
    std::mutex healthMutex_; // guards health_: groups run on different scheduler threads
    std::map<Group, GroupHealth> health_;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SourceHost, "source-host")
POCO_END_MANIFEST
AGENT_MODULE_ABI()
