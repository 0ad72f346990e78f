// The interval the registry sets for source-netif, as the Go agent read it: an entry
// {"measurement_type": "NET", "interval": "30"} of a namespace of the host times the interface
// figures, as CPU/MEM/DISK/FS entries time source-host's groups (modules/source-host/HostConfig.h).
//
// Pure: reads only what it is given, logs nothing (the problems come back for the caller to log).
#pragma once

#include <agent/Context.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agent::netif {

// The registry entries of one namespace of the host.
using NamespaceEntries = std::pair<std::string, std::vector<agent::Registry::Entry>>;

// The interval the NET entries set, in seconds; none when no namespace has a usable one. When
// namespaces disagree the shortest wins (the rule source-host follows), so no namespace gets its
// figures less often than it asked. An interval that is not a whole number of seconds from 1 to
// `maxSeconds` is ignored and described in `problems`; entries of other types are passed over.
std::optional<std::int64_t> registryNetInterval(const std::vector<NamespaceEntries>& namespaces,
                                                std::int64_t maxSeconds, std::vector<std::string>& problems);

} // namespace agent::netif
