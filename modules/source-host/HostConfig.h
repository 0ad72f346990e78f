// The [source-host] section: its keys declared once (type, default, description: the README's
// table follows it), and the reading and checking of a section into what the collector needs.
#pragma once

#include "HostCollector.h"

#include <agent/ModuleConfig.h>

#include <cstdint>
#include <map>
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

// Intervals the registry sets per measurement type, as the Go agent read them: an entry
// {"measurement_type": "CPU", "interval": "30"} of a namespace of the host. CPU covers cpu, ps
// and alive (the Go agent collected the three together), MEM mem, DISK disk, FS fs and kernel.
// Returns the configured schedules with those groups' intervals replaced; when namespaces
// disagree the shortest interval wins. A type the module does not know (NET, PORT, PLUGIN ...)
// is not its business and is passed over; an interval that is not 1 to 86400 is ignored and
// described in `problems`.
struct TypeInterval {
    std::string type;     // measurement_type
    std::string interval; // as the registry sends it: a string
    std::string ns;       // where it came from, for the messages
};
std::vector<GroupSchedule> withRegistryIntervals(const std::vector<GroupSchedule>& configured,
                                                 const std::vector<TypeInterval>& fromRegistry,
                                                 std::vector<std::string>& problems);

const agent::ConfigSchema& hostConfigSchema();

// Reads and checks the section; throws agent::ConfigError with one "FILE:LINE: [section] key:
// reason" line per bad key, all of them at once.
HostSettings readHostSettings(const agent::ModuleConfig& config);

} // namespace agent::host
