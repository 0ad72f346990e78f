// The rules of source-host: which file each group reads, how counters become rates and
// percentages, and what is skipped. Shared rules:
// - a rate needs two reads: the first read of a counter is only a baseline;
// - a counter that goes back (a reset, a 32-bit wrap, a re-created device) publishes nothing that
//   round for what depends on it, and its new value becomes the baseline: no value is ever
//   negative, and no percentage is ever above 100;
// - a file that cannot be read, or holds junk, is said once (and once again when it is back), not
//   every round.
#include "HostCollector.h"
#include "HostParsers.h"

#include <algorithm>
#include <agent/KernelFile.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <map>
#include <set>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <system_error>
#include <unistd.h>

namespace agent::host {

Tick Tick::now() {
    Tick tick;
    tick.monotonicSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    tick.timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return tick;
}
namespace {

constexpr double kPercent = 100.0;
constexpr double kMillisecondsPerSecond = 1000.0;
// Enough of /proc/<pid>/stat for the state: pid (at most 7 digits), a 15-byte name in
// parentheses, and the state letter.
constexpr std::size_t kPidStatPrefix = 128;

std::string errnoText(int error) {
    return std::system_category().message(error);
}

bool pathExists(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0;
}

// Says each problem once: when it starts or changes, and that it ended; never once per round.
class ProblemTracker {
public:
    void problem(const std::string& key, const std::string& text, CollectReport& report) {
        auto [it, inserted] = active_.try_emplace(key, text);
        if (!inserted && it->second == text) return;
        it->second = text;
        report.warnings.push_back(text);
    }
    void fine(const std::string& key, const std::string& recovered, CollectReport& report) {
        if (active_.erase(key) > 0) report.notices.push_back(recovered);
    }
    // A warning given the first time `key` is seen, never again.
    void once(const std::string& key, const std::string& text, CollectReport& report) {
        if (warnedOnce_.insert(key).second) report.warnings.push_back(text);
    }

private:
    std::map<std::string, std::string> active_; // key -> the text last said
    std::set<std::string> warnedOnce_;
};

// Reads a kernel file; false (said once) when it cannot be read, e.g. missing on this kernel.
bool readKernelFile(const std::string& path, std::string& content, ProblemTracker& problems, CollectReport& report) {
    const int error = readWholeFile(path, content);
    if (error != 0) {
        problems.problem(path, "cannot read " + path + ": " + errnoText(error) + "; skipped until it can be read",
                         report);
        return false;
    }
    problems.fine(path, "reading " + path + " again", report);
    return true;
}

void reportMalformed(const std::string& path, const MalformedLines& malformed, ProblemTracker& problems,
                     CollectReport& report) {
    if (malformed.count == 0) return;
    problems.once(path + "#malformed",
                  path + ": skipped " + std::to_string(malformed.count) + " malformed line(s), the first: '" +
                      malformed.first + "' (further ones are skipped silently)",
                  report);
}

// The increase of a counter; nullopt when it went back.
std::optional<std::uint64_t> increase(std::uint64_t before, std::uint64_t now) {
    if (now < before) return std::nullopt;
    return now - before;
}

// part / whole in percent; nullopt when whole is 0 or part exceeds it (impossible figures).
std::optional<double> percentOf(double part, double whole) {
    if (!(whole > 0) || part > whole || part < 0) return std::nullopt;
    return part / whole * kPercent;
}

agent::Metric point(const char* name, double value, const Tick& tick) {
    return agent::makePoint("", name, value, tick.timestamp);
}

void addPoint(agent::Batch& out, const char* name, double value, const Tick& tick) {
    out.push_back(point(name, value, tick));
}

void addTaggedPoint(agent::Batch& out, const char* name, double value, const Tick& tick, const char* tagKey,
                    const std::string& tagValue) {
    agent::Metric metric = point(name, value, tick);
    metric.setTag(tagKey, tagValue);
    out.push_back(std::move(metric));
}

// ---- cpu: /proc/stat and /proc/loadavg -------------------------------------------------------

struct CpuField {
    const char* metric;
    std::uint64_t CpuTimes::*counter;
};

constexpr CpuField kCpuIdle = {"cpu.idle", &CpuTimes::idle};

// The eight states that together make up all CPU time. guest and guest_nice are not among them:
// the kernel already counts guest time in user (and guest_nice in nice).
constexpr std::array<CpuField, 8> kCpuStates = {{
    kCpuIdle,
    {"cpu.user", &CpuTimes::user},
    {"cpu.nice", &CpuTimes::nice},
    {"cpu.system", &CpuTimes::system},
    {"cpu.iowait", &CpuTimes::iowait},
    {"cpu.irq", &CpuTimes::irq},
    {"cpu.softirq", &CpuTimes::softirq},
    {"cpu.steal", &CpuTimes::steal},
}};
constexpr CpuField kCpuGuest = {"cpu.guest", &CpuTimes::guest};

// The CPU time that passed between two reads: the sum of the states that went forward. A state
// that went back (iowait does on some tickless kernels) adds nothing, so the shares published
// still add up to at most 100.
std::uint64_t elapsedTicks(const CpuTimes& before, const CpuTimes& now) {
    std::uint64_t total = 0;
    for (const CpuField& state : kCpuStates)
        total += increase(before.*state.counter, now.*state.counter).value_or(0);
    return total;
}

std::optional<double> cpuShare(const CpuField& field, const CpuTimes& before, const CpuTimes& now,
                               std::uint64_t elapsed) {
    const std::optional<std::uint64_t> delta = increase(before.*field.counter, now.*field.counter);
    if (!delta) return std::nullopt;
    return percentOf(static_cast<double>(*delta), static_cast<double>(elapsed));
}

class CpuCollector : public GroupCollector {
public:
    explicit CpuCollector(const HostPaths& paths)
        : statPath_(paths.procRoot + "/stat"), loadavgPath_(paths.procRoot + "/loadavg") {}

    void collect(const Tick& tick, agent::Batch& out, CollectReport& report) override {
        collectLoad(tick, out, report);
        if (!readKernelFile(statPath_, content_, problems_, report)) return;
        ProcStat stat = parseProcStat(content_);
        reportMalformed(statPath_, stat.malformed, problems_, report);
        if (!stat.all) problems_.once(statPath_ + "#cpu", statPath_ + " has no \"cpu\" line; no CPU figures", report);

        if (stat.all && previous_) publishShares(*previous_, *stat.all, tick, out, report);
        publishCoreIdle(stat.cores, tick, out);
        publishSwitches(stat.contextSwitches, tick, out, report);
        previous_ = stat.all;
        previousSeconds_ = tick.monotonicSeconds;
    }

private:
    void collectLoad(const Tick& tick, agent::Batch& out, CollectReport& report) {
        if (!readKernelFile(loadavgPath_, content_, problems_, report)) return;
        const std::optional<LoadAverage> load = parseLoadAvg(content_);
        if (!load) {
            problems_.problem(loadavgPath_ + "#content", loadavgPath_ + " does not start with three load averages",
                              report);
            return;
        }
        problems_.fine(loadavgPath_ + "#content", loadavgPath_ + " holds load averages again", report);
        addPoint(out, "cpu.loadavg.1", load->one, tick);
        addPoint(out, "cpu.loadavg.5", load->five, tick);
        addPoint(out, "cpu.loadavg.15", load->fifteen, tick);
    }

    void publishShares(const CpuTimes& before, const CpuTimes& now, const Tick& tick, agent::Batch& out,
                       CollectReport& report) {
        const std::uint64_t elapsed = elapsedTicks(before, now);
        if (elapsed == 0) return; // no tick passed: nothing to divide
        for (const CpuField& state : kCpuStates) {
            if (const std::optional<double> share = cpuShare(state, before, now, elapsed)) {
                addPoint(out, state.metric, *share, tick);
            } else {
                // iowait does this on some tickless kernels, now and then: said once.
                problems_.once(std::string(state.metric) + "#back",
                               std::string(state.metric) + ": its counter in " + statPath_ +
                                   " went back; such rounds publish no " + state.metric + " (said once)",
                               report);
            }
        }
        if (const std::optional<double> guest = cpuShare(kCpuGuest, before, now, elapsed))
            addPoint(out, kCpuGuest.metric, *guest, tick);
    }

    // cpu.idle.core per core; a core seen for the first time (or back from offline) is a baseline.
    void publishCoreIdle(const std::vector<CoreTimes>& cores, const Tick& tick, agent::Batch& out) {
        std::map<unsigned, CpuTimes> next;
        for (const CoreTimes& core : cores) {
            next.emplace(core.core, core.times);
            const auto before = previousCores_.find(core.core);
            if (before == previousCores_.end()) continue;
            const std::uint64_t elapsed = elapsedTicks(before->second, core.times);
            if (elapsed == 0) continue;
            if (const std::optional<double> idle = cpuShare(kCpuIdle, before->second, core.times, elapsed))
                addTaggedPoint(out, "cpu.idle.core", *idle, tick, "core", std::to_string(core.core));
        }
        previousCores_ = std::move(next);
    }

    void publishSwitches(std::optional<std::uint64_t> switches, const Tick& tick, agent::Batch& out,
                         CollectReport& report) {
        const double seconds = tick.monotonicSeconds - previousSeconds_;
        if (switches && previousSwitches_ && seconds > 0) {
            if (const std::optional<std::uint64_t> delta = increase(*previousSwitches_, *switches)) {
                addPoint(out, "cpu.switches", static_cast<double>(*delta) / seconds, tick);
            } else {
                report.warnings.push_back("cpu.switches: ctxt in " + statPath_ +
                                          " went back; not published this round");
            }
        }
        previousSwitches_ = switches;
    }

    const std::string statPath_;
    const std::string loadavgPath_;
    std::string content_;
    ProblemTracker problems_;
    std::optional<CpuTimes> previous_;
    std::map<unsigned, CpuTimes> previousCores_;
    std::optional<std::uint64_t> previousSwitches_;
    double previousSeconds_ = 0;
};

// ---- mem: /proc/meminfo ----------------------------------------------------------------------

class MemCollector : public GroupCollector {
public:
    MemCollector(const HostPaths& paths, bool useAvailable)
        : path_(paths.procRoot + "/meminfo"), useAvailable_(useAvailable) {}

    void collect(const Tick& tick, agent::Batch& out, CollectReport& report) override {
        if (!readKernelFile(path_, content_, problems_, report)) return;
        const MemInfo info = parseMemInfo(content_);
        reportMalformed(path_, info.malformed, problems_, report);
        if (!info.total || !info.free || *info.total == 0) {
            problems_.problem(path_ + "#content", path_ + " has no usable MemTotal and MemFree; no memory figures",
                              report);
            return;
        }
        problems_.fine(path_ + "#content", path_ + " has MemTotal and MemFree again", report);

        const std::uint64_t total = *info.total;
        const std::uint64_t buffers = info.buffers.value_or(0);
        const std::uint64_t cached = info.cached.value_or(0);
        const std::uint64_t free = std::min(total, freeBytes(info, buffers, cached));
        const std::uint64_t used = total - free;
        addPoint(out, "mem.total", static_cast<double>(total), tick);
        addPoint(out, "mem.used", static_cast<double>(used), tick);
        addPoint(out, "mem.free", static_cast<double>(free), tick);
        addPoint(out, "mem.buffers", static_cast<double>(buffers), tick);
        addPoint(out, "mem.cached", static_cast<double>(cached), tick);
        addPoint(out, "mem.used.percent", static_cast<double>(used) / static_cast<double>(total) * kPercent, tick);
        publishSwap(info, tick, out);
    }

private:
    std::uint64_t freeBytes(const MemInfo& info, std::uint64_t buffers, std::uint64_t cached) const {
        if (useAvailable_ && info.available) return *info.available;
        const std::uint64_t free = *info.free;
        // Saturating sum: junk must not wrap around to a small number.
        const std::uint64_t sum = free + buffers + cached;
        return sum < free ? UINT64_MAX : sum;
    }

    // A host without swap shows 0 %, as the Go agent did.
    void publishSwap(const MemInfo& info, const Tick& tick, agent::Batch& out) const {
        if (!info.swapTotal || !info.swapFree) return;
        const std::uint64_t total = *info.swapTotal;
        const std::uint64_t used = total - std::min(total, *info.swapFree);
        const double percent = total == 0 ? 0.0 : static_cast<double>(used) / static_cast<double>(total) * kPercent;
        addPoint(out, "mem.swap.used.percent", percent, tick);
    }

    const std::string path_;
    const bool useAvailable_;
    std::string content_;
    ProblemTracker problems_;
};

// ---- disk: /proc/diskstats and /sys/class/block ----------------------------------------------

struct DiskRate {
    const char* metric;
    std::uint64_t DiskCounters::*counter;
};

// Published per second. The msec_* ones are milliseconds spent per second of wall time.
constexpr std::array<DiskRate, 10> kDiskRates = {{
    {"disk.io.read_requests", &DiskCounters::readRequests},
    {"disk.io.read_merged", &DiskCounters::readMerged},
    {"disk.io.read_sectors", &DiskCounters::readSectors},
    {"disk.io.msec_read", &DiskCounters::msecRead},
    {"disk.io.write_requests", &DiskCounters::writeRequests},
    {"disk.io.write_merged", &DiskCounters::writeMerged},
    {"disk.io.write_sectors", &DiskCounters::writeSectors},
    {"disk.io.msec_write", &DiskCounters::msecWrite},
    {"disk.io.msec_total", &DiskCounters::msecTotal},
    {"disk.io.msec_weighted_total", &DiskCounters::msecWeightedTotal},
}};

struct DeviceKind {
    bool partition = false;
    bool isVirtual = false;
};

class DiskCollector : public GroupCollector {
public:
    explicit DiskCollector(const HostOptions& options)
        : path_(options.paths.procRoot + "/diskstats"), classBlock_(options.paths.sysRoot + "/class/block"),
          filter_(options.devices), partitions_(options.diskPartitions), virtual_(options.diskVirtual) {}

    void collect(const Tick& tick, agent::Batch& out, CollectReport& report) override {
        // On a read failure the baselines stay: once the file is back, the rates cover the gap.
        if (!readKernelFile(path_, content_, problems_, report)) return;
        DiskStats stats = parseDiskStats(content_);
        reportMalformed(path_, stats.malformed, problems_, report);

        std::set<std::string> present;
        std::map<std::string, Baseline> next;
        for (DiskCounters& now : stats.devices) {
            present.insert(now.name);
            if (!watched(now.name, report)) continue;
            const auto found = baselines_.find(now.name);
            if (found == baselines_.end()) {
                report.notices.push_back("block device " + now.name + " found; its first read is a baseline");
            } else {
                publish(found->second, now, tick, out, report);
            }
            addTaggedPoint(out, "disk.io.ios_in_progress", static_cast<double>(now.iosInProgress), tick, "device",
                           now.name);
            std::string name = now.name;
            next.emplace(std::move(name), Baseline{std::move(now), tick.monotonicSeconds});
        }
        forgetVanished(present, report);
        baselines_ = std::move(next);
    }

private:
    struct Baseline {
        DiskCounters counters;
        double monotonicSeconds = 0;
    };

    bool watched(const std::string& name, CollectReport& report) {
        if (!filter_.accepts(name)) return false;
        auto kind = kinds_.find(name);
        if (kind == kinds_.end()) kind = kinds_.emplace(name, classify(name, report)).first;
        return (partitions_ || !kind->second.partition) && (virtual_ || !kind->second.isVirtual);
    }

    // /sys/class/block/<name> links to the device: under /devices/virtual/ for loop, ram, zram,
    // dm and md devices; a partition has a `partition` attribute. Sysfs spells '/' in a name
    // (cciss/c0d0) as '!'.
    DeviceKind classify(const std::string& name, CollectReport& report) const {
        std::string sysName = name;
        for (char& c : sysName) {
            if (c == '/') c = '!';
        }
        const std::string entry = classBlock_ + "/" + sysName;
        DeviceKind kind;
        char target[4096];
        const ssize_t length = ::readlink(entry.c_str(), target, sizeof target - 1);
        const int error = length < 0 ? errno : 0;
        if (error != 0 && error != EINVAL) { // EINVAL: not a symbolic link
            // No sysfs (a container without /sys): nothing to tell partitions from disks by.
            report.warnings.push_back("cannot classify block device " + name + " (" + entry + ": " + errnoText(error) +
                                      "); treated as a whole physical disk");
            return kind;
        }
        const std::string_view link(target, length > 0 ? static_cast<std::size_t>(length) : 0);
        kind.isVirtual = link.find("/devices/virtual/") != std::string_view::npos;
        kind.partition = pathExists(entry + "/partition");
        return kind;
    }

    void publish(const Baseline& before, const DiskCounters& now, const Tick& tick, agent::Batch& out,
                 CollectReport& report) const {
        const double seconds = tick.monotonicSeconds - before.monotonicSeconds;
        if (!(seconds > 0)) return;
        const DiskCounters& old = before.counters;
        std::vector<std::string> wentBack;
        for (const DiskRate& rate : kDiskRates) {
            const std::optional<std::uint64_t> delta = increase(old.*rate.counter, now.*rate.counter);
            if (delta) {
                addTaggedPoint(out, rate.metric, static_cast<double>(*delta) / seconds, tick, "device", now.name);
            } else {
                wentBack.push_back(rate.metric);
            }
        }
        publishAwait(old, now, tick, out);
        publishUtil(old, now, seconds, tick, out);
        if (!wentBack.empty()) {
            std::string names;
            for (const std::string& name : wentBack)
                names += (names.empty() ? "" : ", ") + name;
            report.warnings.push_back("block device " + now.name +
                                      ": counters went back (reset, wrap or re-created): " + names +
                                      " not published this round");
        }
    }

    // The average time a request took, in ms: time spent reading and writing over requests done.
    static void publishAwait(const DiskCounters& old, const DiskCounters& now, const Tick& tick, agent::Batch& out) {
        const auto reads = increase(old.readRequests, now.readRequests);
        const auto writes = increase(old.writeRequests, now.writeRequests);
        const auto msecRead = increase(old.msecRead, now.msecRead);
        const auto msecWrite = increase(old.msecWrite, now.msecWrite);
        if (!reads || !writes || !msecRead || !msecWrite) return;
        const std::uint64_t requests = *reads + *writes;
        const double await =
            requests == 0 ? 0.0 : static_cast<double>(*msecRead + *msecWrite) / static_cast<double>(requests);
        addTaggedPoint(out, "disk.io.await", await, tick, "device", now.name);
    }

    // The share of wall time the device was busy. The kernel's io_ticks can run slightly ahead of
    // our clock, so the result is capped at 100.
    static void publishUtil(const DiskCounters& old, const DiskCounters& now, double seconds, const Tick& tick,
                            agent::Batch& out) {
        const auto busy = increase(old.msecTotal, now.msecTotal);
        if (!busy) return;
        const double util = static_cast<double>(*busy) / (seconds * kMillisecondsPerSecond) * kPercent;
        addTaggedPoint(out, "disk.io.util", std::min(util, kPercent), tick, "device", now.name);
    }

    void forgetVanished(const std::set<std::string>& present, CollectReport& report) {
        for (auto it = kinds_.begin(); it != kinds_.end();) {
            if (present.count(it->first) > 0) {
                ++it;
                continue;
            }
            // A device that comes back may be another one under the same name: classify it again.
            if (baselines_.count(it->first) > 0)
                report.notices.push_back("block device " + it->first + " is gone; forgetting its counters");
            it = kinds_.erase(it);
        }
    }

    const std::string path_;
    const std::string classBlock_;
    const NameFilter filter_;
    const bool partitions_;
    const bool virtual_;
    std::string content_;
    ProblemTracker problems_;
    std::map<std::string, Baseline> baselines_; // watched devices only
    std::map<std::string, DeviceKind> kinds_;   // every device that passed the name filter
};

// ---- fs: the mount table and statvfs(2) ------------------------------------------------------

class FsCollector : public GroupCollector {
public:
    FsCollector(const HostOptions& options, StatvfsFunction statvfs)
        : path_(options.paths.mountsFile), fsTypes_(options.fsTypes), mountPoints_(options.mountPoints),
          statvfs_(std::move(statvfs)) {}

    void collect(const Tick& tick, agent::Batch& out, CollectReport& report) override {
        if (!readKernelFile(path_, content_, problems_, report)) return;
        const MountTable table = parseMounts(content_);
        reportMalformed(path_, table.malformed, problems_, report);
        for (const MountEntry& mount : selectMounts(table.mounts)) {
            FsUsage usage;
            const int error = statvfs_(mount.mountPoint, usage);
            if (error != 0) {
                problems_.problem("statvfs " + mount.mountPoint,
                                  "statvfs " + mount.mountPoint + ": " + errnoText(error) + "; skipped until it works",
                                  report);
                continue;
            }
            problems_.fine("statvfs " + mount.mountPoint, "statvfs " + mount.mountPoint + " works again", report);
            publish(mount, usage, tick, out);
        }
    }

private:
    // The mounts the filters accept. A device mounted more than once (bind mounts, btrfs
    // subvolumes) is one file system: it is reported once, under its shortest mount point.
    std::vector<MountEntry> selectMounts(const std::vector<MountEntry>& mounts) const {
        std::vector<MountEntry> selected;
        for (const MountEntry& mount : mounts) {
            if (!fsTypes_.accepts(mount.fsType) || !mountPoints_.accepts(mount.mountPoint)) continue;
            MountEntry* same = nullptr;
            if (mount.device.rfind("/dev/", 0) == 0) {
                for (MountEntry& seen : selected) {
                    if (seen.device == mount.device) same = &seen;
                }
            }
            if (same == nullptr) {
                selected.push_back(mount);
            } else if (mount.mountPoint.size() < same->mountPoint.size()) {
                *same = mount;
            }
        }
        return selected;
    }

    static void publish(const MountEntry& mount, const FsUsage& usage, const Tick& tick, agent::Batch& out) {
        const double unit = static_cast<double>(usage.fragmentSize);
        const double total = static_cast<double>(usage.blocks) * unit;
        const double used = static_cast<double>(usage.blocks - std::min(usage.blocks, usage.blocksFree)) * unit;
        const double available = static_cast<double>(usage.blocksAvailable) * unit;
        auto add = [&](const char* name, double value) {
            agent::Metric metric = point(name, value, tick);
            metric.setTag("mount", mount.mountPoint);
            metric.setTag("fstype", mount.fsType);
            out.push_back(std::move(metric));
        };
        add("fs.space.total", total);
        add("fs.space.used", used);
        add("fs.space.free", available);
        // As df's Use%: of the space a user could have (root's reserve left out).
        if (const std::optional<double> percent = percentOf(used, used + available))
            add("fs.space.used.percent", *percent);
        const std::uint64_t inodesUsed = usage.files - std::min(usage.files, usage.filesFree);
        if (const std::optional<double> percent =
                percentOf(static_cast<double>(inodesUsed), static_cast<double>(usage.files)))
            add("fs.inodes.used.percent", *percent);
        add("fs.files.rw", usage.readOnly || mount.readOnly ? 0.0 : 1.0);
    }

    const std::string path_;
    const NameFilter fsTypes_;
    const NameFilter mountPoints_;
    const StatvfsFunction statvfs_;
    std::string content_;
    ProblemTracker problems_;
};

// ---- ps: /proc/<pid>/stat --------------------------------------------------------------------

bool allDigits(const char* name) {
    if (*name == '\0') return false;
    for (; *name != '\0'; ++name) {
        if (*name < '0' || *name > '9') return false;
    }
    return true;
}

// The state letter of one process; '\0' when it exited meanwhile or the file is unreadable.
// Opened relative to the /proc directory already open, which spares a path walk per process.
char processState(int procFd, const std::string& relativePath) {
    const int fd = ::openat(procFd, relativePath.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return '\0';
    char buffer[kPidStatPrefix];
    ssize_t n;
    do {
        n = ::read(fd, buffer, sizeof buffer);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) return '\0';
    return parsePidStatState(std::string_view(buffer, static_cast<std::size_t>(n)));
}

class ProcessCollector : public GroupCollector {
public:
    explicit ProcessCollector(const HostPaths& paths) : procRoot_(paths.procRoot) {}

    void collect(const Tick& tick, agent::Batch& out, CollectReport& report) override {
        DIR* dir = ::opendir(procRoot_.c_str());
        if (dir == nullptr) {
            problems_.problem(procRoot_, "cannot list " + procRoot_ + ": " + errnoText(errno) + "; no process counts",
                              report);
            return;
        }
        problems_.fine(procRoot_, "listing " + procRoot_ + " again", report);
        std::uint64_t total = 0, running = 0, zombies = 0;
        std::string statPath;
        while (const dirent* entry = ::readdir(dir)) {
            if (!allDigits(entry->d_name)) continue;
            statPath.assign(entry->d_name).append("/stat");
            // A process that exits between readdir and open is simply not counted.
            const char state = processState(::dirfd(dir), statPath);
            if (state == '\0') continue;
            ++total;
            running += state == 'R' ? 1 : 0;
            zombies += state == 'Z' ? 1 : 0;
        }
        ::closedir(dir);
        addPoint(out, "ps.total.num", static_cast<double>(total), tick);
        addPoint(out, "ps.running.num", static_cast<double>(running), tick);
        addPoint(out, "ps.zombies.num", static_cast<double>(zombies), tick);
    }

private:
    const std::string procRoot_;
    ProblemTracker problems_;
};

// ---- kernel: /proc/sys/fs/file-nr ------------------------------------------------------------

class KernelCollector : public GroupCollector {
public:
    explicit KernelCollector(const HostPaths& paths) : path_(paths.procRoot + "/sys/fs/file-nr") {}

    void collect(const Tick& tick, agent::Batch& out, CollectReport& report) override {
        if (!readKernelFile(path_, content_, problems_, report)) return;
        const std::optional<FileHandles> files = parseFileNr(content_);
        if (!files) {
            problems_.problem(path_ + "#content", path_ + " does not hold three numbers", report);
            return;
        }
        problems_.fine(path_ + "#content", path_ + " holds three numbers again", report);
        // Root may go a little past file-max; left is then 0 and the share 100.
        const std::uint64_t allocated = files->allocated;
        addPoint(out, "kernel.files.allocated", static_cast<double>(allocated), tick);
        addPoint(out, "kernel.files.max", static_cast<double>(files->max), tick);
        addPoint(out, "kernel.files.left", static_cast<double>(files->max - std::min(files->max, allocated)), tick);
        if (files->max > 0) {
            const double percent = static_cast<double>(allocated) / static_cast<double>(files->max) * kPercent;
            addPoint(out, "kernel.files.allocated.percent", std::min(percent, kPercent), tick);
        }
    }

private:
    const std::string path_;
    std::string content_;
    ProblemTracker problems_;
};

// ---- alive: the Go agent's heartbeat ---------------------------------------------------------

class AliveCollector : public GroupCollector {
public:
    void collect(const Tick& tick, agent::Batch& out, CollectReport&) override {
        addPoint(out, "agent.alive", 1.0, tick);
    }
};

struct GroupNaming {
    Group group;
    const char* name;
};

constexpr std::array<GroupNaming, kAllGroups.size()> kGroupNames = {{
    {Group::Cpu, "cpu"},
    {Group::Mem, "mem"},
    {Group::Disk, "disk"},
    {Group::Fs, "fs"},
    {Group::Ps, "ps"},
    {Group::Kernel, "kernel"},
    {Group::Alive, "alive"},
}};

void append(CollectReport& into, CollectReport&& from) {
    for (std::string& line : from.warnings)
        into.warnings.push_back(std::move(line));
    for (std::string& line : from.notices)
        into.notices.push_back(std::move(line));
}

} // namespace

const char* groupName(Group group) {
    for (const GroupNaming& naming : kGroupNames) {
        if (naming.group == group) return naming.name;
    }
    return "?";
}

std::optional<Group> groupByName(std::string_view name) {
    for (const GroupNaming& naming : kGroupNames) {
        if (name == naming.name) return naming.group;
    }
    return std::nullopt;
}

bool NameFilter::accepts(const std::string& name) const {
    auto matches = [&name](const std::string& pattern) { return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0; };
    bool included = include.empty();
    for (const std::string& pattern : include)
        included = included || matches(pattern);
    if (!included) return false;
    for (const std::string& pattern : exclude) {
        if (matches(pattern)) return false;
    }
    return true;
}

int systemStatvfs(const std::string& mountPoint, FsUsage& usage) {
    struct statvfs info {};
    if (::statvfs(mountPoint.c_str(), &info) != 0) return errno;
    usage.blocks = info.f_blocks;
    usage.blocksFree = info.f_bfree;
    usage.blocksAvailable = info.f_bavail;
    usage.fragmentSize = info.f_frsize;
    usage.files = info.f_files;
    usage.filesFree = info.f_ffree;
    usage.readOnly = (info.f_flag & ST_RDONLY) != 0;
    return 0;
}

GroupCollectorPtr makeGroupCollector(Group group, const HostOptions& options, StatvfsFunction statvfs) {
    switch (group) {
    case Group::Cpu:
        return std::make_unique<CpuCollector>(options.paths);
    case Group::Mem:
        return std::make_unique<MemCollector>(options.paths, options.memUseAvailable);
    case Group::Disk:
        return std::make_unique<DiskCollector>(options);
    case Group::Fs:
        return std::make_unique<FsCollector>(options, std::move(statvfs));
    case Group::Ps:
        return std::make_unique<ProcessCollector>(options.paths);
    case Group::Kernel:
        return std::make_unique<KernelCollector>(options.paths);
    case Group::Alive:
        return std::make_unique<AliveCollector>();
    }
    throw std::invalid_argument("source-host: unknown group");
}

HostCollector::HostCollector(const std::vector<Group>& groups, const HostOptions& options, StatvfsFunction statvfs)
    : groups_(groups) {
    for (Group group : groups_) {
        auto slot = std::make_unique<Slot>();
        slot->group = group;
        slot->collector = makeGroupCollector(group, options, statvfs);
        slots_.push_back(std::move(slot));
    }
}

CollectReport HostCollector::collect(Group group, const Tick& tick, agent::Batch& out) {
    for (const std::unique_ptr<Slot>& slot : slots_) {
        if (slot->group != group) continue;
        CollectReport report;
        std::lock_guard<std::mutex> lock(slot->mutex);
        slot->collector->collect(tick, out, report);
        return report;
    }
    throw std::invalid_argument(std::string("source-host: group ") + groupName(group) + " is not enabled");
}

CollectReport HostCollector::collectAll(const Tick& tick, agent::Batch& out) {
    CollectReport report;
    for (Group group : groups_)
        append(report, collect(group, tick, out));
    return report;
}

} // namespace agent::host
