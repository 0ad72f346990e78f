// Metric helpers shared by every module: tag order, single-valued points, the sink rule.
#include <agent/Metric.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

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

void tidyTagValues(Metric& metric) {
    constexpr std::string_view whitespace = " \t\n\r\v\f";
    for (Tag& tag : metric.tags) {
        std::string& value = tag.value;
        const std::size_t first = value.find_first_not_of(whitespace);
        if (first == std::string::npos) {
            value.clear();
            continue;
        }
        const std::size_t last = value.find_last_not_of(whitespace);
        if (first > 0 || last + 1 < value.size()) value = value.substr(first, last + 1 - first);
        std::replace(value.begin(), value.end(), ' ', '-');
    }
}

bool parseDecimalNumber(std::string_view text, double& value) {
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    std::size_t i = 0;
    const std::size_t n = text.size();
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    std::size_t digits = 0;
    while (i < n && digit(text[i])) ++i, ++digits;
    if (i < n && text[i] == '.') {
        ++i;
        while (i < n && digit(text[i])) ++i, ++digits;
    }
    if (digits == 0) return false;
    if (i < n && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
        std::size_t exponentDigits = 0;
        while (i < n && digit(text[i])) ++i, ++exponentDigits;
        if (exponentDigits == 0) return false;
    }
    if (i != n) return false;
    // from_chars takes no leading '+'; the grammar above is already checked.
    const char* begin = text.data() + (text[0] == '+' ? 1 : 0);
    double parsed = 0;
    const auto [end, error] = std::from_chars(begin, text.data() + n, parsed);
    if (error != std::errc() || end != text.data() + n || !std::isfinite(parsed)) return false;
    value = parsed;
    return true;
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
