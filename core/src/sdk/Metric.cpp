// Metric helpers shared by every module: tag order, single-valued points, the sink rule.
#include <agent/Metric.h>

#include <algorithm>

namespace agent {

void Metric::setTag(std::string key, std::string value) {
    auto it = std::lower_bound(tags.begin(), tags.end(), key,
                               [](const Tag& tag, const std::string& k) { return tag.key < k; });
    if (it != tags.end() && it->key == key) {
        it->value = std::move(value);
        return;
    }
    tags.insert(it, Tag{std::move(key), std::move(value)});
}

const std::string* Metric::findTag(std::string_view key) const {
    for (const Tag& tag : tags) {
        if (tag.key == key) return &tag.value;
    }
    return nullptr;
}

void Metric::addField(std::string key, FieldValue value) {
    fields.push_back(Field{std::move(key), std::move(value)});
}

void appendPerNamespace(Batch& points, const std::vector<std::string>& namespaces, Batch& out) {
    if (namespaces.empty()) {
        for (Metric& metric : points)
            out.push_back(std::move(metric));
        return;
    }
    out.reserve(out.size() + points.size() * namespaces.size());
    for (const std::string& ns : namespaces) {
        for (const Metric& metric : points) {
            out.push_back(metric);
            out.back().ns = ns;
        }
    }
}

Metric makePoint(std::string ns, std::string name, FieldValue value, std::int64_t timestamp) {
    Metric metric;
    // Room for the tags a source adds plus the `host` tag the bus adds, so that adding it does
    // not reallocate every point on the way to the sinks.
    metric.tags.reserve(4);
    metric.ns = std::move(ns);
    metric.name = std::move(name);
    metric.fields.push_back(Field{"value", std::move(value)});
    metric.timestamp = timestamp;
    return metric;
}

void normalizeForSink(Metric& metric, const std::string& hostname, std::int64_t now) {
    const std::string* host = metric.findTag("host");
    if (host == nullptr || host->empty()) metric.setTag("host", hostname);
    if (metric.timestamp < kMinTimestamp || metric.timestamp >= kMaxTimestamp) metric.timestamp = now;
}

bool isValidName(std::string_view name, std::size_t maxLength) {
    if (name.empty() || name.size() > maxLength) return false;
    if (name == "." || name == "..") return false; // names become path components (namespaces)
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
               c == '_' || c == '-';
    });
}

} // namespace agent
