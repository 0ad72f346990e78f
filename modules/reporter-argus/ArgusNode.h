// The JSON of the Argus master contract (docs/ARCHITECTURE.md §13): the registration and report
// bodies the reporter sends, the node object the master answers with (also what node.json holds),
// and the health objects read from files. Parsing outside input ends in a value or
// ArgusProtocolError.
#pragma once

#include "ArgusSettings.h"

#include <Poco/JSON/Object.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace agent::argus {

class ArgusProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Nesting deeper than this is refused: nobody's health or node object needs it, and it bounds
// the parser's work on hostile input.
inline constexpr std::size_t kMaxJsonDepth = 64;

// A node object as the master gives it.
struct MasterNode {
    std::string id;                       // never empty
    std::optional<NodeIdentity> identity; // meta_data's env, user and instance, when all three are there
    Poco::JSON::Object::Ptr object;       // the whole object, written to node.json
};

// The master's answer to a registration (or node.json's text). Throws ArgusProtocolError when it
// is not a JSON object or has no usable id (a non-empty string, or an integer).
MasterNode parseMasterNode(const std::string& text);

// Text that must hold one JSON object (a health file). Throws ArgusProtocolError otherwise.
Poco::JSON::Object::Ptr parseJsonObject(const std::string& text);

std::string toJson(const Poco::JSON::Object::Ptr& object, unsigned indent = 0);

struct Registration {
    std::string id; // "" = a new node; else the saved id, so the master keeps it
    std::string hostname;
    std::string ip;
    NodeIdentity identity;
    std::string version;
    unsigned cpuCount = 0;
    std::uint64_t memoryBytes = 0;
};

// POST /api/v1/master/nodes: name, type "agent", version, meta_data (and id when known).
std::string registrationBody(const Registration& registration);

using HealthEntries = std::vector<std::pair<std::string, Poco::JSON::Object::Ptr>>;

// PUT /api/v1/master/nodes/{id}/status: timestamp (ISO 8601, UTC) and health, keyed as given.
std::string reportBody(std::chrono::system_clock::time_point now, const HealthEntries& health);

// "2024-05-01T12:00:03Z"
std::string isoTimestamp(std::chrono::system_clock::time_point time);

} // namespace agent::argus
