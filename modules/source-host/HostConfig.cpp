// Reading [source-host]: every key is checked and every problem reported at once, each naming
// the file, the line and the key.
#include "HostConfig.h"

#include <algorithm>
#include <set>
#include <string>

namespace agent::host {
namespace {

std::string intervalKey(Group group) {
    return std::string(groupName(group)) + "_interval";
}

agent::ConfigSchema buildSchema() {
    agent::ConfigSchema schema = {
        {"interval", agent::ConfigType::Integer, "10",
         "seconds between collections of every group without its own interval"},
    };
    for (Group group : kAllGroups) {
        schema.push_back(
            {intervalKey(group), agent::ConfigType::Integer, "0",
             std::string("seconds between collections of the ") + groupName(group) + " group; 0 = `interval`"});
    }
    const agent::ConfigSchema rest = {
        {"groups", agent::ConfigType::StringList, R"(["cpu", "mem", "disk", "fs", "ps", "kernel", "alive"])",
         "the groups collected"},
        {"devices", agent::ConfigType::StringList, "[]",
         "block devices watched (glob patterns on the /proc/diskstats name); [] = every one the other keys allow"},
        {"devices_exclude", agent::ConfigType::StringList, "[]", "block devices never watched (glob patterns)"},
        {"disk_partitions", agent::ConfigType::Boolean, "false", "also watch partitions (sda1, nvme0n1p2)"},
        {"disk_virtual", agent::ConfigType::Boolean, "false",
         "also watch virtual block devices (loop, ram, zram, dm-*, md*)"},
        {"fstypes", agent::ConfigType::StringList, "[]", "file system types reported (glob patterns); [] = every type"},
        {"fstypes_exclude", agent::ConfigType::StringList, agent::formatStringList(kDefaultFsTypesExclude),
         "file system types never reported (glob patterns): pseudo and memory file systems"},
        {"mounts", agent::ConfigType::StringList, "[]", "mount points reported (glob patterns); [] = every one"},
        {"mounts_exclude", agent::ConfigType::StringList, agent::formatStringList(kDefaultMountsExclude),
         "mount points never reported (glob patterns)"},
        {"mem_available", agent::ConfigType::Boolean, "true",
         "mem.free is MemAvailable when the kernel has it (false: MemFree + Buffers + Cached)"},
        {"proc_root", agent::ConfigType::String, "/proc", "where procfs is mounted"},
        {"sys_root", agent::ConfigType::String, "/sys", "where sysfs is mounted"},
        {"mounts_file", agent::ConfigType::String, "", "the mount table; \"\" = <proc_root>/self/mounts"},
    };
    schema.insert(schema.end(), rest.begin(), rest.end());
    return schema;
}

// Reads an interval; `zeroAllowed` for the per-group keys, where 0 means "as `interval`".
std::int64_t readInterval(const agent::ModuleConfig& config, const std::string& key, bool zeroAllowed,
                          agent::ConfigErrors& errors) {
    const std::int64_t seconds = config.getInt(key);
    const std::int64_t lowest = zeroAllowed ? 0 : 1;
    if (seconds < lowest || seconds > kMaxIntervalSeconds) {
        errors.add(config, key,
                   "must be between " + std::to_string(lowest) + " and " + std::to_string(kMaxIntervalSeconds) +
                       " (seconds)" + (zeroAllowed ? "; 0 = `interval`" : ""));
        return 0;
    }
    return seconds;
}

std::vector<std::string> readPatterns(const agent::ModuleConfig& config, const std::string& key,
                                      agent::ConfigErrors& errors) {
    std::vector<std::string> patterns = config.getStringList(key);
    for (const std::string& pattern : patterns) {
        if (pattern.empty()) {
            errors.add(config, key, "an empty pattern matches nothing; remove it");
            break;
        }
    }
    return patterns;
}

std::vector<GroupSchedule> readSchedules(const agent::ModuleConfig& config, agent::ConfigErrors& errors) {
    const std::int64_t interval = readInterval(config, "interval", false, errors);
    std::vector<GroupSchedule> schedules;
    std::set<std::string> seen;
    const std::vector<std::string> names = config.getStringList("groups");
    if (names.empty()) errors.add(config, "groups", "an empty list collects nothing; leave the module out instead");
    for (const std::string& name : names) {
        const std::optional<Group> group = groupByName(name);
        if (!group) {
            errors.add(config, "groups", "\"" + name + "\" is not a group (cpu, mem, disk, fs, ps, kernel, alive)");
        } else if (!seen.insert(name).second) {
            errors.add(config, "groups", "\"" + name + "\" is listed twice");
        } else {
            schedules.push_back({*group, 0});
        }
    }
    for (Group group : kAllGroups) {
        const std::int64_t own = readInterval(config, intervalKey(group), true, errors);
        for (GroupSchedule& schedule : schedules) {
            if (schedule.group == group) schedule.intervalSeconds = own == 0 ? interval : own;
        }
    }
    return schedules;
}

HostPaths readPaths(const agent::ModuleConfig& config, agent::ConfigErrors& errors) {
    HostPaths paths;
    for (const char* key : {"proc_root", "sys_root"}) {
        if (config.getString(key).empty()) errors.add(config, key, "must name a directory");
    }
    paths.procRoot = config.getPath("proc_root");
    paths.sysRoot = config.getPath("sys_root");
    paths.mountsFile =
        config.getString("mounts_file").empty() ? paths.procRoot + "/self/mounts" : config.getPath("mounts_file");
    return paths;
}

} // namespace

std::vector<Group> HostSettings::groups() const {
    std::vector<Group> groups;
    for (const GroupSchedule& schedule : schedules)
        groups.push_back(schedule.group);
    return groups;
}

std::vector<CollectionTask> planTasks(const std::vector<GroupSchedule>& schedules) {
    std::vector<CollectionTask> tasks;
    for (const GroupSchedule& schedule : schedules) {
        CollectionTask* shared = nullptr;
        for (CollectionTask& task : tasks) {
            const bool alone = schedule.group == Group::Fs || task.groups.front() == Group::Fs;
            if (!alone && task.intervalSeconds == schedule.intervalSeconds) shared = &task;
        }
        if (shared != nullptr) {
            shared->groups.push_back(schedule.group);
        } else {
            tasks.push_back({schedule.intervalSeconds, {schedule.group}});
        }
    }
    return tasks;
}

namespace {

// The registry's measurement types and the groups each one times.
const std::map<std::string, std::vector<Group>>& registryTypes() {
    static const std::map<std::string, std::vector<Group>> types = {
        {"CPU", {Group::Cpu, Group::Ps, Group::Alive}},
        {"MEM", {Group::Mem}},
        {"DISK", {Group::Disk}},
        {"FS", {Group::Fs, Group::Kernel}},
    };
    return types;
}

} // namespace

const std::set<std::string>& registryTypesOfHost() {
    static const std::set<std::string> names = [] {
        std::set<std::string> keys;
        for (const auto& [type, groups] : registryTypes()) keys.insert(type);
        return keys;
    }();
    return names;
}

std::vector<GroupSchedule> withRegistryIntervals(const std::vector<GroupSchedule>& configured,
                                                 const std::map<std::string, std::int64_t>& byType) {
    std::vector<GroupSchedule> schedules = configured;
    for (const auto& [typeName, seconds] : byType) {
        const auto type = registryTypes().find(typeName);
        if (type == registryTypes().end()) continue;
        for (GroupSchedule& schedule : schedules) {
            if (std::find(type->second.begin(), type->second.end(), schedule.group) != type->second.end())
                schedule.intervalSeconds = seconds;
        }
    }
    return schedules;
}

const agent::ConfigSchema& hostConfigSchema() {
    static const agent::ConfigSchema schema = buildSchema();
    return schema;
}

HostSettings readHostSettings(const agent::ModuleConfig& config) {
    agent::ConfigErrors errors;
    HostSettings settings;
    settings.schedules = readSchedules(config, errors);
    HostOptions& options = settings.options;
    options.paths = readPaths(config, errors);
    options.devices = {readPatterns(config, "devices", errors), readPatterns(config, "devices_exclude", errors)};
    options.diskPartitions = config.getBool("disk_partitions");
    options.diskVirtual = config.getBool("disk_virtual");
    options.fsTypes = {readPatterns(config, "fstypes", errors), readPatterns(config, "fstypes_exclude", errors)};
    options.mountPoints = {readPatterns(config, "mounts", errors), readPatterns(config, "mounts_exclude", errors)};
    options.memUseAvailable = config.getBool("mem_available");
    errors.throwIfAny();
    return settings;
}

} // namespace agent::host
