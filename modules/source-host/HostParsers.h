// Parsers of the kernel's text files that source-host reads: /proc/stat, /proc/loadavg,
// /proc/meminfo, /proc/diskstats, the mount table (/proc/self/mounts), /proc/sys/fs/file-nr and
// /proc/<pid>/stat.
//
// Pure functions over the file's content: no I/O, no clock, no logging, and they never throw or
// crash on junk (they are fuzzed). A line they cannot read is skipped and counted, the rest kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agent::host {

// Lines a parser skipped, with the first one kept for a log line an operator can act on.
struct MalformedLines {
    std::size_t count = 0;
    std::string first;

    void add(std::string_view line);
};

// The time counters of one "cpu" or "cpuN" line of /proc/stat, in USER_HZ ticks. Kernels older
// than 2.6.33 print fewer columns; the missing ones are 0.
struct CpuTimes {
    std::uint64_t user = 0;
    std::uint64_t nice = 0;
    std::uint64_t system = 0;
    std::uint64_t idle = 0;
    std::uint64_t iowait = 0;
    std::uint64_t irq = 0;
    std::uint64_t softirq = 0;
    std::uint64_t steal = 0;
    std::uint64_t guest = 0;     // already counted in `user` by the kernel
    std::uint64_t guestNice = 0; // already counted in `nice` by the kernel
};

struct CoreTimes {
    unsigned core = 0; // N of "cpuN"
    CpuTimes times;
};

struct ProcStat {
    std::optional<CpuTimes> all;                  // the "cpu" line: every core together
    std::vector<CoreTimes> cores;                 // "cpuN" lines, in file order
    std::optional<std::uint64_t> contextSwitches; // "ctxt"
    MalformedLines malformed;                     // only cpu and ctxt lines are read, so only they count
};

// Parses /proc/stat. A cpu line needs at least the four columns every kernel has (user nice
// system idle); a core listed twice is malformed.
ProcStat parseProcStat(std::string_view content);

struct LoadAverage {
    double one = 0;
    double five = 0;
    double fifteen = 0;
};

// Parses /proc/loadavg ("0.42 0.31 0.20 2/345 6789"); nullopt unless the first three fields are
// finite, non-negative numbers.
std::optional<LoadAverage> parseLoadAvg(std::string_view content);

// The /proc/meminfo lines source-host uses, converted from kB to bytes. A line that is absent
// (or malformed) stays unset.
struct MemInfo {
    std::optional<std::uint64_t> total;
    std::optional<std::uint64_t> free;
    std::optional<std::uint64_t> available; // since Linux 3.14
    std::optional<std::uint64_t> buffers;
    std::optional<std::uint64_t> cached;
    std::optional<std::uint64_t> swapTotal;
    std::optional<std::uint64_t> swapFree;
    MalformedLines malformed; // only the lines above count
};

MemInfo parseMemInfo(std::string_view content);

// The first eleven counters of one /proc/diskstats line (Documentation/admin-guide/iostats.rst).
struct DiskCounters {
    std::string name;
    std::uint64_t readRequests = 0;
    std::uint64_t readMerged = 0;
    std::uint64_t readSectors = 0;
    std::uint64_t msecRead = 0;
    std::uint64_t writeRequests = 0;
    std::uint64_t writeMerged = 0;
    std::uint64_t writeSectors = 0;
    std::uint64_t msecWrite = 0;
    std::uint64_t iosInProgress = 0;
    std::uint64_t msecTotal = 0;
    std::uint64_t msecWeightedTotal = 0;
};

struct DiskStats {
    std::vector<DiskCounters> devices; // in file order
    MalformedLines malformed;
};

// Parses /proc/diskstats. Skips, counting them, lines with fewer than 14 columns (kernels before
// 2.6.25 printed 4 counters for partitions), a bad name, a counter that is not an unsigned
// 64-bit number, or a device listed twice. Later kernels' extra columns (discard, flush) are ignored.
DiskStats parseDiskStats(std::string_view content);

struct MountEntry {
    std::string device;     // fs_spec, e.g. /dev/sda1
    std::string mountPoint; // with the kernel's octal escapes (\040 for a space) decoded
    std::string fsType;
    bool readOnly = false; // "ro" among the mount options
};

struct MountTable {
    std::vector<MountEntry> mounts; // in file order
    MalformedLines malformed;
};

// Parses a mount table in the format of /proc/self/mounts (and /etc/mtab). A mount point must be
// absolute.
MountTable parseMounts(std::string_view content);

struct FileHandles {
    std::uint64_t allocated = 0;
    std::uint64_t unused = 0; // always 0 since Linux 2.6
    std::uint64_t max = 0;
};

// Parses /proc/sys/fs/file-nr ("1024 0 9223372036854775807").
std::optional<FileHandles> parseFileNr(std::string_view content);

// The state letter of /proc/<pid>/stat ("R", "S", "Z" ...): the first field after the command
// name, which is in parentheses and may itself hold spaces and ')'. '\0' when there is none.
char parsePidStatState(std::string_view content);

} // namespace agent::host
