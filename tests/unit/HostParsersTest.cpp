// Specification of source-host's parsers: what they read from the kernel's text files (recorded
// on a real machine in tests/fixtures/host/machine, and hand-made lines), and that junk is
// skipped and counted rather than guessed at.
#include "HostParsers.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

using namespace agent::host;

namespace {

std::string fixture(const std::string& path) {
    std::ifstream in(std::string(AGENT_TEST_FIXTURES) + "/host/" + path);
    if (!in) throw std::runtime_error("no fixture " + path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

} // namespace

TEST(HostParsers, ProcStatOfThisMachineGivesEveryCpuColumnTheCoresAndTheContextSwitches) {
    const ProcStat stat = parseProcStat(fixture("machine/proc.1/stat"));
    ASSERT_TRUE(stat.all);
    EXPECT_EQ(stat.all->user, 32747u);
    EXPECT_EQ(stat.all->nice, 29606u);
    EXPECT_EQ(stat.all->system, 10057u);
    EXPECT_EQ(stat.all->idle, 14471u);
    EXPECT_EQ(stat.all->iowait, 1063u);
    EXPECT_EQ(stat.all->irq, 0u);
    EXPECT_EQ(stat.all->softirq, 100u);
    EXPECT_EQ(stat.all->steal, 375u);
    EXPECT_EQ(stat.all->guest, 0u);
    ASSERT_EQ(stat.cores.size(), 2u);
    EXPECT_EQ(stat.cores[1].core, 1u);
    EXPECT_EQ(stat.cores[1].times.iowait, 1014u);
    EXPECT_EQ(stat.contextSwitches, 577962u);
    EXPECT_EQ(stat.malformed.count, 0u);
}

TEST(HostParsers, ProcStatOfAnOldKernelWithFourColumnsLeavesTheOthersAtZero) {
    const ProcStat stat = parseProcStat("cpu 1 2 3 4\ncpu7 1 2 3 4\n");
    ASSERT_TRUE(stat.all);
    EXPECT_EQ(stat.all->idle, 4u);
    EXPECT_EQ(stat.all->steal, 0u);
    ASSERT_EQ(stat.cores.size(), 1u);
    EXPECT_EQ(stat.cores[0].core, 7u);
    EXPECT_FALSE(stat.contextSwitches);
}

TEST(HostParsers, ProcStatSkipsAndCountsBadCpuLinesButIgnoresLinesItDoesNotRead) {
    const ProcStat stat = parseProcStat("cpu 1 2 3 4 5 6 7 8 9 10 11 12\n" // later kernels' extra column: fine
                                        "cpu0 1 2 3\n"                     // too few columns
                                        "cpu1 1 2 -3 4\n"                  // a negative
                                        "cpu2 1 2 3 4\n"
                                        "cpu2 5 6 7 8\n" // listed twice
                                        "cpux 1 2 3 4\n" // not a core number
                                        "cpu 9 9 9 9\n"  // "cpu" twice
                                        "ctxt many\n"
                                        "intr junk that is not read\n");
    ASSERT_TRUE(stat.all);
    EXPECT_EQ(stat.all->user, 1u);
    ASSERT_EQ(stat.cores.size(), 1u);
    EXPECT_EQ(stat.cores[0].times.user, 1u);
    EXPECT_EQ(stat.malformed.count, 6u);
    EXPECT_EQ(stat.malformed.first, "cpu0 1 2 3");
    EXPECT_FALSE(stat.contextSwitches);
}

TEST(HostParsers, LoadAverageReadsTheFirstThreeNumbers) {
    const auto load = parseLoadAvg(fixture("machine/proc.1/loadavg"));
    ASSERT_TRUE(load);
    EXPECT_EQ(load->one, 8.86);
    EXPECT_EQ(load->five, 4.61);
    EXPECT_EQ(load->fifteen, 1.94);
    EXPECT_FALSE(parseLoadAvg(""));
    EXPECT_FALSE(parseLoadAvg("0.1 0.2"));
    EXPECT_FALSE(parseLoadAvg("-1 0.2 0.3 1/2 3"));
    EXPECT_FALSE(parseLoadAvg("nan 0.2 0.3 1/2 3"));
    EXPECT_FALSE(parseLoadAvg("0.1x 0.2 0.3 1/2 3"));
}

TEST(HostParsers, MemInfoConvertsKilobytesToBytes) {
    const MemInfo info = parseMemInfo(fixture("machine/proc.2/meminfo"));
    EXPECT_EQ(info.total, 24684092ull * 1024);
    EXPECT_EQ(info.free, 22534156ull * 1024);
    EXPECT_EQ(info.available, 23207508ull * 1024);
    EXPECT_EQ(info.buffers, 18436ull * 1024);
    EXPECT_EQ(info.cached, 828872ull * 1024);
    EXPECT_EQ(info.swapTotal, 0u);
    EXPECT_EQ(info.swapFree, 0u);
    EXPECT_EQ(info.malformed.count, 0u);
}

TEST(HostParsers, MemInfoSkipsValuesThatAreNotKilobytesOrWouldOverflow) {
    const MemInfo info = parseMemInfo("MemTotal: 1000 kB\n"
                                      "MemFree: 18014398509481984 kB\n" // 2^54 kB: does not fit in bytes
                                      "Buffers: 12\n"                   // no unit
                                      "Cached: 5 kB\nCached: 6 kB\n"    // twice: the first is kept
                                      "HugePages_Total: 0\n");          // not read, not counted
    EXPECT_EQ(info.total, 1024000u);
    EXPECT_FALSE(info.free);
    EXPECT_FALSE(info.buffers);
    EXPECT_EQ(info.cached, 5u * 1024);
    EXPECT_FALSE(info.available); // kernels before 3.14
    EXPECT_EQ(info.malformed.count, 3u);
}

TEST(HostParsers, DiskStatsReadsTheElevenCountersOfOldAndNewLines) {
    const DiskStats stats = parseDiskStats(fixture("devicegone/proc.1/diskstats"));
    ASSERT_EQ(stats.devices.size(), 2u);
    const DiskCounters& sda = stats.devices[0]; // 20 columns (Linux 5.5+)
    EXPECT_EQ(sda.name, "sda");
    EXPECT_EQ(sda.readRequests, 1000u);
    EXPECT_EQ(sda.readSectors, 8000u);
    EXPECT_EQ(sda.msecRead, 100u);
    EXPECT_EQ(sda.writeRequests, 500u);
    EXPECT_EQ(sda.writeSectors, 4000u);
    EXPECT_EQ(sda.msecWrite, 50u);
    EXPECT_EQ(sda.msecTotal, 150u);
    EXPECT_EQ(sda.msecWeightedTotal, 150u);
    const DiskCounters& sdb = stats.devices[1]; // 14 columns (before 4.18)
    EXPECT_EQ(sdb.name, "sdb");
    EXPECT_EQ(sdb.msecWeightedTotal, 40u);
    EXPECT_EQ(stats.malformed.count, 0u);
}

TEST(HostParsers, DiskStatsSkipsShortBadAndRepeatedLines) {
    const DiskStats stats = parseDiskStats("   8 1 sda1 100 200 300 400\n"        // a 2.6.24 partition line
                                           "   8 0 sda 1 2 3 4 5 6 7 8 9 10 x\n"  // not a number
                                           "   8 0 .. 1 2 3 4 5 6 7 8 9 10 11\n"  // a name that is a path step
                                           "   a 0 sdz 1 2 3 4 5 6 7 8 9 10 11\n" // a bad major
                                           " 104 0 cciss/c0d0 1 2 3 4 5 6 7 8 9 10 11\n"
                                           " 104 0 cciss/c0d0 1 2 3 4 5 6 7 8 9 10 11\n"); // twice
    ASSERT_EQ(stats.devices.size(), 1u);
    EXPECT_EQ(stats.devices[0].name, "cciss/c0d0");
    EXPECT_EQ(stats.devices[0].msecWeightedTotal, 11u);
    EXPECT_EQ(stats.malformed.count, 5u);
    EXPECT_EQ(stats.malformed.first, "8 1 sda1 100 200 300 400");
}

TEST(HostParsers, MountsDecodeTheKernelsEscapesAndTheReadOnlyOption) {
    const MountTable table = parseMounts(fixture("mounts/mounts"));
    ASSERT_EQ(table.mounts.size(), 13u);
    EXPECT_EQ(table.mounts[0].device, "/dev/sda1");
    EXPECT_EQ(table.mounts[0].mountPoint, "/");
    EXPECT_EQ(table.mounts[0].fsType, "ext4");
    EXPECT_FALSE(table.mounts[0].readOnly);
    EXPECT_EQ(table.mounts[4].mountPoint, "/data");
    EXPECT_TRUE(table.mounts[4].readOnly);
    EXPECT_EQ(table.mounts[7].mountPoint, "/mnt/with space");
    EXPECT_EQ(table.malformed.count, 1u);
    EXPECT_EQ(table.malformed.first, "this line is malformed");
}

TEST(HostParsers, MountsRefuseRelativeMountPointsAndEscapedNul) {
    const MountTable table = parseMounts("# a comment\n"
                                         "/dev/a relative ext4 rw 0 0\n"
                                         "/dev/b /x\\000y ext4 rw 0 0\n"
                                         "/dev/c /short\n"
                                         "/dev/d /tail\\04 ext4 rw 0 0\n"); // an escape cut short stays as written
    ASSERT_EQ(table.mounts.size(), 1u);
    EXPECT_EQ(table.mounts[0].mountPoint, "/tail\\04");
    EXPECT_EQ(table.malformed.count, 3u);
}

TEST(HostParsers, FileNrHoldsAllocatedUnusedAndMax) {
    const auto files = parseFileNr(fixture("machine/proc.2/sys/fs/file-nr"));
    ASSERT_TRUE(files);
    EXPECT_EQ(files->allocated, 920u);
    EXPECT_EQ(files->unused, 0u);
    EXPECT_EQ(files->max, 2466186u);
    EXPECT_FALSE(parseFileNr("1 2"));
    EXPECT_FALSE(parseFileNr("1 2 3 4"));
    EXPECT_FALSE(parseFileNr("1 -2 3"));
}

TEST(HostParsers, PidStatStateIsTheLetterAfterTheLastParenthesis) {
    EXPECT_EQ(parsePidStatState(fixture("machine/proc.2/1/stat")), 'S');
    EXPECT_EQ(parsePidStatState(fixture("machine/proc.2/12195/stat")), 'R');
    EXPECT_EQ(parsePidStatState(fixture("machine/proc.2/4242/stat")), 'Z');
    EXPECT_EQ(parsePidStatState(fixture("machine/proc.2/4243/stat")), 'S'); // named "a) Z (b"
    EXPECT_EQ(parsePidStatState("12 (x) I"), 'I');
    EXPECT_EQ(parsePidStatState("garbage"), '\0');
    EXPECT_EQ(parsePidStatState("12 (x)"), '\0');
    EXPECT_EQ(parsePidStatState("12 (x) 7 1"), '\0');
    EXPECT_EQ(parsePidStatState("12 (x) RS 1"), '\0');
    EXPECT_EQ(parsePidStatState(")( R"), '\0');
}

TEST(HostParsers, EmptyOrBinaryContentFindsNothingAndDoesNotThrow) {
    const std::string junk("\0\xff\n:cpu\0 1 2 3 4\n\n", 18);
    EXPECT_FALSE(parseProcStat(junk).all);
    EXPECT_FALSE(parseLoadAvg(junk));
    EXPECT_FALSE(parseMemInfo(junk).total);
    EXPECT_TRUE(parseDiskStats(junk).devices.empty());
    EXPECT_TRUE(parseMounts(junk).mounts.empty());
    EXPECT_FALSE(parseFileNr(junk));
    EXPECT_EQ(parsePidStatState(junk), '\0');
    EXPECT_FALSE(parseProcStat("").all);
}
