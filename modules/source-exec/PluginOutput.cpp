#include "PluginOutput.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cmath>

namespace agent::exec {
namespace {

// One entry; false (with `problem`) when it must be dropped.
bool toMetric(const Poco::Dynamic::Var& entry, const std::string& ns, const std::string& project, Metric& out,
              std::string& problem) {
    if (entry.type() != typeid(Poco::JSON::Object::Ptr)) {
        problem = "an entry is not an object";
        return false;
    }
    const auto object = entry.extract<Poco::JSON::Object::Ptr>();
    const Poco::Dynamic::Var name = object->get("name");
    if (!name.isString() || !isValidName(name.extract<std::string>(), 200)) {
        problem = "name " + (name.isEmpty() ? std::string("missing") : "\"" + name.convert<std::string>() + "\"") +
                  " does not match [0-9A-Za-z._-]+";
        return false;
    }
    out = Metric();
    out.ns = ns;
    out.name = "PLUGIN." + project + "." + name.extract<std::string>();
    const Poco::Dynamic::Var value = object->get("value");
    if (value.isBoolean()) {
        out.addField("value", value.extract<bool>());
    } else if (value.isInteger()) {
        out.addField("value", value.isSigned() ? FieldValue(value.convert<Poco::Int64>())
                                               : FieldValue(static_cast<std::uint64_t>(value.convert<Poco::UInt64>())));
    } else if (value.isNumeric()) {
        const double number = value.convert<double>();
        if (!std::isfinite(number)) {
            problem = out.name + ": value is not a finite number";
            return false;
        }
        out.addField("value", number);
    } else if (value.isString()) {
        out.addField("value", value.extract<std::string>());
    } else {
        problem = out.name + ": value missing or not a number, bool or string";
        return false;
    }
    const Poco::Dynamic::Var timestamp = object->get("timestamp");
    if (timestamp.isNumeric()) out.timestamp = static_cast<std::int64_t>(timestamp.convert<double>());
    const Poco::Dynamic::Var tags = object->get("tags");
    if (!tags.isEmpty()) {
        if (tags.type() != typeid(Poco::JSON::Object::Ptr)) {
            problem = out.name + ": tags is not an object";
            return false;
        }
        for (const auto& [key, tag] : *tags.extract<Poco::JSON::Object::Ptr>()) {
            if (key.empty() || tag.isArray() || tag.isStruct() || tag.isEmpty()) {
                problem = out.name + ": tag \"" + key + "\" is not a plain value";
                return false;
            }
            out.setTag(key, tag.convert<std::string>());
        }
    }
    return true;
}

} // namespace

ParsedOutput parsePluginOutput(std::string_view output, const std::string& ns, const std::string& project) {
    ParsedOutput parsed;
    if (output.find_first_not_of(" \t\r\n") == std::string_view::npos) return parsed;
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
        if (toMetric(list->get(static_cast<unsigned>(i)), ns, project, metric, problem)) {
            parsed.metrics.push_back(std::move(metric));
        } else {
            ++parsed.dropped;
            if (parsed.firstProblem.empty()) parsed.firstProblem = problem;
        }
    }
    return parsed;
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
