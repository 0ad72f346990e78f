// The health files other components drop in `<root>/<hostname>/health/`: every
// `<prefix>-*.json` holding one JSON object goes into the report under its name without `.json`.
//
// Reads that directory only. Bounded: a file over the per-file cap, or one that would take the
// report over the total cap, is skipped with a warning, as is a file that is not a JSON object.
#pragma once

#include "ArgusNode.h"

#include <cstddef>
#include <string>
#include <vector>

namespace agent::argus {

struct HealthLimits {
    std::size_t maxFileBytes = 64 * 1024;    // a component's health is a few hundred bytes
    std::size_t maxTotalBytes = 1024 * 1024; // keeps a report well under any proxy's body limit
};

struct HealthScan {
    HealthEntries entries;             // sorted by file name
    std::vector<std::string> warnings; // one line per skipped file, naming it and why
};

// `<prefix>-*.json`: not hidden, a non-empty prefix before the first '-', ending in ".json".
bool isHealthFileName(const std::string& name);

// A missing directory is no health at all, not an error.
HealthScan scanHealthDirectory(const std::string& directory, const HealthLimits& limits = {});

} // namespace agent::argus
