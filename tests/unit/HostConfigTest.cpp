// Specification of the [source-host] section: defaults, per-group intervals, and every bad value
// reported at once with the file, the line and the key.
#include "HostConfig.h"

#include "AgentConfig.h"
#include "TomlConfiguration.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

using namespace agent::host;

namespace {

HostSettings settingsOf(const std::string& section) {
    const agent::AgentConfig config = agent::AgentConfig::fromToml(
        agent::TomlConfiguration::fromString("[source-host]\n" + section, "test.toml"), {"/modules", "/base"});
    agent::ConfigErrors errors;
    config.validateSection("source-host", hostConfigSchema(), errors);
    errors.throwIfAny();
    return readHostSettings(config.section("source-host", hostConfigSchema()));
}

std::vector<std::string> errorsOf(const std::string& section) {
    try {
        settingsOf(section);
    } catch (const agent::ConfigError& error) {
        return error.lines();
    }
    return {};
}

std::int64_t intervalOf(const HostSettings& settings, Group group) {
    for (const GroupSchedule& schedule : settings.schedules) {
        if (schedule.group == group) return schedule.intervalSeconds;
    }
    return -1;
}

} // namespace

TEST(HostConfig, DefaultsCollectEveryGroupEveryTenSecondsFromProcAndSys) {
    const HostSettings settings = settingsOf("");
    ASSERT_EQ(settings.schedules.size(), kAllGroups.size());
    for (Group group : kAllGroups)
        EXPECT_EQ(intervalOf(settings, group), 10) << groupName(group);
    EXPECT_EQ(settings.options.paths.procRoot, "/proc");
    EXPECT_EQ(settings.options.paths.sysRoot, "/sys");
    EXPECT_EQ(settings.options.paths.mountsFile, "/proc/self/mounts");
    EXPECT_FALSE(settings.options.diskPartitions);
    EXPECT_FALSE(settings.options.diskVirtual);
    EXPECT_TRUE(settings.options.memUseAvailable);
    EXPECT_EQ(settings.options.fsTypes.exclude, kDefaultFsTypesExclude);
    EXPECT_EQ(settings.options.mountPoints.exclude, kDefaultMountsExclude);
    EXPECT_TRUE(settings.options.devices.include.empty());
}

TEST(HostConfig, EachGroupMayHaveItsOwnIntervalAndGroupsCanBeLeftOut) {
    const HostSettings settings = settingsOf("interval = 30\ncpu_interval = 1\nfs_interval = 300\n"
                                             "groups = [\"fs\", \"cpu\", \"mem\"]\n");
    ASSERT_EQ(settings.groups(), (std::vector<Group>{Group::Fs, Group::Cpu, Group::Mem}));
    EXPECT_EQ(intervalOf(settings, Group::Cpu), 1);
    EXPECT_EQ(intervalOf(settings, Group::Fs), 300);
    EXPECT_EQ(intervalOf(settings, Group::Mem), 30);
}

TEST(HostConfig, FiltersAndRootsAreRead) {
    const HostSettings settings =
        settingsOf("devices = [\"nvme*\"]\ndevices_exclude = [\"nvme9n1\"]\ndisk_partitions = true\n"
                   "disk_virtual = true\nfstypes = [\"ext4\", \"xfs\"]\nfstypes_exclude = []\n"
                   "mounts_exclude = [\"/mnt/*\"]\nmem_available = false\n"
                   "proc_root = \"/host/proc\"\nsys_root = \"/host/sys\"\n");
    const HostOptions& options = settings.options;
    EXPECT_EQ(options.devices.include, std::vector<std::string>{"nvme*"});
    EXPECT_EQ(options.devices.exclude, std::vector<std::string>{"nvme9n1"});
    EXPECT_TRUE(options.diskPartitions);
    EXPECT_TRUE(options.diskVirtual);
    EXPECT_EQ(options.fsTypes.include, (std::vector<std::string>{"ext4", "xfs"}));
    EXPECT_TRUE(options.fsTypes.exclude.empty());
    EXPECT_EQ(options.mountPoints.exclude, std::vector<std::string>{"/mnt/*"});
    EXPECT_FALSE(options.memUseAvailable);
    EXPECT_EQ(options.paths.procRoot, "/host/proc");
    EXPECT_EQ(options.paths.mountsFile, "/host/proc/self/mounts"); // follows proc_root
    EXPECT_EQ(settingsOf("mounts_file = \"/etc/mtab\"\n").options.paths.mountsFile, "/etc/mtab");
}

TEST(HostConfig, EveryBadValueIsReportedAtOnceWithFileLineAndKey) {
    const std::vector<std::string> errors = errorsOf("interval = 0\n"
                                                     "disk_interval = -5\n"
                                                     "fs_interval = 86401\n"
                                                     "groups = [\"cpu\", \"gpu\", \"cpu\"]\n"
                                                     "devices = [\"\"]\n"
                                                     "proc_root = \"\"\n");
    const std::vector<std::string> expected = {
        "test.toml:2: [source-host] interval: must be between 1 and 86400 (seconds)",
        "test.toml:5: [source-host] groups: \"gpu\" is not a group (cpu, mem, disk, fs, ps, kernel, alive)",
        "test.toml:5: [source-host] groups: \"cpu\" is listed twice",
        "test.toml:3: [source-host] disk_interval: must be between 0 and 86400 (seconds); 0 = `interval`",
        "test.toml:4: [source-host] fs_interval: must be between 0 and 86400 (seconds); 0 = `interval`",
        "test.toml:7: [source-host] proc_root: must name a directory",
        "test.toml:6: [source-host] devices: an empty pattern matches nothing; remove it",
    };
    EXPECT_EQ(errors, expected);
}

TEST(HostConfig, AnEmptyGroupListIsRefused) {
    EXPECT_EQ(errorsOf("groups = []\n"),
              std::vector<std::string>{
                  "test.toml:2: [source-host] groups: an empty list collects nothing; leave the module out instead"});
}

TEST(HostConfig, UnknownKeysAndWrongTypesAreRefusedByTheSchema) {
    const std::vector<std::string> errors = errorsOf("cpu_intervall = 5\ndisk_virtual = \"yes\"\n");
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_NE(errors[0].find("test.toml:2: [source-host] cpu_intervall: unknown key"), std::string::npos) << errors[0];
    EXPECT_NE(errors[1].find("test.toml:3: [source-host] disk_virtual"), std::string::npos) << errors[1];
}

TEST(HostConfig, EveryKeyHasADescription) {
    for (const agent::ConfigKey& key : hostConfigSchema())
        EXPECT_FALSE(key.description.empty()) << key.name;
    EXPECT_EQ(hostConfigSchema().front().name, "interval");
}

TEST(HostConfig, GroupsOnTheSameIntervalShareATaskButFsAlwaysRunsAlone) {
    const std::vector<CollectionTask> byDefault = planTasks(settingsOf("").schedules);
    ASSERT_EQ(byDefault.size(), 2u);
    EXPECT_EQ(byDefault[0].intervalSeconds, 10);
    EXPECT_EQ(byDefault[0].groups,
              (std::vector<Group>{Group::Cpu, Group::Mem, Group::Disk, Group::Ps, Group::Kernel, Group::Alive}));
    EXPECT_EQ(byDefault[1].intervalSeconds, 10);
    EXPECT_EQ(byDefault[1].groups, std::vector<Group>{Group::Fs});

    const std::vector<CollectionTask> tasks =
        planTasks(settingsOf("cpu_interval = 1\nalive_interval = 1\nmem_interval = 60\n").schedules);
    ASSERT_EQ(tasks.size(), 4u);
    EXPECT_EQ(tasks[0].intervalSeconds, 1);
    EXPECT_EQ(tasks[0].groups, (std::vector<Group>{Group::Cpu, Group::Alive}));
    EXPECT_EQ(tasks[1].intervalSeconds, 60);
    EXPECT_EQ(tasks[1].groups, std::vector<Group>{Group::Mem});
    EXPECT_EQ(tasks[2].groups, (std::vector<Group>{Group::Disk, Group::Ps, Group::Kernel}));
    EXPECT_EQ(tasks[3].groups, std::vector<Group>{Group::Fs});
}

namespace {

std::int64_t intervalIn(const std::vector<GroupSchedule>& schedules, Group group) {
    for (const GroupSchedule& schedule : schedules) {
        if (schedule.group == group) return schedule.intervalSeconds;
    }
    return -1;
}

} // namespace

TEST(HostConfig, RegistryIntervalsReplaceTheSectionsPerMeasurementTypeAsTheGoAgentGroupedThem) {
    const HostSettings settings = settingsOf("interval = 10\n");
    const std::vector<GroupSchedule> schedules =
        withRegistryIntervals(settings.schedules, {{"CPU", 30}, {"FS", 300}, {"PLUGIN", 5}, {"NET", 2}});
    EXPECT_EQ(intervalIn(schedules, Group::Cpu), 30);
    EXPECT_EQ(intervalIn(schedules, Group::Ps), 30);
    EXPECT_EQ(intervalIn(schedules, Group::Alive), 30);
    EXPECT_EQ(intervalIn(schedules, Group::Fs), 300);
    EXPECT_EQ(intervalIn(schedules, Group::Kernel), 300);
    EXPECT_EQ(intervalIn(schedules, Group::Mem), 10); // no MEM entry: the section's
    EXPECT_EQ(intervalIn(schedules, Group::Disk), 10);
    EXPECT_EQ(schedules.size(), settings.schedules.size());
    EXPECT_EQ(registryTypesOfHost(), (std::set<std::string>{"CPU", "DISK", "FS", "MEM"}));
}

TEST(HostConfig, RegistryIntervalsNeverAddAGroupThatGroupsLeftOut) {
    const HostSettings settings = settingsOf("groups = [\"mem\", \"cpu\"]\n");
    const std::vector<GroupSchedule> schedules = withRegistryIntervals(settings.schedules, {{"MEM", 20}, {"DISK", 5}});
    ASSERT_EQ(schedules.size(), 2u);
    EXPECT_EQ(intervalIn(schedules, Group::Mem), 20);
    EXPECT_EQ(intervalIn(schedules, Group::Cpu), 10);
    EXPECT_EQ(intervalIn(schedules, Group::Disk), -1); // left out by `groups`: the registry does not add it
}
