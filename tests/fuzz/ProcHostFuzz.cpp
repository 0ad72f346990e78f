// libFuzzer target: every /proc parser of source-host (stat, loadavg, meminfo, diskstats, the
// mount table, file-nr, <pid>/stat) on the same input. None may throw or crash, and what they
// return must be safe to use: device names that cannot leave /sys/class/block, absolute mount
// points without NUL, finite load averages.
#include "HostParsers.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace agent::host;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const ProcStat stat = parseProcStat(input);
    check(stat.malformed.count > 0 || stat.malformed.first.empty());

    if (const auto load = parseLoadAvg(input)) {
        check(std::isfinite(load->one) && std::isfinite(load->five) && std::isfinite(load->fifteen));
        check(load->one >= 0 && load->five >= 0 && load->fifteen >= 0);
    }

    const MemInfo memory = parseMemInfo(input);
    if (memory.total) check(*memory.total % 1024 == 0);

    for (const DiskCounters& disk : parseDiskStats(input).devices) {
        check(!disk.name.empty() && disk.name != "." && disk.name != "..");
        for (char c : disk.name)
            check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    }

    for (const MountEntry& mount : parseMounts(input).mounts) {
        check(!mount.mountPoint.empty() && mount.mountPoint.front() == '/');
        check(mount.mountPoint.find('\0') == std::string::npos && mount.device.find('\0') == std::string::npos);
    }

    (void)parseFileNr(input);
    const char state = parsePidStatState(input);
    check(state == '\0' || (state >= 'A' && state <= 'Z') || (state >= 'a' && state <= 'z'));
    return 0;
}
