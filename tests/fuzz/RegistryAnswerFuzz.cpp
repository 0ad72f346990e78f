// libFuzzer target: a registry answer as the agent reads it from a file:// registry or its cache.
// Any input ends in an answer or a RegistryError; an answer written back reads back equal.
#include "RegistryClient.h"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const agent::RegistryAnswer answer =
            agent::RegistryClient::fromJson(std::string(reinterpret_cast<const char*>(data), size));
        if (!(agent::RegistryClient::fromJson(agent::RegistryClient::toJson(answer)) == answer)) std::abort();
    } catch (const agent::RegistryError&) {
        // refused with a reason: expected for most inputs
    }
    return 0;
}
