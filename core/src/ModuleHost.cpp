#include "ModuleHost.h"

#include "BuildInfo.h"

#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/Thread.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace agent {

// The Context a module sees: its own logger, state dir, health, executor and route view; the
// shared bus.
class ModuleHost::ModuleContext : public Context {
public:
    ModuleContext(std::string name, Bus& bus, Scheduler& scheduler, std::string stateDir,
                  const HostIdentityStore& identity, Registry& registry, RouteRegistry& routes,
                  const ModuleHost& host)
        : name_(std::move(name)), bus_(&bus), scheduler_(scheduler), stateDir_(std::move(stateDir)),
          identity_(identity), registry_(registry), routes_(routes), host_(host), logger_(Poco::Logger::get(name_)) {}

    Bus& bus() override { return *bus_; }
    void setBus(Bus& bus) { bus_ = &bus; }
    Scheduler& scheduler() override { return scheduler_; }
    Poco::Logger& logger() override { return logger_; }
    std::string stateDir() const override {
        Poco::File(stateDir_).createDirectories();
        return stateDir_;
    }
    HostIdentity identity() const override { return identity_.get(); }
    Registry& registry() override { return registry_; }
    RouteRegistry& routes() override { return routes_; }
    void setHealth(Poco::JSON::Object::Ptr health) override {
        std::lock_guard<std::mutex> lock(healthMutex_);
        health_ = std::move(health);
    }
    Poco::JSON::Object::Ptr health() const {
        std::lock_guard<std::mutex> lock(healthMutex_);
        return health_;
    }
    Poco::JSON::Object::Ptr moduleHealth() const override { return host_.moduleHealth(); }

private:
    const std::string name_;
    Bus* bus_;
    Scheduler& scheduler_;
    const std::string stateDir_;
    const HostIdentityStore& identity_;
    Registry& registry_;
    RouteRegistry& routes_;
    const ModuleHost& host_;
    Poco::Logger& logger_;
    mutable std::mutex healthMutex_; // guards health_
    Poco::JSON::Object::Ptr health_;
};

namespace {

// `agent once` publishes into this instead of the sinks.
class CollectingBus : public Bus {
public:
    PublishResult publish(Batch&& batch, OverflowPolicy = OverflowPolicy::DropOldest) override {
        std::lock_guard<std::mutex> lock(mutex_);
        PublishResult result;
        result.accepted = batch.size();
        for (Metric& metric : batch) collected_.push_back(std::move(metric));
        return result;
    }
    Batch take() {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::move(collected_);
    }

private:
    std::mutex mutex_; // guards collected_
    Batch collected_;
};

// Keeps what a sink still holds from eating the time of what comes after the drain (the sinks'
// own stop()), so that the whole stop stays within its deadline.
constexpr std::chrono::milliseconds kDrainMargin{500};

Poco::JSON::Object::Ptr executorStatus(const TaskScheduler& executor, bool abandoned) {
    const TaskScheduler::Summary summary = executor.summary();
    Poco::JSON::Object::Ptr status = new Poco::JSON::Object;
    status->set("workers", summary.workers);
    status->set("tasks", static_cast<Poco::UInt64>(summary.tasks));
    status->set("runs", summary.runs);
    status->set("skipped", summary.skipped);
    status->set("late", summary.late);
    status->set("failures", summary.failures);
    status->set("max_lag_ms", static_cast<double>(summary.maxLag.count()) / 1000.0);
    if (abandoned) status->set("abandoned", true);
    return status;
}

enum class StopPhase { Server, Reporter, Other, Sink };

StopPhase stopPhase(Roles roles) {
    if (hasRole(roles, Role::Sink)) return StopPhase::Sink;
    if (hasRole(roles, Role::Server)) return StopPhase::Server;
    if (hasRole(roles, Role::Reporter)) return StopPhase::Reporter;
    return StopPhase::Other;
}

} // namespace

std::vector<std::size_t> startOrder(const std::vector<Roles>& roles) {
    std::vector<std::size_t> order;
    const auto pick = [&](auto wanted) {
        for (std::size_t i = 0; i < roles.size(); ++i) {
            if (wanted(roles[i])) order.push_back(i);
        }
    };
    pick([](Roles r) { return hasRole(r, Role::Sink); });
    pick([](Roles r) { return !hasRole(r, Role::Sink) && !hasRole(r, Role::Server); });
    pick([](Roles r) { return !hasRole(r, Role::Sink) && hasRole(r, Role::Server); });
    return order;
}

std::vector<std::size_t> stopOrder(const std::vector<Roles>& roles) {
    std::vector<std::size_t> order;
    for (StopPhase phase : {StopPhase::Server, StopPhase::Reporter, StopPhase::Other, StopPhase::Sink}) {
        for (std::size_t i = roles.size(); i-- > 0;) {
            if (stopPhase(roles[i]) == phase) order.push_back(i);
        }
    }
    return order;
}

ModuleHost::ModuleHost(const AgentConfig& config, HostIdentity identity, Poco::Logger& logger)
    : config_(config), identity_(std::move(identity)), logger_(logger),
      registry_(RegistryPoller::Options{config.settings().registryAddr, config.settings().stateDir + "/registry.json",
                                        AGENT_VERSION, std::chrono::seconds(config.settings().registryIntervalSeconds),
                                        std::chrono::seconds(config.settings().registrySplaySeconds)},
                identity_, Poco::Logger::get("registry")),
      loader_(config.settings().moduleDir),
      bus_(std::make_unique<MetricBus>(identity_.get().hostname, Poco::Logger::get("bus"),
                                       MetricBus::Options{config.settings().spoolFsyncIntervalSeconds,
                                                          config.settings().tidyTags})) {}

ModuleHost::~ModuleHost() {
    stop();
    // A module whose thread was left running (stop() abandoned it) keeps its instance, context,
    // executor and library, and the bus it may still publish to: that thread may come back into
    // any of them. The agent itself ends with _Exit in that case (AgentApp::runAgent), so this
    // only matters for a host destroyed inside a longer-lived process.
    for (Slot& slot : slots_) {
        if (!slot.abandoned) continue;
        (void)slot.module.instance.release();
        (void)slot.context.release();
        (void)slot.executor.release();
        (void)slot.routes.release();
    }
    if (abandoned_) (void)bus_.release();
    slots_.clear(); // module instances go before the loader unloads their code
}

bool ModuleHost::load(const std::vector<std::string>& names, std::vector<ModuleReport>& reports) {
    bool allOk = true;
    for (const std::string& name : names) {
        ModuleReport report;
        report.name = name;
        report.path = loader_.pathOf(name);
        Slot slot;
        try {
            slot.module = loader_.load(name);
            ConfigErrors errors;
            const ConfigSchema& schema = slot.module.instance->configSchema();
            config_.validateSection(name, schema, errors);
            errors.throwIfAny();
            slot.module.instance->configure(config_.section(name, schema));
            // Last, so that a module that is not kept never owns a path.
            for (const std::string& problem : routes_.declare(name, slot.module.description.routes,
                                                                     slot.module.description.slowRoutes))
                report.problems.push_back(report.path + ": " + problem);
            report.ok = report.problems.empty();
        } catch (const ModuleLoadError& error) {
            report.problems.push_back(error.what());
        } catch (const ConfigError& error) {
            report.problems = error.lines();
        } catch (const Poco::Exception& error) {
            report.problems.push_back(report.path + ": configure failed: " + error.displayText());
        } catch (const std::exception& error) {
            report.problems.push_back(report.path + ": configure failed: " + error.what());
        }
        if (report.ok) {
            const std::string stateDir = config_.settings().stateDir + "/modules/" + name;
            slot.executor = std::make_unique<TaskScheduler>(slot.module.description.workers, Poco::Logger::get("scheduler"),
                                                            "module " + name);
            slot.routes = std::make_unique<ModuleRoutes>(routes_, name);
            slot.context = std::make_unique<ModuleContext>(name, *bus_, *slot.executor, stateDir, identity_, registry_,
                                                            *slot.routes, *this);
            slots_.push_back(std::move(slot));
        } else {
            allOk = false;
        }
        reports.push_back(std::move(report));
    }
    return allOk;
}

std::vector<Roles> ModuleHost::roles() const {
    std::vector<Roles> result;
    for (const Slot& slot : slots_) result.push_back(slot.module.description.roles);
    return result;
}

std::size_t ModuleHost::sinkCount() const { return modulesWith(Role::Sink).size(); }

std::vector<std::string> ModuleHost::modulesWith(Role role) const {
    std::vector<std::string> names;
    for (const Slot& slot : slots_) {
        if (slot.module.has(role)) names.push_back(slot.module.name);
    }
    return names;
}

void ModuleHost::startModule(Slot& slot, Bus& bus) {
    slot.context->setBus(bus);
    // Named here: the agent's start-up error must say which module failed and why.
    try {
        slot.module.instance->start(*slot.context);
    } catch (const Poco::Exception& error) {
        throw std::runtime_error("module " + slot.module.name + ": start failed: " + error.displayText());
    } catch (const std::exception& error) {
        throw std::runtime_error("module " + slot.module.name + ": start failed: " + error.what());
    }
    slot.started = true;
    const unsigned workers = slot.module.description.workers;
    logger_.information("module %s started (%s; %u worker%s)", slot.module.name, roleList(slot.module.description.roles),
                        workers, std::string(workers == 1 ? "" : "s"));
}

void ModuleHost::startExecutor(Slot& slot) {
    if (slot.module.has(Role::Source)) {
        auto& source = static_cast<Source&>(*slot.module.instance);
        const Poco::Timespan interval = source.collectInterval();
        if (interval.totalMicroseconds() > 0) {
            // On the source's own executor: a slow collect() delays only this source.
            slot.executor->every("collect " + slot.module.name, interval, 0, [&source, this] {
                Batch batch;
                source.collect(batch);
                if (!batch.empty()) bus_->publish(std::move(batch));
            });
        }
    }
    slot.executor->start();
}

void ModuleHost::start() {
    const AgentSettings& settings = config_.settings();
    SinkChannel::Options options;
    options.cachePoints = static_cast<std::size_t>(settings.bufferSize);
    options.backoff.initialSeconds = settings.retryInitialSeconds;
    options.backoff.maxSeconds = settings.retryMaxSeconds;
    options.drainSeconds = settings.drainSeconds;
    options.spool.maxBytes = settings.spoolMaxBytes;
    options.spool.segmentBytes = settings.spoolSegmentBytes;
    options.spool.fsync = settings.spoolFsync == "every_batch" ? Spool::Fsync::EveryBatch
                          : settings.spoolFsync == "never"     ? Spool::Fsync::Never
                                                               : Spool::Fsync::Interval;

    running_ = true;
    registry_.start(); // namespaces and entries from the cache before any module starts
    // Sinks first (startOrder), so that nothing a source publishes at its start finds no sink;
    // the bus's writers start once every sink is added.
    bool busStarted = false;
    for (std::size_t index : startOrder(roles())) {
        Slot& slot = slots_[index];
        if (!slot.module.has(Role::Sink) && !busStarted) {
            bus_->start();
            busStarted = true;
        }
        startModule(slot, *bus_);
        if (slot.module.has(Role::Sink)) {
            auto& sink = static_cast<Sink&>(*slot.module.instance);
            options.batching = sink.batching();
            options.spool.directory = settings.stateDir + "/spool/" + slot.module.name;
            bus_->addSink(slot.module.name, sink, options);
        }
        startExecutor(slot);
    }
    if (!busStarted) bus_->start();
}

void ModuleHost::stopModule(Slot& slot, Deadline deadline) {
    routes_.withdraw(slot.module.name); // from now on its paths answer 503
    if (slot.started) {
        slot.started = false;
        try {
            slot.module.instance->stop();
            logger_.information("module %s stopped", slot.module.name);
        } catch (const std::exception& error) {
            logger_.error("module %s: stop failed: %s", slot.module.name, std::string(error.what()));
        }
    }
    if (!slot.executor->stop(deadline)) {
        slot.abandoned = true;
        abandoned_ = true;
        loader_.keepLoaded(slot.module.name);
    }
}

void ModuleHost::stopBus(Deadline deadline) {
    const double left = std::chrono::duration<double>(deadline - kDrainMargin - TaskScheduler::Clock::now()).count();
    bus_->stop(std::max(0.0, left));
}

bool ModuleHost::stop() {
    if (!running_) return !abandoned_;
    running_ = false;
    const auto budget = std::chrono::duration_cast<TaskScheduler::Clock::duration>(
        std::chrono::duration<double>(config_.settings().stopTimeoutSeconds));
    const Deadline deadline = TaskScheduler::Clock::now() + budget;
    registry_.stop();
    // Servers first, so no request reaches a module that is stopping; then reporters, the other
    // modules, the bus's drain, and the sinks last (stopOrder()).
    bool busStopped = false;
    for (std::size_t index : stopOrder(roles())) {
        Slot& slot = slots_[index];
        if (slot.module.has(Role::Sink) && !busStopped) {
            stopBus(deadline);
            busStopped = true;
        }
        stopModule(slot, deadline);
    }
    if (!busStopped) stopBus(deadline);
    if (abandoned_) {
        std::string names;
        for (const Slot& slot : slots_) {
            if (slot.abandoned) names += (names.empty() ? "" : ", ") + slot.module.name;
        }
        logger_.error("stop: work of %s was still running after %.1f s (stop_timeout) and was abandoned", names,
                      config_.settings().stopTimeoutSeconds);
    }
    return !abandoned_;
}

Batch ModuleHost::collectOnce() {
    CollectingBus collecting;
    running_ = true;
    registry_.start();
    std::string registryError;
    if (!config_.settings().registryAddr.empty() && !registry_.pollNow(registryError))
        logger_.warning("registry: %s; using the cached answer if there is one", registryError);
    // Only sources start; their executors do not (what they schedule themselves does not run):
    // `once` reads collect() alone.
    std::vector<Source*> sources;
    bool baseline = false;
    for (Slot& slot : slots_) {
        if (!slot.module.has(Role::Source)) continue;
        startModule(slot, collecting);
        auto* source = static_cast<Source*>(slot.module.instance.get());
        sources.push_back(source);
        baseline = baseline || source->needsBaseline();
        Batch batch;
        source->collect(batch);
        if (!source->needsBaseline()) collecting.publish(std::move(batch));
    }
    if (baseline) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        for (Source* source : sources) {
            if (!source->needsBaseline()) continue;
            Batch batch;
            source->collect(batch);
            collecting.publish(std::move(batch));
        }
    }
    stop();
    Batch batch = collecting.take();
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    for (Metric& metric : batch) {
        normalizeForSink(metric, identity_.get().hostname, now);
        if (config_.settings().tidyTags) tidyTagValues(metric);
    }
    return batch;
}

Poco::JSON::Object::Ptr ModuleHost::moduleHealth() const {
    // slots_ only changes in load(), before any module starts and can call this.
    Poco::JSON::Object::Ptr modules = new Poco::JSON::Object;
    for (const Slot& slot : slots_) {
        Poco::JSON::Object::Ptr health = slot.context->health();
        modules->set(slot.module.name, health ? health : Poco::JSON::Object::Ptr(new Poco::JSON::Object));
    }
    return modules;
}

Poco::JSON::Object::Ptr ModuleHost::status() const {
    Poco::JSON::Object::Ptr modules = new Poco::JSON::Object;
    for (const Slot& slot : slots_) {
        Poco::JSON::Object::Ptr entry = new Poco::JSON::Object;
        Poco::JSON::Array::Ptr roles = new Poco::JSON::Array;
        for (const std::string& role : roleNames(slot.module.description.roles)) roles->add(role);
        entry->set("roles", roles);
        entry->set("path", slot.module.path);
        entry->set("running", slot.started);
        entry->set("executor", executorStatus(*slot.executor, slot.abandoned));
        if (Poco::JSON::Object::Ptr health = slot.context->health()) entry->set("health", health);
        for (const SinkChannelPtr& channel : bus_->sinks()) {
            if (channel->name() == slot.module.name) entry->set("delivery", channel->health());
        }
        modules->set(slot.module.name, entry);
    }
    return modules;
}

} // namespace agent
