// sink-influx: writes metrics to InfluxDB 1.x (HTTP /write, line protocol, precision s), one
// database per namespace. The HTTP work and the outcome rules live in InfluxWriter; this file
// holds the config table, the batching preference, logging at start and the module's health.
#include "InfluxWriter.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Module.h>
#include <agent/ModuleConfig.h>

#include <Poco/ClassLibrary.h>
#include <Poco/Exception.h>
#include <Poco/String.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>

namespace {

using agent::influx::InfluxWriter;
using agent::influx::WriterSettings;

const agent::ConfigSchema kSchema = {
    {"urls", agent::ConfigType::StringList, R"(["http://127.0.0.1:8086"])",
     "InfluxDB base URLs (http://host:port[/path]); with several, the next takes over when one is down"},
    {"database", agent::ConfigType::String, "{ns}", "database to write to; {ns} = the metric's namespace"},
    {"empty_namespace", agent::ConfigType::String, "default",
     "what {ns} becomes for a metric with no namespace (a standalone host)"},
    {"retention_policy", agent::ConfigType::String, "", "retention policy to write to; \"\" = the database's default"},
    {"username", agent::ConfigType::String, "", "user for HTTP basic authentication; \"\" = none"},
    {"password", agent::ConfigType::String, "", "password for HTTP basic authentication"},
    {"create_database", agent::ConfigType::Boolean, "true",
     "when InfluxDB answers \"database not found\", CREATE DATABASE and write again"},
    {"batch_size", agent::ConfigType::Integer, "5000",
     "points per write request (queued batches are merged up to this)"},
    {"flush_interval", agent::ConfigType::Float, "1", "seconds to wait for more points before writing a smaller batch"},
    {"timeout", agent::ConfigType::Float, "5", "seconds allowed to connect, to send and to receive, each"},
    {"failback_after", agent::ConfigType::Float, "60", "seconds after a failover before the first URL is tried again"},
    {"gzip", agent::ConfigType::Boolean, "false", "compress request bodies (Content-Encoding: gzip)"},
    {"concurrency", agent::ConfigType::Integer, std::to_string(agent::influx::kDefaultConcurrency),
     "writes in flight at once, each on a keep-alive connection of its own (1..32)"},
};

Poco::Timespan seconds(double value) {
    return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(std::llround(value * 1e6)));
}

class SinkInflux : public agent::Sink {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        WriterSettings settings;
        settings.urls = config.getStringList("urls");
        settings.databaseTemplate = config.getString("database");
        settings.emptyNamespace = config.getString("empty_namespace");
        settings.retentionPolicy = config.getString("retention_policy");
        settings.username = config.getString("username");
        settings.password = config.getString("password");
        settings.createDatabase = config.getBool("create_database");
        const std::int64_t batchSize = config.getInt("batch_size");
        settings.batchSize = batchSize < 1 ? 0 : static_cast<std::size_t>(batchSize);
        const double flushInterval = config.getDouble("flush_interval");
        const double timeout = config.getDouble("timeout");
        const double failbackAfter = config.getDouble("failback_after");
        settings.timeout = seconds(std::clamp(timeout, 0.0, 1e6));
        settings.failbackAfter = seconds(std::clamp(failbackAfter, -1.0, 1e9));
        settings.gzip = config.getBool("gzip");
        const std::int64_t concurrency = config.getInt("concurrency");
        settings.concurrency = concurrency < 1 || concurrency > agent::influx::kMaxConcurrency
                                   ? 0
                                   : static_cast<unsigned>(concurrency);

        for (const agent::influx::SettingsProblem& problem : agent::influx::checkSettings(settings))
            errors.add(config, problem.key, problem.reason);
        if (!(flushInterval >= 0 && flushInterval <= 3600))
            errors.add(config, "flush_interval", "must be between 0 and 3600 seconds");
        if (!std::isfinite(timeout)) errors.add(config, "timeout", "must be a number of seconds");
        errors.throwIfAny();

        settings_ = std::move(settings);
        batching_.maxPoints = settings_.batchSize;
        batching_.maxDelay = seconds(flushInterval);
        batching_.concurrency = settings_.concurrency;
    }

    agent::SinkBatching batching() const override { return batching_; }

    void start(agent::Context& context) override {
        context_ = &context;
        writer_ = std::make_unique<InfluxWriter>(settings_, context.logger());
        context.logger().information("writing to %s, database %s, batches of %z points, %u in flight at most",
                                     Poco::cat(std::string(", "), settings_.urls.begin(), settings_.urls.end()),
                                     settings_.databaseTemplate, settings_.batchSize, settings_.concurrency);
        context.setHealth(writer_->health());
    }

    // Called from up to batching().concurrency threads at once: the writer is thread-safe, and
    // each call hands the context a new health object (taken and handed over under healthMutex_,
    // so that a write finishing later never puts back an older snapshot).
    agent::WriteResult write(const agent::Batch& batch) override {
        if (!writer_) throw Poco::IllegalStateException("sink-influx: write() before start()");
        const agent::WriteResult result = writer_->write(batch);
        std::lock_guard<std::mutex> lock(healthMutex_);
        context_->setHealth(writer_->health());
        return result;
    }

    void stop() override {
        if (!writer_) return;
        writer_->close();
        context_->setHealth(writer_->health());
    }

private:
    WriterSettings settings_;
    agent::SinkBatching batching_;
    agent::Context* context_ = nullptr; // owned by the core, outlives the module's start..stop
    agent::influx::InfluxWriterPtr writer_;
    std::mutex healthMutex_;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SinkInflux, "sink-influx")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
