#include "ArgusNode.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Types.h>

#include <ctime>
#include <sstream>

namespace agent::argus {
namespace {

Poco::JSON::Object::Ptr newObject() { return new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER); }

// A non-empty string field of `object`, else "".
std::string stringField(const Poco::JSON::Object::Ptr& object, const std::string& key) {
    if (!object || !object->has(key)) return {};
    const Poco::Dynamic::Var value = object->get(key);
    return value.isString() ? value.extract<std::string>() : std::string();
}

// The node id: a non-empty string, or an integer written in decimal.
std::string nodeId(const Poco::JSON::Object::Ptr& node) {
    if (!node->has("id")) throw ArgusProtocolError("the node has no id");
    const Poco::Dynamic::Var id = node->get("id");
    if (id.isString()) {
        std::string text = id.extract<std::string>();
        if (text.empty()) throw ArgusProtocolError("the node's id is an empty string");
        return text;
    }
    if (id.isInteger()) return id.convert<std::string>();
    throw ArgusProtocolError("the node's id is neither a string nor an integer");
}

// env, user and instance from meta_data (where this reporter sends them), else from the top level.
std::optional<NodeIdentity> nodeIdentity(const Poco::JSON::Object::Ptr& node) {
    for (const Poco::JSON::Object::Ptr& holder : {node->getObject("meta_data"), node}) {
        NodeIdentity identity{stringField(holder, "env"), stringField(holder, "user"), stringField(holder, "instance")};
        if (!identity.env.empty() && !identity.user.empty() && !identity.instance.empty()) return identity;
    }
    return std::nullopt;
}

} // namespace

Poco::JSON::Object::Ptr parseJsonObject(const std::string& text) {
    Poco::Dynamic::Var value;
    try {
        Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(true)); // keep the keys in the order written
        parser.setDepth(kMaxJsonDepth);
        value = parser.parse(text);
    } catch (const Poco::Exception& e) {
        throw ArgusProtocolError("not JSON: " + e.displayText());
    }
    if (value.type() != typeid(Poco::JSON::Object::Ptr)) throw ArgusProtocolError("not a JSON object");
    Poco::JSON::Object::Ptr object = value.extract<Poco::JSON::Object::Ptr>();
    if (!object) throw ArgusProtocolError("not a JSON object");
    return object;
}

MasterNode parseMasterNode(const std::string& text) {
    MasterNode node;
    node.object = parseJsonObject(text);
    node.id = nodeId(node.object);
    node.identity = nodeIdentity(node.object);
    return node;
}

std::string toJson(const Poco::JSON::Object::Ptr& object, unsigned indent) {
    std::ostringstream out;
    object->stringify(out, indent);
    return out.str();
}

std::string registrationBody(const Registration& registration) {
    Poco::JSON::Object::Ptr meta = newObject();
    meta->set("hostname", registration.hostname);
    meta->set("ip", registration.ip);
    meta->set("env", registration.identity.env);
    meta->set("user", registration.identity.user);
    meta->set("instance", registration.identity.instance);
    meta->set("cpu_number", registration.cpuCount);
    meta->set("memory_in_bytes", static_cast<Poco::UInt64>(registration.memoryBytes));

    Poco::JSON::Object::Ptr body = newObject();
    if (!registration.id.empty()) body->set("id", registration.id);
    body->set("name", registration.hostname);
    body->set("type", "agent");
    body->set("version", registration.version);
    body->set("meta_data", meta);
    return toJson(body);
}

std::string reportBody(std::chrono::system_clock::time_point now, const HealthEntries& health) {
    Poco::JSON::Object::Ptr entries = newObject();
    for (const auto& [key, object] : health) entries->set(key, object);
    Poco::JSON::Object::Ptr body = newObject();
    body->set("timestamp", isoTimestamp(now));
    body->set("health", entries);
    return toJson(body);
}

std::string isoTimestamp(std::chrono::system_clock::time_point time) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32]; // "2024-05-01T12:00:03Z" and room for a year past 9999
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

} // namespace agent::argus
