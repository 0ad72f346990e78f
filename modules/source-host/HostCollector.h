// The host's basic figures, in groups (cpu, mem, disk, fs, ps, kernel, alive), each read from
// /proc, /sys and statvfs(2) and turned into the Go agent's metrics. Counter groups keep one
// baseline between reads and publish rates from the difference.
//
// Touches only the paths in HostPaths and the mount points of the mount table (through the
// injected statvfs), reads no clock (the caller passes the time in, so tests control it) and logs
// nothing: what deserves a log line comes back in the CollectReport, already reduced to "once per
// event", never once per round.
#pragma once

#include <agent/Metric.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agent::host {

enum class Group { Cpu, Mem, Disk, Fs, Ps, Kernel, Alive };

inline constexpr std::array<Group, 7> kAllGroups = {Group::Cpu, Group::Mem,    Group::Disk, Group::Fs,
                                                    Group::Ps,  Group::Kernel, Group::Alive};

const char* groupName(Group group);
std::optional<Group> groupByName(std::string_view name);

// When a read happens: `monotonicSeconds` from a clock that never jumps (rates), `timestamp` in
// seconds since the epoch (the points' time).
struct Tick {
    double monotonicSeconds = 0;
    std::int64_t timestamp = 0;

    static Tick now();
};

struct CollectReport {
    std::vector<std::string> warnings; // a file missing or unreadable, malformed content, a counter that went back
    std::vector<std::string> notices;  // a device found or gone, a file readable again
};

struct HostPaths {
    std::string procRoot = "/proc";
    std::string sysRoot = "/sys";
    std::string mountsFile = "/proc/self/mounts";
};

// fnmatch(3) patterns: a name is accepted when it matches one of `include` (or `include` is
// empty) and none of `exclude`.
struct NameFilter {
    std::vector<std::string> include;
    std::vector<std::string> exclude;

    bool accepts(const std::string& name) const;
};

// File systems that hold no disk space of their own: kernel interfaces, memory-backed ones and
// container layers (whose space is the backing file system's, reported under its own mount).
// fuse.* too, as the Go agent did: a FUSE daemon that hangs would hang statvfs with it.
inline const std::vector<std::string> kDefaultFsTypesExclude = {
    "autofs",   "binfmt_misc", "bpf",        "cgroup",     "cgroup2",   "configfs", "debugfs", "devpts", "devtmpfs",
    "efivarfs", "fuse.*",      "fusectl",    "hugetlbfs",  "mqueue",    "nsfs",     "overlay", "proc",   "pstore",
    "ramfs",    "rootfs",      "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs",   "tmpfs",  "tracefs"};
// Mount points below the kernel's own trees.
inline const std::vector<std::string> kDefaultMountsExclude = {"/proc", "/proc/*", "/sys", "/sys/*", "/dev", "/dev/*"};

// What to read and what to skip. The defaults are the config table's defaults.
struct HostOptions {
    HostPaths paths;
    NameFilter devices;          // block devices, by their /proc/diskstats name
    bool diskPartitions = false; // also partitions (sda1, nvme0n1p1)
    bool diskVirtual = false;    // also virtual devices (loop, ram, zram, dm-, md ...)
    NameFilter fsTypes{{}, kDefaultFsTypesExclude};
    NameFilter mountPoints{{}, kDefaultMountsExclude};
    // mem.free = MemAvailable when the kernel has it (3.14+), as the Go agent did; else (or when
    // false) MemFree + Buffers + Cached.
    bool memUseAvailable = true;
};

// What statvfs(2) says about a mount point.
struct FsUsage {
    std::uint64_t blocks = 0;          // f_blocks
    std::uint64_t blocksFree = 0;      // f_bfree, root's reserve included
    std::uint64_t blocksAvailable = 0; // f_bavail, what unprivileged users may still use
    std::uint64_t fragmentSize = 0;    // f_frsize, the unit of the three above
    std::uint64_t files = 0;           // f_files; 0 on file systems without fixed inodes (btrfs, vfat)
    std::uint64_t filesFree = 0;       // f_ffree
    bool readOnly = false;             // ST_RDONLY in f_flag
};

// Returns 0 and fills `usage`, or returns the errno. Injected so tests control every figure.
using StatvfsFunction = std::function<int(const std::string& mountPoint, FsUsage& usage)>;
int systemStatvfs(const std::string& mountPoint, FsUsage& usage);

// One group's reader and its state between rounds.
class GroupCollector {
public:
    virtual ~GroupCollector() = default;
    // Reads once and appends the group's points to `out`: single-valued (field `value`, a
    // double), empty namespace, the tick's timestamp.
    virtual void collect(const Tick& tick, agent::Batch& out, CollectReport& report) = 0;
};

using GroupCollectorPtr = std::unique_ptr<GroupCollector>;

GroupCollectorPtr makeGroupCollector(Group group, const HostOptions& options, StatvfsFunction statvfs);

// The enabled groups, each behind its own mutex: the scheduler may collect different groups at
// the same time on different threads, and one group never twice at once.
class HostCollector {
public:
    HostCollector(const std::vector<Group>& groups, const HostOptions& options,
                  StatvfsFunction statvfs = systemStatvfs);

    // Collects one group; throws std::invalid_argument for a group that is not enabled (a bug).
    CollectReport collect(Group group, const Tick& tick, agent::Batch& out);
    // One full round: every enabled group, in order.
    CollectReport collectAll(const Tick& tick, agent::Batch& out);

    const std::vector<Group>& groups() const { return groups_; }

private:
    struct Slot {
        Group group;
        std::mutex mutex; // guards collector (its baselines)
        GroupCollectorPtr collector;
    };

    std::vector<Group> groups_;
    std::vector<std::unique_ptr<Slot>> slots_;
};

using HostCollectorPtr = std::unique_ptr<HostCollector>;

} // namespace agent::host
