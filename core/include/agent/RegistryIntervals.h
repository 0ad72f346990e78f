// The intervals the registry sets for the host's own collectors, as the Go agent read them: an
// entry {"measurement_type": "CPU", "interval": "30"} in a namespace of the host times that kind
// of figures (source-host's CPU, MEM, DISK and FS; source-netif's NET).
//
// Pure: reads only what it is given and logs nothing (the problems come back for the caller).
#pragma once

#include <agent/Context.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace agent {

// The registry entries of one namespace of the host.
using NamespaceEntries = std::pair<std::string, std::vector<Registry::Entry>>;

// The entries of each of `namespaces`, as registryIntervals() takes them.
std::vector<NamespaceEntries> namespaceEntries(Registry& registry, const std::vector<std::string>& namespaces);

// The interval each of `types` is given, in seconds; a type without a usable entry is absent.
// When namespaces disagree the shortest wins, so no namespace gets its figures less often than it
// asked. An interval that is not a whole number of seconds from 1 to `maxSeconds` (the registry
// sends "30", a string) is ignored and described in `problems`; entries of other types are passed
// over.
std::map<std::string, std::int64_t> registryIntervals(const std::vector<NamespaceEntries>& namespaces,
                                                      const std::set<std::string>& types, std::int64_t maxSeconds,
                                                      std::vector<std::string>& problems);

} // namespace agent
