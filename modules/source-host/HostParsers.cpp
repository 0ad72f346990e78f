// The text formats of the kernel files source-host reads. Every parser walks its input line by
// line with string_views, converts numbers with std::from_chars (no locale, no exceptions) and
// refuses a whole line rather than guessing at part of it.
#include "HostParsers.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace agent::host {
namespace {

// The most columns any parser here looks at: /proc/diskstats has 3 + 11 it reads.
constexpr std::size_t kMaxFields = 16;
constexpr std::size_t kDiskStatsColumns = 14;
constexpr std::size_t kMinCpuCounters = 4; // user nice system idle: every kernel prints these
constexpr std::size_t kMaxCpuCounters = 10;
constexpr std::uint64_t kBytesPerKilobyte = 1024;
// A log line quotes at most this much of a malformed line.
constexpr std::size_t kMaxQuotedLine = 200;

bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && isSpace(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && isSpace(text.back()))
        text.remove_suffix(1);
    return text;
}

// Cuts the first line off `content` and returns it (without its newline).
std::string_view nextLine(std::string_view& content) {
    const std::size_t newline = content.find('\n');
    const std::string_view line = newline == std::string_view::npos ? content : content.substr(0, newline);
    content.remove_prefix(newline == std::string_view::npos ? content.size() : newline + 1);
    return line;
}

// The whitespace-separated fields of a line: the first kMaxFields of them, and how many there are.
struct Fields {
    std::array<std::string_view, kMaxFields> field{};
    std::size_t count = 0; // all of them, also those beyond kMaxFields
};

Fields splitFields(std::string_view line) {
    Fields fields;
    for (;;) {
        while (!line.empty() && isSpace(line.front()))
            line.remove_prefix(1);
        if (line.empty()) break;
        std::size_t end = 0;
        while (end < line.size() && !isSpace(line[end]))
            ++end;
        if (fields.count < kMaxFields) fields.field[fields.count] = line.substr(0, end);
        ++fields.count;
        line.remove_prefix(end);
    }
    return fields;
}

// The whole token must be an unsigned 64-bit number: no sign, no trailing text, no overflow.
bool parseU64(std::string_view token, std::uint64_t& value) {
    if (token.empty()) return false;
    const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    return ec == std::errc() && ptr == token.data() + token.size();
}

bool parseNonNegativeDouble(std::string_view token, double& value) {
    if (token.empty()) return false;
    const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    return ec == std::errc() && ptr == token.data() + token.size() && std::isfinite(value) && value >= 0;
}

bool hasControlCharacter(std::string_view text) {
    for (char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
    }
    return false;
}

// Fills counters[0..n) from fields [first, first + n); false when one is not a number.
template <std::size_t N>
bool parseCounters(const Fields& fields, std::size_t first, std::size_t n, std::array<std::uint64_t, N>& counters) {
    for (std::size_t i = 0; i < n; ++i) {
        if (!parseU64(fields.field[first + i], counters[i])) return false;
    }
    return true;
}

bool parseCpuLine(const Fields& fields, CpuTimes& times) {
    const std::size_t available = fields.count - 1;
    if (available < kMinCpuCounters) return false;
    std::array<std::uint64_t, kMaxCpuCounters> c{};
    const std::size_t n = available < kMaxCpuCounters ? available : kMaxCpuCounters;
    if (!parseCounters(fields, 1, n, c)) return false;
    times = CpuTimes{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]};
    return true;
}

// "cpu" is every core together (nullopt core), "cpuN" one core; false for anything else.
bool parseCpuName(std::string_view name, std::optional<unsigned>& core) {
    if (name == "cpu") {
        core.reset();
        return true;
    }
    const std::string_view digits = name.substr(3);
    unsigned n = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) return false;
    core = n;
    return true;
}

// Reads one cpu line into `stat`; false when it is malformed or repeats a line already read.
bool addCpuLine(const Fields& fields, ProcStat& stat) {
    std::optional<unsigned> core;
    CpuTimes times;
    if (!parseCpuName(fields.field[0], core) || !parseCpuLine(fields, times)) return false;
    if (!core) {
        if (stat.all) return false;
        stat.all = times;
        return true;
    }
    for (const CoreTimes& seen : stat.cores) {
        if (seen.core == *core) return false;
    }
    stat.cores.push_back(CoreTimes{*core, times});
    return true;
}

bool validDeviceName(std::string_view name) {
    // Names become tag values and, with '/' turned into '!', path parts under /sys/class/block.
    return !name.empty() && name != "." && name != ".." && !hasControlCharacter(name);
}

// The kernel writes ' ', '\t', '\n' and '\\' in mount table fields as \040, \011, \012, \134.
// Returns false for a NUL, written or escaped, which no path can hold.
bool decodeMountField(std::string_view field, std::string& out) {
    if (field.find('\0') != std::string_view::npos) return false;
    out.clear();
    out.reserve(field.size());
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && field.size() - i > 3) {
            const char a = field[i + 1], b = field[i + 2], c = field[i + 3];
            if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
                const char decoded = static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0'));
                if (decoded == '\0') return false;
                out.push_back(decoded);
                i += 3;
                continue;
            }
        }
        out.push_back(field[i]);
    }
    return true;
}

bool hasOption(std::string_view options, std::string_view wanted) {
    while (!options.empty()) {
        const std::size_t comma = options.find(',');
        if (options.substr(0, comma) == wanted) return true;
        if (comma == std::string_view::npos) break;
        options.remove_prefix(comma + 1);
    }
    return false;
}

bool parseMountLine(const Fields& fields, MountEntry& entry) {
    if (fields.count < 4) return false;
    if (!decodeMountField(fields.field[0], entry.device)) return false;
    if (!decodeMountField(fields.field[1], entry.mountPoint)) return false;
    if (entry.mountPoint.empty() || entry.mountPoint.front() != '/') return false;
    entry.fsType = std::string(fields.field[2]);
    if (hasControlCharacter(entry.fsType)) return false;
    entry.readOnly = hasOption(fields.field[3], "ro");
    return true;
}

// One "Key:   value kB" line of /proc/meminfo, for the keys source-host reads.
struct MemInfoKey {
    std::string_view name;
    std::optional<std::uint64_t> MemInfo::*member;
};

constexpr std::array<MemInfoKey, 7> kMemInfoKeys = {{
    {"MemTotal", &MemInfo::total},
    {"MemFree", &MemInfo::free},
    {"MemAvailable", &MemInfo::available},
    {"Buffers", &MemInfo::buffers},
    {"Cached", &MemInfo::cached},
    {"SwapTotal", &MemInfo::swapTotal},
    {"SwapFree", &MemInfo::swapFree},
}};

// The value of a meminfo line in bytes; nullopt unless it is "<number> kB" and fits.
std::optional<std::uint64_t> parseKilobytes(std::string_view text) {
    const Fields fields = splitFields(text);
    std::uint64_t kilobytes = 0;
    if (fields.count != 2 || fields.field[1] != "kB" || !parseU64(fields.field[0], kilobytes)) return std::nullopt;
    if (kilobytes > std::numeric_limits<std::uint64_t>::max() / kBytesPerKilobyte) return std::nullopt;
    return kilobytes * kBytesPerKilobyte;
}

bool parseDiskLine(const Fields& fields, DiskCounters& disk) {
    if (fields.count < kDiskStatsColumns) return false;
    std::uint64_t majorMinor = 0;
    if (!parseU64(fields.field[0], majorMinor) || !parseU64(fields.field[1], majorMinor)) return false;
    if (!validDeviceName(fields.field[2])) return false;
    std::array<std::uint64_t, kDiskStatsColumns - 3> c{};
    if (!parseCounters(fields, 3, c.size(), c)) return false;
    disk.name = std::string(fields.field[2]);
    disk.readRequests = c[0];
    disk.readMerged = c[1];
    disk.readSectors = c[2];
    disk.msecRead = c[3];
    disk.writeRequests = c[4];
    disk.writeMerged = c[5];
    disk.writeSectors = c[6];
    disk.msecWrite = c[7];
    disk.iosInProgress = c[8];
    disk.msecTotal = c[9];
    disk.msecWeightedTotal = c[10];
    return true;
}

} // namespace

void MalformedLines::add(std::string_view line) {
    if (count == 0) {
        const std::string_view trimmed = trim(line);
        first = std::string(trimmed.substr(0, kMaxQuotedLine));
    }
    ++count;
}

ProcStat parseProcStat(std::string_view content) {
    ProcStat stat;
    while (!content.empty()) {
        const std::string_view line = nextLine(content);
        const Fields fields = splitFields(line);
        if (fields.count == 0) continue;
        const std::string_view key = fields.field[0];
        if (key.substr(0, 3) == "cpu") {
            if (!addCpuLine(fields, stat)) stat.malformed.add(line);
        } else if (key == "ctxt") {
            std::uint64_t switches = 0;
            if (fields.count != 2 || stat.contextSwitches || !parseU64(fields.field[1], switches)) {
                stat.malformed.add(line);
            } else {
                stat.contextSwitches = switches;
            }
        }
    }
    return stat;
}

std::optional<LoadAverage> parseLoadAvg(std::string_view content) {
    const Fields fields = splitFields(nextLine(content));
    LoadAverage load;
    if (fields.count < 3 || !parseNonNegativeDouble(fields.field[0], load.one) ||
        !parseNonNegativeDouble(fields.field[1], load.five) || !parseNonNegativeDouble(fields.field[2], load.fifteen))
        return std::nullopt;
    return load;
}

MemInfo parseMemInfo(std::string_view content) {
    MemInfo info;
    while (!content.empty()) {
        const std::string_view line = nextLine(content);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view name = trim(line.substr(0, colon));
        for (const MemInfoKey& key : kMemInfoKeys) {
            if (key.name != name) continue;
            std::optional<std::uint64_t>& slot = info.*key.member;
            const std::optional<std::uint64_t> bytes = parseKilobytes(line.substr(colon + 1));
            if (!bytes || slot) {
                info.malformed.add(line); // unreadable, or listed twice: which one would be right?
            } else {
                slot = bytes;
            }
        }
    }
    return info;
}

DiskStats parseDiskStats(std::string_view content) {
    DiskStats stats;
    while (!content.empty()) {
        const std::string_view line = nextLine(content);
        const Fields fields = splitFields(line);
        if (fields.count == 0) continue;
        DiskCounters disk;
        bool ok = parseDiskLine(fields, disk);
        for (std::size_t i = 0; ok && i < stats.devices.size(); ++i)
            ok = stats.devices[i].name != disk.name;
        if (ok) {
            stats.devices.push_back(std::move(disk));
        } else {
            stats.malformed.add(line);
        }
    }
    return stats;
}

MountTable parseMounts(std::string_view content) {
    MountTable table;
    while (!content.empty()) {
        const std::string_view line = nextLine(content);
        const Fields fields = splitFields(line);
        if (fields.count == 0 || fields.field[0].front() == '#') continue; // /etc/mtab-style comments
        MountEntry entry;
        if (parseMountLine(fields, entry)) {
            table.mounts.push_back(std::move(entry));
        } else {
            table.malformed.add(line);
        }
    }
    return table;
}

std::optional<FileHandles> parseFileNr(std::string_view content) {
    const Fields fields = splitFields(nextLine(content));
    FileHandles handles;
    if (fields.count != 3 || !parseU64(fields.field[0], handles.allocated) ||
        !parseU64(fields.field[1], handles.unused) || !parseU64(fields.field[2], handles.max))
        return std::nullopt;
    return handles;
}

char parsePidStatState(std::string_view content) {
    // The command name is at most 15 bytes but may contain ')' itself: the last ')' closes it.
    const std::size_t open = content.find('(');
    const std::size_t close = content.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return '\0';
    std::string_view rest = content.substr(close + 1);
    if (rest.empty() || rest.front() != ' ') return '\0';
    rest.remove_prefix(1);
    if (rest.empty()) return '\0';
    const char state = rest.front();
    const bool letter = (state >= 'A' && state <= 'Z') || (state >= 'a' && state <= 'z');
    const bool endsField = rest.size() == 1 || isSpace(rest[1]);
    return letter && endsField ? state : '\0';
}

} // namespace agent::host
