// libFuzzer target: what reporter-argus reads from outside, the master's answer to a registration
// (also node.json) and a health file. Any input ends in a value or an ArgusProtocolError; an
// object that was accepted, written back, reads back to the same text (what the report sends is
// what was read).
#include "ArgusNode.h"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const agent::argus::MasterNode node = agent::argus::parseMasterNode(text);
        if (node.id.empty()) std::abort();
    } catch (const agent::argus::ArgusProtocolError&) {
        // refused with a reason: expected for most inputs
    }
    try {
        const std::string written = agent::argus::toJson(agent::argus::parseJsonObject(text));
        if (agent::argus::toJson(agent::argus::parseJsonObject(written)) != written) std::abort();
    } catch (const agent::argus::ArgusProtocolError&) {
        // not a JSON object: the health file would be skipped with a warning
    }
    return 0;
}
