// Encodes metrics as InfluxDB line protocol, escaping exactly as the line-protocol reference says.
#pragma once

#include <agent/Metric.h>

#include <string>

namespace agent {

class LineProtocolEncoder {
public:
    struct Options {
        // When not empty, the metric's namespace is written as a tag of this name (first tag).
        std::string namespaceTag;
    };

    LineProtocolEncoder() = default;
    explicit LineProtocolEncoder(Options options) : options_(std::move(options)) {}

    // Appends one line (with its trailing '\n') per metric. A metric with no encodable field
    // (no fields, or only NaN / infinite doubles) writes nothing and returns false.
    bool append(std::string& out, const Metric& metric) const;
    // Appends the whole batch; returns how many metrics were skipped as unencodable.
    std::size_t append(std::string& out, const Batch& batch) const;

private:
    Options options_;
};

} // namespace agent
