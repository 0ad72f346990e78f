// The [source-host] section: its keys declared once (type, default, description: the README's
// table follows it), and the reading and checking of a section into what the collector needs.
#pragma once

#include "HostCollector.h"

#include <agent/ModuleConfig.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace agent::host {

struct GroupSchedule {
    Group group;
    std::int64_t intervalSeconds;
};

struct HostSettings {
    std::vector<GroupSchedule> schedules; // the enabled groups, in the order of `groups`
    HostOptions options;

    std::vector<Group> groups() const;
};

// Groups collected together: one scheduler task, one published batch per round.
struct CollectionTask {
    std::int64_t intervalSeconds;
    std::vector<Group> groups;
};

// Groups on the same interval share a task, which saves a publish (a spool record, a sink write)
// per group and round. fs always runs alone: statvfs on a hung network mount blocks, and then
// only fs waits.
std::vector<CollectionTask> planTasks(const std::vector<GroupSchedule>& schedules);

// The longest interval a group may have, from the section or the registry: a day (a longer one is
// almost certainly a typo, milliseconds for seconds).
constexpr std::int64_t kMaxIntervalSeconds = 86'400;

// The registry's measurement types that time source-host's groups, as the Go agent read them
// (agent/RegistryIntervals.h): CPU covers cpu, ps and alive (the Go agent collected the three
// together), MEM mem, DISK disk, FS fs and kernel.
const std::set<std::string>& registryTypesOfHost();

// The configured schedules with the groups of each type in `byType` (seconds, from
// agent::registryIntervals()) given that interval. A group that `groups` left out stays out, and
// a type the module does not know (NET, PORT, PLUGIN ...) is passed over.
std::vector<GroupSchedule> withRegistryIntervals(const std::vector<GroupSchedule>& configured,
                                                 const std::map<std::string, std::int64_t>& byType);

const agent::ConfigSchema& hostConfigSchema();

// Reads and checks the section; throws agent::ConfigError with one "FILE:LINE: [section] key:
// reason" line per bad key, all of them at once.
HostSettings readHostSettings(const agent::ModuleConfig& config);

} // namespace agent::host
