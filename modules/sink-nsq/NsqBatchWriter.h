// What sink-nsq's write() does, apart from the module's config and life cycle: splits a batch by
// namespace (in the order the namespaces first appear), names each namespace's topic, encodes its
// points as messages within the limits, publishes them with as few MPUBs as the body limit
// allows, and sums it all up as one WriteResult with exact counts. Keeps the counters the
// module's health shows. Not thread-safe: the module calls write() under its own lock, from one
// writer thread (sink-nsq keeps SinkBatching::concurrency at 1: one producer connection).
#pragma once

#include "NsqBody.h"
#include "NsqProducer.h"

#include <agent/Metric.h>
#include <agent/Module.h>

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace agent::nsq {

struct NsqSinkSettings {
    std::vector<ServerAddress> servers;
    std::string topic = "collect.{ns}";    // template; {ns} = the namespace
    std::string database = "collect.{ns}"; // template for the JSON batch's "database"
    BodyFormat format = BodyFormat::Json;
    std::size_t maxMessageBytes = kDefaultMaxMessageBytes;
    std::size_t maxBodyBytes = kDefaultMaxBodyBytes;
    std::chrono::milliseconds timeout{5000};
    std::chrono::milliseconds heartbeatInterval{30000};
    std::chrono::milliseconds serverCooldown{30000};
    std::string clientId; // "" = the hostname
};

// Counters since start, shown in the module's health.
struct NsqSinkCounters {
    std::uint64_t pointsPublished = 0;
    std::uint64_t droppedBadTopic = 0;    // the namespace makes no valid topic name
    std::uint64_t droppedOversized = 0;   // alone larger than a message
    std::uint64_t droppedUnencodable = 0; // no field the format can carry
    std::uint64_t droppedRejected = 0;    // nsqd answered E_BAD_TOPIC / E_BAD_BODY / E_BAD_MESSAGE
    std::uint64_t writesRetried = 0;
};

class NsqBatchWriter {
public:
    NsqBatchWriter(const NsqSinkSettings& settings, const std::string& hostname, Poco::Logger& logger);

    // Done: every point that could be published was; delivered = the points in messages nsqd
    //       acknowledged, rejected = the rest (messages nsqd refused for good, E_BAD_MESSAGE /
    //       E_BAD_BODY / E_BAD_TOPIC, and points never sendable: bad topic, oversized, no field).
    // Drop: nothing was published and some points were dropped (rejected = the whole batch).
    // Retry: a part of the batch reached no server; the parts published before it go again on
    //        the retry (at least once: duplicates, never losses). Nothing is counted.
    WriteResult write(const Batch& batch);

    // {"server", "messages_published", "points_published", "mpub_commands", "connects",
    //  "heartbeats_answered", "points_dropped": {...}, "errors": {code: n}, "last_error", ...}
    Poco::JSON::Object::Ptr health() const;

    void close() { producer_.close(); }

    const NsqSinkCounters& counters() const { return counters_; }
    const ProducerStats& producerStats() const { return producer_.stats(); }

private:
    // Publishes messages [first, last), adding their points to `published` or `rejected`. When
    // nsqd calls a multi-message MPUB's body or one of its messages bad, the halves go separately,
    // so that only a bad message itself is dropped (and a server whose --max-body-size is below
    // max_body_bytes still gets everything). Stops at the first Failed part and returns it.
    PublishResult publishRange(const std::string& topic, const EncodedMessages& encoded, std::size_t first,
                               std::size_t last, std::size_t& published, std::size_t& rejected);

    NsqSinkSettings settings_;
    Poco::Logger& logger_;
    NsqBodyEncoder encoder_;
    NsqProducer producer_;
    NsqSinkCounters counters_;
    std::set<std::string> badTopicLogged_; // namespaces whose bad topic was logged already
    bool oversizedLogged_ = false;
    bool unencodableLogged_ = false;
};

using NsqBatchWriterPtr = std::unique_ptr<NsqBatchWriter>;

} // namespace agent::nsq
