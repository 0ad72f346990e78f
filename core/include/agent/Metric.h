// The typed metric that every module produces or consumes, and the batch it travels in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace agent {

using FieldValue = std::variant<std::int64_t, std::uint64_t, double, bool, std::string>;

struct Tag {
    std::string key;
    std::string value;
};

struct Field {
    std::string key;
    FieldValue value;
};

// One point: a measurement in a namespace, with tags, fields and a timestamp in seconds.
// Tags are kept sorted by key (setTag does it), as InfluxDB prefers them.
struct Metric {
    std::string ns;
    std::string name;
    std::vector<Tag> tags;
    std::vector<Field> fields;
    std::int64_t timestamp = 0;

    // Inserts or replaces a tag, keeping the tag list sorted by key.
    void setTag(std::string key, std::string value);
    const std::string* findTag(std::string_view key) const;
    void addField(std::string key, FieldValue value);
};

using Batch = std::vector<Metric>;

// A single-valued point, the shape the Go agent and its plugins use: field "value".
Metric makePoint(std::string ns, std::string name, FieldValue value, std::int64_t timestamp);

// Host figures go once to each namespace of the host: moves `points` into `out`, one copy per
// namespace with `ns` set; a standalone host has no namespace, and its points go out once as
// they are.
void appendPerNamespace(Batch& points, const std::vector<std::string>& namespaces, Batch& out);

// Timestamps are seconds; anything outside [kMinTimestamp, kMaxTimestamp) is not a valid
// timestamp in seconds (0, milliseconds, nanoseconds) and becomes "now".
inline constexpr std::int64_t kMinTimestamp = 1'000'000'000;
inline constexpr std::int64_t kMaxTimestamp = 10'000'000'000;

// Applies the rule every metric leaving for a sink obeys: a non-empty `host` tag (the agent's
// hostname unless the metric has one) and a timestamp in seconds.
void normalizeForSink(Metric& metric, const std::string& hostname, std::int64_t now);

// The tag rule of the Go agent, which dashboards and alerts in the field rely on: each tag value
// is trimmed of ASCII whitespace and its inner spaces become '-' (" web server 1 " is
// "web-server-1"). Applied by the bus to every published point unless [agent] tidy_tags = false.
void tidyTagValues(Metric& metric);

// A string that is a finite decimal number, as the loda pipeline stored it: an optional sign,
// digits with an optional fraction (or a fraction alone), an optional exponent; nothing else, no
// whitespace, no "inf", "nan" or hex. True with `value` set when `text` is one.
bool parseDecimalNumber(std::string_view text, double& value);

// Names of metrics, namespaces and plugin outputs: [0-9A-Za-z._-]+, at most maxLength chars,
// and not "." or ".." (a namespace becomes a directory name).
bool isValidName(std::string_view name, std::size_t maxLength = 256);

} // namespace agent
