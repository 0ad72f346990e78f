#include "PluginOutput.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cmath>

namespace agent::exec {
namespace {

enum class EntryResult { Kept, Skipped, Dropped };

// The output without the whitespace around it.
std::string_view trimmed(std::string_view text) {
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// One entry; Dropped (with `problem`) when it must be refused, Skipped when its value is null.
EntryResult toMetric(const Poco::Dynamic::Var& entry, const std::string& ns, const std::string& project, Metric& out,
                     std::string& problem) {
    if (entry.type() != typeid(Poco::JSON::Object::Ptr)) {
        problem = "an entry is not an object";
        return EntryResult::Dropped;
    }
    const auto object = entry.extract<Poco::JSON::Object::Ptr>();
    const Poco::Dynamic::Var name = object->get("name");
    if (!name.isString() || !isValidName(name.extract<std::string>(), 200)) {
        problem = "name " + (name.isEmpty() ? std::string("missing") : "\"" + name.convert<std::string>() + "\"") +
                  " does not match [0-9A-Za-z._-]+";
        return EntryResult::Dropped;
    }
    out = Metric();
    out.ns = ns;
    out.name = "PLUGIN." + project + "." + name.extract<std::string>();
    // Poco reads a JSON null as an empty value, as it does a missing key: has() tells them apart.
    const Poco::Dynamic::Var value = object->get("value");
    if (value.isEmpty() && object->has("value")) return EntryResult::Skipped;
    double decimal = 0;
    if (value.isBoolean()) {
        out.addField("value", value.extract<bool>());
    } else if (value.isInteger()) {
        out.addField("value", value.isSigned() ? FieldValue(value.convert<Poco::Int64>())
                                               : FieldValue(static_cast<std::uint64_t>(value.convert<Poco::UInt64>())));
    } else if (value.isNumeric()) {
        const double number = value.convert<double>();
        if (!std::isfinite(number)) {
            problem = out.name + ": value is not a finite number";
            return EntryResult::Dropped;
        }
        out.addField("value", number);
    } else if (value.isString() && parseDecimalNumber(value.extract<std::string>(), decimal)) {
        out.addField("value", decimal);
    } else if (value.isString()) {
        out.addField("value", value.extract<std::string>());
    } else {
        problem = out.name + ": value missing or not a number, bool or string";
        return EntryResult::Dropped;
    }
    const Poco::Dynamic::Var timestamp = object->get("timestamp");
    if (timestamp.isNumeric()) out.timestamp = static_cast<std::int64_t>(timestamp.convert<double>());
    const Poco::Dynamic::Var tags = object->get("tags");
    if (!tags.isEmpty()) {
        if (tags.type() != typeid(Poco::JSON::Object::Ptr)) {
            problem = out.name + ": tags is not an object";
            return EntryResult::Dropped;
        }
        for (const auto& [key, tag] : *tags.extract<Poco::JSON::Object::Ptr>()) {
            if (key.empty() || tag.isArray() || tag.isStruct() || tag.isEmpty()) {
                problem = out.name + ": tag \"" + key + "\" is not a plain value";
                return EntryResult::Dropped;
            }
            out.setTag(key, tag.convert<std::string>());
        }
    }
    return EntryResult::Kept;
}

} // namespace

ParsedOutput parsePluginOutput(std::string_view output, const std::string& ns, const std::string& project) {
    ParsedOutput parsed;
    const std::string_view text = trimmed(output);
    if (text.empty() || text == "null") return parsed; // a good run with nothing to report
    Poco::Dynamic::Var root;
    try {
        Poco::JSON::Parser parser;
        root = parser.parse(std::string(output));
    } catch (const Poco::Exception& e) {
        parsed.valid = false;
        parsed.error = "output is not JSON: " + e.displayText();
        return parsed;
    }
    if (root.type() != typeid(Poco::JSON::Array::Ptr)) {
        parsed.valid = false;
        parsed.error = "output is not a JSON list";
        return parsed;
    }
    const auto list = root.extract<Poco::JSON::Array::Ptr>();
    for (std::size_t i = 0; i < list->size(); ++i) {
        Metric metric;
        std::string problem;
        switch (toMetric(list->get(static_cast<unsigned>(i)), ns, project, metric, problem)) {
        case EntryResult::Kept: parsed.metrics.push_back(std::move(metric)); break;
        case EntryResult::Skipped: ++parsed.skipped; break;
        case EntryResult::Dropped:
            ++parsed.dropped;
            if (parsed.firstProblem.empty()) parsed.firstProblem = problem;
            break;
        }
    }
    return parsed;
}

std::string outputExcerpt(std::string_view output, std::size_t maxBytes) {
    static const char kHex[] = "0123456789abcdef";
    const std::string_view shown = output.substr(0, maxBytes);
    std::string excerpt = "\"";
    for (const char c : shown) {
        const auto byte = static_cast<unsigned char>(c);
        switch (c) {
        case '"': excerpt += "\\\""; break;
        case '\\': excerpt += "\\\\"; break;
        case '\n': excerpt += "\\n"; break;
        case '\r': excerpt += "\\r"; break;
        case '\t': excerpt += "\\t"; break;
        default:
            if (byte < 0x20 || byte >= 0x7f) {
                excerpt += "\\x";
                excerpt += kHex[byte >> 4];
                excerpt += kHex[byte & 0xf];
            } else {
                excerpt += c;
            }
        }
    }
    excerpt += '"';
    if (shown.size() < output.size())
        excerpt += " (first " + std::to_string(shown.size()) + " of " + std::to_string(output.size()) + " bytes)";
    return excerpt;
}

const char* statusTag(RunStatus status) {
    switch (status) {
    case RunStatus::Ok: return "ok";
    case RunStatus::Timeout: return "timeout";
    case RunStatus::BadOutput: return "bad_output";
    case RunStatus::Error:
    case RunStatus::NotRunnable: return "error";
    }
    return "error";
}

Metric resultMetric(const std::string& ns, const std::string& project, RunStatus status, std::int64_t timestamp) {
    Metric metric = makePoint(ns, "PLUGIN." + project, std::int64_t{status == RunStatus::Ok ? 0 : 1}, timestamp);
    metric.setTag("status", statusTag(status));
    return metric;
}

} // namespace agent::exec
