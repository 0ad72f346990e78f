// The bodies of the messages sink-nsq publishes: the Go agent's JSON batch
// (docs/ARCHITECTURE.md §15) or InfluxDB line protocol, one message per (namespace, chunk), each
// chunk as large as the message limit allows. A point that alone does not fit a message is dropped
// and counted.
#pragma once

#include <agent/LineProtocol.h>
#include <agent/Metric.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace agent::nsq {

enum class BodyFormat { Json, Line };

// Every "{ns}" in `pattern` replaced by the namespace.
std::string renderTemplate(std::string_view pattern, std::string_view ns);

// `text` as a JSON string, quotes included. Invalid UTF-8 becomes U+FFFD, as Go's encoder does.
void appendJsonString(std::string& out, std::string_view text);

// One point as the Go agent sent it:
//   {"measurement":"cpu.idle","timestamp":1700000000,"tags":{"host":"h1"},"fields":{"value":0.5}}
// Integers are JSON integers; a double always has a '.' or an exponent (3.0, not 3), so that a
// consumer can tell it from an integer; NaN and infinities have no JSON form and are left out.
// Returns false, appending nothing, when no field is left.
bool appendJsonPoint(std::string& out, const Metric& metric);

struct EncodedMessages {
    std::vector<std::string> messages;
    std::vector<std::size_t> points; // points in each message
    std::size_t pointsEncoded = 0;   // sum of `points`
    std::size_t oversized = 0;       // points that alone exceed a message: dropped
    std::size_t unencodable = 0;     // points with no field the format can carry: dropped
};

class NsqBodyEncoder {
public:
    // `databaseTemplate` gives the JSON batch's "database" ("collect.{ns}").
    NsqBodyEncoder(BodyFormat format, std::string databaseTemplate);

    // The points of one namespace, in order, as messages of at most maxMessageBytes each.
    EncodedMessages encode(std::string_view ns, const std::vector<const Metric*>& points,
                           std::size_t maxMessageBytes) const;

    BodyFormat format() const { return format_; }

private:
    BodyFormat format_;
    std::string databaseTemplate_;
    LineProtocolEncoder lineEncoder_;
};

} // namespace agent::nsq
