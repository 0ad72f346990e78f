// sink-nsq: publishes metrics to nsqd over its TCP protocol V2, one topic per namespace
// ("collect.<ns>"), each message the Go agent's JSON batch or line protocol. The protocol and the
// failover live in NsqProducer, the bodies in NsqBody, one batch's publication in NsqBatchWriter;
// this file holds the config table, the checks, the life cycle and the health.
#include "NsqBatchWriter.h"
#include "NsqBody.h"
#include "NsqProducer.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Module.h>
#include <agent/ModuleConfig.h>

#include <Poco/ClassLibrary.h>
#include <Poco/Exception.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using agent::nsq::BodyFormat;
using agent::nsq::NsqSinkSettings;

// nsqd reads every size as a signed 32-bit integer.
constexpr std::int64_t kMaxWireSize = 2'147'483'647;
constexpr std::int64_t kMinMessageBytes = 256;
// nsqd refuses heartbeat intervals above its --max-heartbeat-interval, 60 s by default.
constexpr std::int64_t kMaxHeartbeatSeconds = 60;
constexpr std::int64_t kMaxBatchPoints = 1'000'000;

std::chrono::milliseconds toMilliseconds(double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

class SinkNsq : public agent::Sink {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        NsqSinkSettings settings;

        const std::vector<std::string> servers = config.getStringList("servers");
        const std::string inherited = config.has("servers") ? "" : " (from [output] servers)";
        if (servers.empty()) errors.add(config, "servers", "lists no server; give at least one host:port" + inherited);
        for (const std::string& server : servers) {
            std::string error;
            if (auto address = agent::nsq::parseServerAddress(server, error))
                settings.servers.push_back(*address);
            else
                errors.add(config, "servers", error + inherited);
        }

        settings.topic = config.getString("topic");
        const std::string sampleTopic = agent::nsq::renderTemplate(settings.topic, "ns1");
        if (!agent::nsq::isValidTopicName(sampleTopic))
            errors.add(config, "topic",
                       "\"" + settings.topic + "\" gives \"" + sampleTopic +
                           "\" for namespace ns1, not a valid NSQ topic ([.a-zA-Z0-9_-], at most 64 "
                           "characters, optionally ending in #ephemeral)");
        settings.database = config.getString("database");
        if (settings.database.empty()) errors.add(config, "database", "must not be empty");

        const std::string format = config.getString("format");
        if (format == "json")
            settings.format = BodyFormat::Json;
        else if (format == "line")
            settings.format = BodyFormat::Line;
        else
            errors.add(config, "format", "\"" + format + "\" is neither json nor line");

        const std::int64_t maxMessage = config.getInt("max_message_bytes");
        const std::int64_t maxBody = config.getInt("max_body_bytes");
        if (maxMessage < kMinMessageBytes || maxMessage > kMaxWireSize)
            errors.add(config, "max_message_bytes",
                       "must be between " + std::to_string(kMinMessageBytes) + " and " + std::to_string(kMaxWireSize) +
                           " (nsqd's --max-msg-size)");
        if (maxBody < maxMessage + 8 || maxBody > kMaxWireSize)
            errors.add(config, "max_body_bytes",
                       "must be at least max_message_bytes + 8 (one message and its framing) "
                       "and at most " +
                           std::to_string(kMaxWireSize) + " (nsqd's --max-body-size)");
        settings.maxMessageBytes = static_cast<std::size_t>(std::max<std::int64_t>(maxMessage, 0));
        settings.maxBodyBytes = static_cast<std::size_t>(std::max<std::int64_t>(maxBody, 0));

        const double timeout = config.getDouble("timeout");
        if (!(timeout > 0 && timeout <= 300)) errors.add(config, "timeout", "must be above 0 and at most 300 seconds");
        settings.timeout = toMilliseconds(timeout);

        const std::int64_t heartbeat = config.getInt("heartbeat_interval");
        if (heartbeat < 1 || heartbeat > kMaxHeartbeatSeconds)
            errors.add(config, "heartbeat_interval",
                       "must be between 1 and 60 seconds (nsqd's --max-heartbeat-interval)");
        settings.heartbeatInterval = std::chrono::seconds(heartbeat);

        const double cooldown = config.getDouble("server_cooldown");
        if (!(cooldown >= 0 && cooldown <= 3600))
            errors.add(config, "server_cooldown", "must be between 0 and 3600 seconds");
        settings.serverCooldown = toMilliseconds(cooldown);

        settings.clientId = config.getString("client_id");

        const std::int64_t batchPoints = config.getInt("batch_points");
        if (batchPoints < 0 || batchPoints > kMaxBatchPoints)
            errors.add(config, "batch_points", "must be between 0 and " + std::to_string(kMaxBatchPoints));
        const double batchDelay = config.getDouble("batch_delay");
        if (!(batchDelay >= 0 && batchDelay <= 60))
            errors.add(config, "batch_delay", "must be between 0 and 60 seconds");
        errors.throwIfAny();

        std::lock_guard<std::mutex> lock(writerMutex_);
        settings_ = std::move(settings);
        batching_.maxPoints = static_cast<std::size_t>(batchPoints);
        batching_.maxDelay = Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(std::llround(batchDelay * 1e6)));
    }

    // concurrency stays 1: one producer connection, MPUBs in order. write() takes writerMutex_,
    // so it would also be safe (though serialised) if called from several threads.
    agent::SinkBatching batching() const override {
        std::lock_guard<std::mutex> lock(writerMutex_);
        return batching_;
    }

    void start(agent::Context& context) override {
        std::lock_guard<std::mutex> lock(writerMutex_);
        context_ = &context;
        writer_ =
            std::make_unique<agent::nsq::NsqBatchWriter>(settings_, context.identity().hostname, context.logger());
        std::string servers;
        for (const agent::nsq::ServerAddress& address : settings_.servers)
            servers += (servers.empty() ? "" : ", ") + address.text;
        context.logger().information("publishing to nsqd %s, topic %s, format %s", servers, settings_.topic,
                                     std::string(settings_.format == BodyFormat::Json ? "json" : "line"));
        context.setHealth(writer_->health());
    }

    agent::WriteResult write(const agent::Batch& batch) override {
        std::lock_guard<std::mutex> lock(writerMutex_);
        if (!writer_) throw Poco::IllegalStateException("sink-nsq: write() before start()");
        const agent::WriteResult result = writer_->write(batch);
        context_->setHealth(writer_->health());
        return result;
    }

    void stop() override {
        std::lock_guard<std::mutex> lock(writerMutex_);
        if (!writer_) return;
        writer_->close(); // every MPUB already has its OK: nothing to flush
        context_->setHealth(writer_->health());
    }

private:
    static const agent::ConfigSchema kSchema;

    // configure() and start() run on the core's main thread, write() on the sink's writer thread.
    mutable std::mutex writerMutex_;
    NsqSinkSettings settings_;
    agent::SinkBatching batching_;
    agent::nsq::NsqBatchWriterPtr writer_;
    agent::Context* context_ = nullptr; // owned by the core, outlives start..stop
};

const agent::ConfigSchema SinkNsq::kSchema = {
    {"servers", agent::ConfigType::StringList, R"(["127.0.0.1:4150"])",
     "nsqd TCP addresses (host:port); batches go to them in turn, failing over", "output.servers"},
    {"topic", agent::ConfigType::String, "collect.{ns}", "topic template; {ns} = the metric's namespace"},
    {"database", agent::ConfigType::String, "collect.{ns}", "\"database\" of the JSON batch; {ns} = the namespace"},
    {"format", agent::ConfigType::String, "json", "message body: json (the Go agent's batch) or line (line protocol)"},
    {"max_message_bytes", agent::ConfigType::Integer, "1048576",
     "largest message (nsqd --max-msg-size); bigger batches are split, a bigger point is dropped"},
    {"max_body_bytes", agent::ConfigType::Integer, "5242880", "largest MPUB body (nsqd --max-body-size)"},
    {"timeout", agent::ConfigType::Float, "5", "seconds to connect and identify, and to wait for each MPUB's OK"},
    {"heartbeat_interval", agent::ConfigType::Integer, "30", "seconds between nsqd's heartbeats (asked in IDENTIFY)"},
    {"server_cooldown", agent::ConfigType::Float, "30", "seconds a failed server is tried only after the others"},
    {"client_id", agent::ConfigType::String, "", "client_id sent in IDENTIFY; \"\" = the hostname"},
    {"batch_points", agent::ConfigType::Integer, "0",
     "merge queued batches up to this many points per write; 0 = each published batch as it is"},
    {"batch_delay", agent::ConfigType::Float, "0", "seconds to wait for batch_points to fill up; 0 = never wait"},
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SinkNsq, "sink-nsq")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
