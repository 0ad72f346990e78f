// libFuzzer target: the config file parser and validation (TOML -> settings). Any input must end
// in settings or in a ConfigFileError / ConfigError; anything else (a crash, a sanitizer report,
// another exception) is a bug.
#include "AgentConfig.h"
#include "TomlConfiguration.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const agent::AgentConfig config =
            agent::AgentConfig::fromToml(agent::TomlConfiguration::fromString(text, "fuzz.toml"), {"/modules", "/base"});
        (void)config.unclaimedSections(config.settings().modules);
    } catch (const agent::ConfigFileError&) {
        // rejected with a message: the expected outcome for most inputs
    } catch (const agent::ConfigError&) {
        // likewise
    }
    return 0;
}
