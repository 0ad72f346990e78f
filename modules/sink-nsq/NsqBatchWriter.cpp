// One batch to NSQ: per namespace, in order of first appearance, topic -> messages -> MPUBs.
#include "NsqBatchWriter.h"

#include <Poco/JSON/Array.h>

#include <algorithm>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <utility>

#ifndef SINK_NSQ_AGENT_VERSION
#define SINK_NSQ_AGENT_VERSION "unknown"
#endif

namespace agent::nsq {
namespace {

ProducerOptions producerOptions(const NsqSinkSettings& settings, const std::string& hostname) {
    ProducerOptions options;
    options.servers = settings.servers;
    options.clientId = settings.clientId.empty() ? hostname : settings.clientId;
    options.hostname = hostname;
    options.userAgent = std::string("agent/") + SINK_NSQ_AGENT_VERSION;
    options.timeout = settings.timeout;
    options.heartbeatInterval = settings.heartbeatInterval;
    options.serverCooldown = settings.serverCooldown;
    options.maxMessageBytes = settings.maxMessageBytes;
    options.maxBodyBytes = settings.maxBodyBytes;
    return options;
}

using NamespaceGroups = std::vector<std::pair<std::string_view, std::vector<const Metric*>>>;

NamespaceGroups groupByNamespace(const Batch& batch) {
    NamespaceGroups groups;
    std::unordered_map<std::string_view, std::size_t> index;
    for (const Metric& metric : batch) {
        auto [it, added] = index.try_emplace(metric.ns, groups.size());
        if (added) groups.emplace_back(metric.ns, std::vector<const Metric*>());
        groups[it->second].second.push_back(&metric);
    }
    return groups;
}

std::size_t pointsIn(const EncodedMessages& encoded, std::size_t first, std::size_t last) {
    return std::accumulate(encoded.points.begin() + static_cast<std::ptrdiff_t>(first),
                           encoded.points.begin() + static_cast<std::ptrdiff_t>(last), std::size_t{0});
}

} // namespace

NsqBatchWriter::NsqBatchWriter(const NsqSinkSettings& settings, const std::string& hostname, Poco::Logger& logger)
    : settings_(settings), logger_(logger), encoder_(settings.format, settings.database),
      producer_(producerOptions(settings, hostname), logger) {}

WriteResult NsqBatchWriter::write(const Batch& batch) {
    if (batch.empty()) return WriteResult(WriteOutcome::Done, 0, 0);
    std::string error;
    if (!producer_.beginBatch(error)) {
        logger_.debug("no NSQ server reachable for a batch of %z points: %s", batch.size(), error);
        ++counters_.writesRetried;
        return WriteOutcome::Retry;
    }

    std::size_t published = 0;
    std::size_t dropped = 0;
    for (const auto& [ns, points] : groupByNamespace(batch)) {
        const std::string topic = renderTemplate(settings_.topic, ns);
        if (!isValidTopicName(topic)) {
            counters_.droppedBadTopic += points.size();
            dropped += points.size();
            if (badTopicLogged_.insert(std::string(ns)).second)
                logger_.error("namespace \"%s\" makes the topic \"%s\", which nsqd refuses ([.a-zA-Z0-9_-], at most 64 "
                              "characters); its points are dropped (logged once per namespace)",
                              std::string(ns), topic);
            continue;
        }
        const EncodedMessages encoded = encoder_.encode(ns, points, producer_.maxMessageBytes());
        counters_.droppedOversized += encoded.oversized;
        counters_.droppedUnencodable += encoded.unencodable;
        dropped += encoded.oversized + encoded.unencodable;
        if (encoded.oversized > 0 && !oversizedLogged_) {
            oversizedLogged_ = true;
            logger_.error("%z points of namespace \"%s\" are each larger than a message (%z bytes); dropped (logged "
                          "once, counted in the health)",
                          encoded.oversized, std::string(ns), producer_.maxMessageBytes());
        }
        if (encoded.unencodable > 0 && !unencodableLogged_) {
            unencodableLogged_ = true;
            logger_.warning("%z points of namespace \"%s\" have no field that can be sent (NaN, infinite or none); "
                            "dropped (logged once, counted in the health)",
                            encoded.unencodable, std::string(ns));
        }

        const auto ranges = splitIntoMpubBodies(encoded.messages, producer_.maxBodyBytes());
        for (std::size_t r = 0; r < ranges.size(); ++r) {
            std::size_t rejected = 0;
            std::size_t sent = 0;
            const PublishResult result =
                publishRange(topic, encoded, ranges[r].first, ranges[r].second, sent, rejected);
            published += sent;
            dropped += rejected;
            if (result.status == PublishResult::Status::Failed) {
                ++counters_.writesRetried;
                if (published > 0)
                    logger_.warning("published %z of %z points before %s; they go again with the retry", published,
                                    batch.size(), result.error);
                return WriteOutcome::Retry;
            }
            if (result.status == PublishResult::Status::Rejected && result.code == "E_BAD_TOPIC") {
                // The same topic would be refused for the rest of the namespace too.
                const std::size_t rest = pointsIn(encoded, ranges[r].second, encoded.messages.size());
                counters_.droppedRejected += rest;
                dropped += rest;
                break;
            }
        }
    }
    // Every point of the batch is either in a message nsqd acknowledged or dropped for good (refused
    // by nsqd, or never sendable: bad topic, oversized, no field); the counts add up to the batch.
    if (published + dropped != batch.size())
        logger_.warning("internal: a batch of %z points counted %z published and %z dropped", batch.size(), published,
                        dropped);
    const std::size_t delivered = std::min(published, batch.size());
    if (delivered == 0 && dropped > 0) return WriteResult(WriteOutcome::Drop, 0, batch.size());
    return WriteResult(WriteOutcome::Done, delivered, batch.size() - delivered);
}

PublishResult NsqBatchWriter::publishRange(const std::string& topic, const EncodedMessages& encoded, std::size_t first,
                                           std::size_t last, std::size_t& published, std::size_t& rejected) {
    PublishResult result = producer_.publish(topic, encoded.messages, first, last);
    const std::size_t points = pointsIn(encoded, first, last);
    if (result.status == PublishResult::Status::Published) {
        published += points;
        counters_.pointsPublished += points;
        return result;
    }
    if (result.status == PublishResult::Status::Failed) return result;
    const bool splittable = (result.code == "E_BAD_BODY" || result.code == "E_BAD_MESSAGE") && last - first > 1;
    if (!splittable) {
        rejected += points;
        counters_.droppedRejected += points;
        logger_.error("%s rejected %z messages (%z points) on topic %s; dropped: %s", result.server, last - first,
                      points, topic, result.error);
        return result;
    }
    const std::size_t middle = first + (last - first) / 2;
    PublishResult left = publishRange(topic, encoded, first, middle, published, rejected);
    if (left.status == PublishResult::Status::Failed) return left;
    PublishResult right = publishRange(topic, encoded, middle, last, published, rejected);
    if (right.status == PublishResult::Status::Failed) return right;
    return left.status == PublishResult::Status::Rejected ? left : right;
}

Poco::JSON::Object::Ptr NsqBatchWriter::health() const {
    const ProducerStats& stats = producer_.stats();
    Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
    health->set("server", producer_.connectedServer());
    Poco::JSON::Array::Ptr servers = new Poco::JSON::Array;
    for (const ServerAddress& address : settings_.servers)
        servers->add(address.text);
    health->set("servers", servers);
    health->set("format", settings_.format == BodyFormat::Json ? "json" : "line");
    health->set("messages_published", static_cast<Poco::UInt64>(stats.messagesPublished));
    health->set("points_published", static_cast<Poco::UInt64>(counters_.pointsPublished));
    health->set("bytes_published", static_cast<Poco::UInt64>(stats.bytesPublished));
    health->set("mpub_commands", static_cast<Poco::UInt64>(stats.mpubCommands));
    health->set("connects", static_cast<Poco::UInt64>(stats.connects));
    health->set("heartbeats_answered", static_cast<Poco::UInt64>(stats.heartbeatsAnswered));
    health->set("writes_retried", static_cast<Poco::UInt64>(counters_.writesRetried));
    Poco::JSON::Object::Ptr dropped = new Poco::JSON::Object;
    dropped->set("bad_topic", static_cast<Poco::UInt64>(counters_.droppedBadTopic));
    dropped->set("oversized", static_cast<Poco::UInt64>(counters_.droppedOversized));
    dropped->set("unencodable", static_cast<Poco::UInt64>(counters_.droppedUnencodable));
    dropped->set("rejected", static_cast<Poco::UInt64>(counters_.droppedRejected));
    health->set("points_dropped", dropped);
    Poco::JSON::Object::Ptr errors = new Poco::JSON::Object;
    for (const auto& [code, count] : stats.errors)
        errors->set(code, static_cast<Poco::UInt64>(count));
    health->set("errors", errors);
    health->set("last_error", stats.lastError);
    health->set("last_error_time", static_cast<Poco::Int64>(stats.lastErrorTime));
    return health;
}

} // namespace agent::nsq
