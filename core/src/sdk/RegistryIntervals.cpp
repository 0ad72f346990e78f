#include <agent/RegistryIntervals.h>

#include <algorithm>
#include <charconv>
#include <optional>

namespace agent {
namespace {

// Only a plain whole number is taken: no sign, no spaces, no unit.
std::optional<std::int64_t> parseSeconds(const std::string& text, std::int64_t maxSeconds) {
    std::int64_t seconds = 0;
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, seconds);
    if (error != std::errc() || stop != end || seconds < 1 || seconds > maxSeconds) return std::nullopt;
    return seconds;
}

} // namespace

std::vector<NamespaceEntries> namespaceEntries(Registry& registry, const std::vector<std::string>& namespaces) {
    std::vector<NamespaceEntries> entries;
    entries.reserve(namespaces.size());
    for (const std::string& ns : namespaces) entries.emplace_back(ns, registry.entries(ns));
    return entries;
}

std::map<std::string, std::int64_t> registryIntervals(const std::vector<NamespaceEntries>& namespaces,
                                                      const std::set<std::string>& types, std::int64_t maxSeconds,
                                                      std::vector<std::string>& problems) {
    std::map<std::string, std::int64_t> shortest;
    for (const auto& [ns, entries] : namespaces) {
        for (const Registry::Entry& entry : entries) {
            const auto type = entry.find("measurement_type");
            const auto interval = entry.find("interval");
            if (type == entry.end() || types.count(type->second) == 0 || interval == entry.end()) continue;
            const std::optional<std::int64_t> seconds = parseSeconds(interval->second, maxSeconds);
            if (!seconds) {
                problems.push_back("registry entry " + type->second + " of namespace " + ns + ": interval \"" +
                                   interval->second + "\" is not 1 to " + std::to_string(maxSeconds) +
                                   " seconds; ignored");
                continue;
            }
            const auto [it, inserted] = shortest.emplace(type->second, *seconds);
            if (!inserted) it->second = std::min(it->second, *seconds);
        }
    }
    return shortest;
}

} // namespace agent
