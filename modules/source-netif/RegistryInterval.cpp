#include "RegistryInterval.h"

#include <algorithm>
#include <charconv>

namespace agent::netif {
namespace {

// The registry sends intervals as strings ("30"); only a plain whole number is taken.
std::optional<std::int64_t> parseSeconds(const std::string& text, std::int64_t maxSeconds) {
    std::int64_t seconds = 0;
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, seconds);
    if (error != std::errc() || stop != end || seconds < 1 || seconds > maxSeconds) return std::nullopt;
    return seconds;
}

} // namespace

std::optional<std::int64_t> registryNetInterval(const std::vector<NamespaceEntries>& namespaces,
                                                std::int64_t maxSeconds, std::vector<std::string>& problems) {
    std::optional<std::int64_t> shortest;
    for (const auto& [ns, entries] : namespaces) {
        for (const agent::Registry::Entry& entry : entries) {
            const auto type = entry.find("measurement_type");
            const auto interval = entry.find("interval");
            if (type == entry.end() || type->second != "NET" || interval == entry.end()) continue;
            const std::optional<std::int64_t> seconds = parseSeconds(interval->second, maxSeconds);
            if (!seconds) {
                problems.push_back("registry entry NET of namespace " + ns + ": interval \"" + interval->second +
                                   "\" is not 1 to " + std::to_string(maxSeconds) + " seconds; ignored");
                continue;
            }
            shortest = shortest ? std::min(*shortest, *seconds) : *seconds;
        }
    }
    return shortest;
}

} // namespace agent::netif
