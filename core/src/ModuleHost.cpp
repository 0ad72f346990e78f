#include "ModuleHost.h"

#include "BuildInfo.h"

#include <Poco/File.h>
#include <Poco/Thread.h>

#include <chrono>
#include <thread>

namespace agent {

// The Context a module sees: its own logger, state dir and health, the shared bus and scheduler.
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

const char* kindName(ModuleKind kind) {
    switch (kind) {
    case ModuleKind::Source: return "source";
    case ModuleKind::Sink: return "sink";
    case ModuleKind::Other: return "other";
    }
    return "?";
}

} // namespace

ModuleHost::ModuleHost(const AgentConfig& config, HostIdentity identity, Poco::Logger& logger)
    : config_(config), identity_(std::move(identity)), logger_(logger),
      registry_(RegistryPoller::Options{config.settings().registryAddr, config.settings().stateDir + "/registry.json",
                                        AGENT_VERSION, std::chrono::seconds(config.settings().registryIntervalSeconds),
                                        std::chrono::seconds(std::min<std::int64_t>(60, config.settings().registryIntervalSeconds))},
                identity_, Poco::Logger::get("registry")),
      routes_(config.settings().modules),
      loader_(config.settings().moduleDir),
      scheduler_(std::make_unique<TaskScheduler>(4, Poco::Logger::get("scheduler"))),
      bus_(std::make_unique<MetricBus>(identity_.get().hostname, Poco::Logger::get("bus"),
                                       MetricBus::Options{config.settings().spoolFsyncIntervalSeconds})) {}

ModuleHost::~ModuleHost() {
    stop();
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
            report.ok = true;
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
            slot.context = std::make_unique<ModuleContext>(name, *bus_, *scheduler_, stateDir, identity_, registry_, routes_,
                                                            *this);
            slots_.push_back(std::move(slot));
        } else {
            allOk = false;
        }
        reports.push_back(std::move(report));
    }
    return allOk;
}

std::size_t ModuleHost::sinkCount() const {
    std::size_t count = 0;
    for (const Slot& slot : slots_) count += slot.module.kind == ModuleKind::Sink ? 1 : 0;
    return count;
}

void ModuleHost::startModule(Slot& slot, Bus& bus) {
    slot.context->setBus(bus);
    slot.module.instance->start(*slot.context);
    slot.started = true;
    logger_.information("module %s started (%s)", slot.module.name, std::string(kindName(slot.module.kind)));
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
    // Sinks first, so that nothing a source publishes at its start finds no sink.
    for (Slot& slot : slots_) {
        if (slot.module.kind != ModuleKind::Sink) continue;
        startModule(slot, *bus_);
        auto& sink = static_cast<Sink&>(*slot.module.instance);
        options.batching = sink.batching();
        options.spool.directory = settings.stateDir + "/spool/" + slot.module.name;
        bus_->addSink(slot.module.name, sink, options);
    }
    bus_->start();
    for (Slot& slot : slots_) {
        if (slot.module.kind == ModuleKind::Sink) continue;
        startModule(slot, *bus_);
        if (slot.module.kind != ModuleKind::Source) continue;
        auto& source = static_cast<Source&>(*slot.module.instance);
        const Poco::Timespan interval = source.collectInterval();
        if (interval.totalMicroseconds() <= 0) continue;
        scheduler_->every("collect " + slot.module.name, interval, 0, [&source, this] {
            Batch batch;
            source.collect(batch);
            if (!batch.empty()) bus_->publish(std::move(batch));
        });
    }
    scheduler_->start();
}

void ModuleHost::stopModule(Slot& slot) {
    if (!slot.started) return;
    slot.started = false;
    try {
        slot.module.instance->stop();
        logger_.information("module %s stopped", slot.module.name);
    } catch (const std::exception& error) {
        logger_.error("module %s: stop failed: %s", slot.module.name, std::string(error.what()));
    }
}

void ModuleHost::stop() {
    if (!running_) return;
    running_ = false;
    registry_.stop();
    // The API first, so no request reaches a module that is stopping; then the scheduled work.
    for (Slot& slot : slots_) {
        if (slot.module.name.rfind("api-", 0) == 0) stopModule(slot);
    }
    scheduler_->stop();
    for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
        if (it->module.kind != ModuleKind::Sink) stopModule(*it);
    }
    bus_->stop();
    for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
        if (it->module.kind == ModuleKind::Sink) stopModule(*it);
    }
}

Batch ModuleHost::collectOnce() {
    CollectingBus collecting;
    running_ = true;
    registry_.start();
    std::string registryError;
    if (!config_.settings().registryAddr.empty() && !registry_.pollNow(registryError))
        logger_.warning("registry: %s; using the cached answer if there is one", registryError);
    std::vector<Source*> sources;
    bool baseline = false;
    for (Slot& slot : slots_) {
        if (slot.module.kind != ModuleKind::Source) continue;
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
    for (Metric& metric : batch) normalizeForSink(metric, identity_.get().hostname, now);
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
        entry->set("kind", kindName(slot.module.kind));
        entry->set("path", slot.module.path);
        entry->set("running", slot.started);
        if (Poco::JSON::Object::Ptr health = slot.context->health()) entry->set("health", health);
        for (const SinkChannelPtr& channel : bus_->sinks()) {
            if (channel->name() == slot.module.name) entry->set("delivery", channel->health());
        }
        modules->set(slot.module.name, entry);
    }
    return modules;
}

} // namespace agent
