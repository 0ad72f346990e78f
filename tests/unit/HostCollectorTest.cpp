// Specification of source-host's collectors, with exact values computed by hand from the files in
// tests/fixtures/host/<case>/: proc.<n>/ are snapshots of /proc read one after the other, sys/ a
// /sys tree (block devices link into devices/, virtual ones under devices/virtual/, as on a real
// machine). `machine` was recorded on a real host 5 s apart; the others are hand-made edge cases.
// Each test copies its case into a temporary directory and swaps the snapshot in before each
// read, the way the kernel's files change between two collections.
#include "HostCollector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <variant>

namespace fs = std::filesystem;
using namespace agent::host;

namespace {

constexpr std::int64_t kEpoch = 1'700'000'000;

class HostFixture {
public:
    explicit HostFixture(const std::string& name) {
        const fs::path source = fs::path(AGENT_TEST_FIXTURES) / "host" / name;
        if (!fs::is_directory(source)) throw std::runtime_error("no fixture case " + source.string());
        std::string pattern = (fs::temp_directory_path() / "host-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        dir_ = pattern;
        fs::copy(source, dir_, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
    ~HostFixture() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
        if (ec) std::cerr << "cannot remove " << dir_ << ": " << ec.message() << '\n';
    }
    HostFixture(const HostFixture&) = delete;
    HostFixture& operator=(const HostFixture&) = delete;

    // Makes snapshot n what the collectors read next (<dir>/proc).
    void use(int snapshot) const {
        fs::remove_all(dir_ / "proc");
        fs::copy(dir_ / ("proc." + std::to_string(snapshot)), dir_ / "proc", fs::copy_options::recursive);
    }

    HostOptions options() const {
        HostOptions options;
        options.paths.procRoot = (dir_ / "proc").string();
        options.paths.sysRoot = (dir_ / "sys").string();
        options.paths.mountsFile = (dir_ / "mounts").string(); // the `mounts` case's table
        return options;
    }

    const fs::path& dir() const { return dir_; }

private:
    fs::path dir_;
};

struct Round {
    agent::Batch points;
    CollectReport report;
};

// One read at `seconds` on the monotonic clock (the timestamp moves along with it).
Round readAt(GroupCollector& collector, double seconds) {
    Round round;
    collector.collect(Tick{seconds, kEpoch + static_cast<std::int64_t>(seconds)}, round.points, round.report);
    return round;
}

// Reads snapshots 1..n of the fixture at t = 0, step, 2 step ... and returns every round.
std::vector<Round> readSnapshots(const HostFixture& fixture, GroupCollector& collector, int n, double step = 10) {
    std::vector<Round> rounds;
    for (int i = 1; i <= n; ++i) {
        fixture.use(i);
        rounds.push_back(readAt(collector, step * (i - 1)));
    }
    return rounds;
}

std::optional<double> valueOf(const agent::Batch& batch, const std::string& name, const std::string& tagKey = {},
                              const std::string& tagValue = {}) {
    std::optional<double> found;
    for (const agent::Metric& metric : batch) {
        if (metric.name != name) continue;
        if (!tagKey.empty()) {
            const std::string* tag = metric.findTag(tagKey);
            if (tag == nullptr || *tag != tagValue) continue;
        }
        EXPECT_FALSE(found) << name << " published twice";
        EXPECT_EQ(metric.fields.size(), 1u);
        EXPECT_EQ(metric.fields.at(0).key, "value");
        found = std::get<double>(metric.fields.at(0).value);
    }
    return found;
}

std::set<std::string> tagValues(const agent::Batch& batch, const std::string& key) {
    std::set<std::string> values;
    for (const agent::Metric& metric : batch) {
        if (const std::string* tag = metric.findTag(key)) values.insert(*tag);
    }
    return values;
}

std::set<std::string> namesIn(const agent::Batch& batch) {
    std::set<std::string> names;
    for (const agent::Metric& metric : batch)
        names.insert(metric.name);
    return names;
}

std::size_t countContaining(const std::vector<std::string>& lines, const std::string& part) {
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [&](const std::string& line) { return line.find(part) != std::string::npos; }));
}

GroupCollectorPtr collectorFor(Group group, const HostOptions& options, StatvfsFunction statvfs = systemStatvfs) {
    return makeGroupCollector(group, options, std::move(statvfs));
}

// A statvfs that answers from a table: figures per mount point, or an errno.
struct FakeStatvfs {
    std::map<std::string, FsUsage> usage;
    std::map<std::string, int> errors;
    std::vector<std::string> asked;

    StatvfsFunction function() {
        return [this](const std::string& mountPoint, FsUsage& out) {
            asked.push_back(mountPoint);
            if (auto error = errors.find(mountPoint); error != errors.end()) return error->second;
            auto found = usage.find(mountPoint);
            if (found == usage.end()) return ENOENT;
            out = found->second;
            return 0;
        };
    }
};

FsUsage usage(std::uint64_t blocks, std::uint64_t bfree, std::uint64_t bavail, std::uint64_t frsize,
              std::uint64_t files, std::uint64_t ffree, bool readOnly = false) {
    return FsUsage{blocks, bfree, bavail, frsize, files, ffree, readOnly};
}

} // namespace

// ---- cpu -------------------------------------------------------------------------------------

TEST(HostCpu, FirstReadPublishesOnlyTheLoadAverages) {
    HostFixture fixture("machine");
    auto cpu = collectorFor(Group::Cpu, fixture.options());
    fixture.use(1);
    const Round first = readAt(*cpu, 0);
    EXPECT_EQ(namesIn(first.points), (std::set<std::string>{"cpu.loadavg.1", "cpu.loadavg.5", "cpu.loadavg.15"}));
    EXPECT_EQ(valueOf(first.points, "cpu.loadavg.1"), 8.86);
    EXPECT_EQ(valueOf(first.points, "cpu.loadavg.15"), 1.94);
    EXPECT_TRUE(first.report.warnings.empty());
}

TEST(HostCpu, SharesOfThisMachineAreTickDeltasOverTheElapsedTicks) {
    // Two /proc/stat snapshots 5 s apart while a build kept both cores busy: of 1009 ticks, user
    // 638, nice 163, system 181, softirq 7, steal 20, and not one idle tick.
    HostFixture fixture("machine");
    auto cpu = collectorFor(Group::Cpu, fixture.options());
    const agent::Batch batch = readSnapshots(fixture, *cpu, 2, 5).back().points;
    EXPECT_EQ(valueOf(batch, "cpu.user"), 638.0 / 1009.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.nice"), 163.0 / 1009.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.system"), 181.0 / 1009.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.idle"), 0.0);
    EXPECT_EQ(valueOf(batch, "cpu.iowait"), 0.0);
    EXPECT_EQ(valueOf(batch, "cpu.irq"), 0.0);
    EXPECT_EQ(valueOf(batch, "cpu.softirq"), 7.0 / 1009.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.steal"), 20.0 / 1009.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.guest"), 0.0);
    EXPECT_EQ(valueOf(batch, "cpu.idle.core", "core", "0"), 0.0);
    EXPECT_EQ(valueOf(batch, "cpu.idle.core", "core", "1"), 0.0);
    EXPECT_EQ(valueOf(batch, "cpu.switches"), (591187.0 - 577962.0) / 5.0);
    EXPECT_EQ(valueOf(batch, "cpu.loadavg.5"), 4.65);
}

TEST(HostCpu, AStateWhoseCounterWentBackIsLeftOutAndTheOthersStillAddUpToAtMostHundred) {
    // wrap/proc.2: iowait went from 400 to 390 (tickless kernels do this); the other states moved
    // 100 + 10 + 60 + 800 + 2 + 4 + 4 = 980 ticks. Guest (10 ticks) is part of user.
    HostFixture fixture("wrap");
    auto cpu = collectorFor(Group::Cpu, fixture.options());
    const std::vector<Round> rounds = readSnapshots(fixture, *cpu, 2);
    const agent::Batch& batch = rounds[1].points;
    EXPECT_FALSE(valueOf(batch, "cpu.iowait"));
    EXPECT_EQ(valueOf(batch, "cpu.idle"), 800.0 / 980.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.user"), 100.0 / 980.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.nice"), 10.0 / 980.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.system"), 60.0 / 980.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.irq"), 2.0 / 980.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.softirq"), 4.0 / 980.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.steal"), 4.0 / 980.0 * 100.0);
    EXPECT_EQ(valueOf(batch, "cpu.guest"), 10.0 / 980.0 * 100.0);
    double sum = 0;
    for (const char* state : {"cpu.idle", "cpu.user", "cpu.nice", "cpu.system", "cpu.irq", "cpu.softirq", "cpu.steal"})
        sum += valueOf(batch, state).value_or(-1000);
    EXPECT_LE(sum, 100.0 + 1e-9);
    EXPECT_GT(sum, 99.0);
    EXPECT_EQ(countContaining(rounds[1].report.warnings, "cpu.iowait: its counter"), 1u);
}

TEST(HostCpu, ContextSwitchesThatWentBackPublishNothingAndTheNextRoundRatesFromTheNewBaseline) {
    HostFixture fixture("wrap");
    auto cpu = collectorFor(Group::Cpu, fixture.options());
    const std::vector<Round> rounds = readSnapshots(fixture, *cpu, 3);
    EXPECT_FALSE(valueOf(rounds[1].points, "cpu.switches"));     // 1000000 -> 999000
    EXPECT_EQ(valueOf(rounds[2].points, "cpu.switches"), 500.0); // 999000 -> 1004000 in 10 s
    EXPECT_EQ(countContaining(rounds[1].report.warnings, "cpu.switches"), 1u);
}

TEST(HostCpu, ACoreThatAppearsIsABaselineFirstAndEachCoreUsesItsOwnTicks) {
    HostFixture fixture("wrap");
    auto cpu = collectorFor(Group::Cpu, fixture.options());
    const std::vector<Round> rounds = readSnapshots(fixture, *cpu, 3);
    // Core 0 in round 2: 50 + 5 + 30 + 400 + 1 + 2 + 2 ticks forward, its iowait went back.
    EXPECT_EQ(valueOf(rounds[1].points, "cpu.idle.core", "core", "0"), 400.0 / 490.0 * 100.0);
    EXPECT_EQ(valueOf(rounds[1].points, "cpu.idle.core", "core", "1"), 400.0 / 490.0 * 100.0);
    EXPECT_EQ(tagValues(rounds[1].points, "core"), (std::set<std::string>{"0", "1"}));
    // Round 3: core 2 has a baseline now (10 user + 90 idle ticks); iowait forward again.
    EXPECT_EQ(valueOf(rounds[2].points, "cpu.idle.core", "core", "2"), 90.0 / 100.0 * 100.0);
    EXPECT_EQ(valueOf(rounds[2].points, "cpu.idle.core", "core", "0"), 500.0 / 555.0 * 100.0);
    EXPECT_EQ(valueOf(rounds[2].points, "cpu.iowait"), 10.0 / 1110.0 * 100.0);
    EXPECT_EQ(valueOf(rounds[2].points, "cpu.idle"), 1000.0 / 1110.0 * 100.0);
}

TEST(HostCpu, NoTickBetweenTwoReadsPublishesNoShares) {
    HostFixture fixture("wrap");
    auto cpu = collectorFor(Group::Cpu, fixture.options());
    fixture.use(1);
    readAt(*cpu, 0);
    const Round again = readAt(*cpu, 0); // same file, same instant
    EXPECT_FALSE(valueOf(again.points, "cpu.idle"));
    EXPECT_FALSE(valueOf(again.points, "cpu.switches"));
    EXPECT_TRUE(valueOf(again.points, "cpu.loadavg.1"));
}

// ---- mem -------------------------------------------------------------------------------------

TEST(HostMem, UsedIsTotalMinusMemAvailableAsTheGoAgentComputedIt) {
    HostFixture fixture("machine");
    auto mem = collectorFor(Group::Mem, fixture.options());
    fixture.use(2);
    const agent::Batch batch = readAt(*mem, 0).points;
    const double total = 24684092.0 * 1024;
    const double available = 23207508.0 * 1024;
    EXPECT_EQ(valueOf(batch, "mem.total"), total);
    EXPECT_EQ(valueOf(batch, "mem.free"), available);
    EXPECT_EQ(valueOf(batch, "mem.used"), total - available);
    EXPECT_EQ(valueOf(batch, "mem.buffers"), 18436.0 * 1024);
    EXPECT_EQ(valueOf(batch, "mem.cached"), 828872.0 * 1024);
    EXPECT_EQ(valueOf(batch, "mem.used.percent"), (total - available) / total * 100.0);
    EXPECT_EQ(valueOf(batch, "mem.swap.used.percent"), 0.0); // no swap at all
}

TEST(HostMem, WithoutMemAvailableUsedIsTotalMinusFreeBuffersAndCached) {
    HostFixture fixture("machine");
    HostOptions options = fixture.options();
    options.memUseAvailable = false;
    auto mem = collectorFor(Group::Mem, options);
    fixture.use(2);
    const agent::Batch batch = readAt(*mem, 0).points;
    const double total = 24684092.0 * 1024;
    const double free = (22534156.0 + 18436.0 + 828872.0) * 1024;
    EXPECT_EQ(valueOf(batch, "mem.free"), free);
    EXPECT_EQ(valueOf(batch, "mem.used"), total - free);
    EXPECT_EQ(valueOf(batch, "mem.used.percent"), (total - free) / total * 100.0);
}

TEST(HostMem, AnOldKernelWithoutMemAvailableGetsTheClassicFormulaAndSwapIsUsedOverTotal) {
    HostFixture fixture("missing");
    fixture.use(1);
    std::ofstream(fixture.dir() / "proc" / "meminfo") << "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\n"
                                                         "Cached: 250 kB\nSwapTotal: 400 kB\nSwapFree: 300 kB\n";
    auto mem = collectorFor(Group::Mem, fixture.options());
    const agent::Batch batch = readAt(*mem, 0).points;
    EXPECT_EQ(valueOf(batch, "mem.used"), 600.0 * 1024);
    EXPECT_EQ(valueOf(batch, "mem.free"), 400.0 * 1024);
    EXPECT_EQ(valueOf(batch, "mem.used.percent"), 600.0 * 1024 / (1000.0 * 1024) * 100.0);
    EXPECT_EQ(valueOf(batch, "mem.swap.used.percent"), 100.0 * 1024 / (400.0 * 1024) * 100.0);
}

TEST(HostMem, FiguresThatCannotBeTrueNeverGiveANegativeUsedOrMoreThanHundredPercent) {
    HostFixture fixture("missing");
    fixture.use(1);
    std::ofstream(fixture.dir() / "proc" / "meminfo")
        << "MemTotal: 1000 kB\nMemFree: 900 kB\nMemAvailable: 5000 kB\n"
           "Buffers: 500 kB\nCached: 500 kB\nSwapTotal: 10 kB\nSwapFree: 20 kB\n";
    auto mem = collectorFor(Group::Mem, fixture.options());
    const agent::Batch batch = readAt(*mem, 0).points;
    EXPECT_EQ(valueOf(batch, "mem.used"), 0.0);
    EXPECT_EQ(valueOf(batch, "mem.free"), 1000.0 * 1024);
    EXPECT_EQ(valueOf(batch, "mem.used.percent"), 0.0);
    EXPECT_EQ(valueOf(batch, "mem.swap.used.percent"), 0.0);
}

// ---- disk ------------------------------------------------------------------------------------

TEST(HostDisk, RatesOfThisMachineAreCounterDeltasOverSecondsAndVirtualDevicesAreSkipped) {
    HostFixture fixture("machine");
    auto disk = collectorFor(Group::Disk, fixture.options());
    const std::vector<Round> rounds = readSnapshots(fixture, *disk, 2, 5);
    // The first read: a baseline, only the gauge. loop0..7 and zram0 are virtual.
    EXPECT_EQ(namesIn(rounds[0].points), std::set<std::string>{"disk.io.ios_in_progress"});
    const agent::Batch& batch = rounds[1].points;
    EXPECT_EQ(tagValues(batch, "device"), std::set<std::string>{"vda"});
    auto vda = [&](const std::string& name) { return valueOf(batch, "disk.io." + name, "device", "vda"); };
    EXPECT_EQ(vda("read_requests"), 15.0 / 5);
    EXPECT_EQ(vda("read_merged"), 0.0);
    EXPECT_EQ(vda("read_sectors"), 136.0 / 5);
    EXPECT_EQ(vda("msec_read"), 3.0 / 5);
    EXPECT_EQ(vda("write_requests"), 3449.0 / 5);
    EXPECT_EQ(vda("write_merged"), 285.0 / 5);
    EXPECT_EQ(vda("write_sectors"), 111832.0 / 5);
    EXPECT_EQ(vda("msec_write"), 708.0 / 5);
    EXPECT_EQ(vda("ios_in_progress"), 0.0);
    EXPECT_EQ(vda("msec_total"), 408.0 / 5);
    EXPECT_EQ(vda("msec_weighted_total"), 999.0 / 5);
    EXPECT_EQ(vda("await"), (3.0 + 708.0) / (15.0 + 3449.0));
    EXPECT_EQ(vda("util"), 408.0 / (5 * 1000.0) * 100.0);
    EXPECT_EQ(batch.size(), 13u);
}

TEST(HostDisk, ACounterThatWrappedPublishesNothingForItThatRoundAndTheRestAsUsual) {
    // sda's msec_weighted_total is a 32-bit counter: 4294967000 -> 704 is a wrap.
    HostFixture fixture("wrap");
    auto disk = collectorFor(Group::Disk, fixture.options());
    const std::vector<Round> rounds = readSnapshots(fixture, *disk, 2);
    const agent::Batch& batch = rounds[1].points;
    EXPECT_EQ(tagValues(batch, "device"), std::set<std::string>{"sda"}); // no partition, no dm-0, no loop0
    EXPECT_FALSE(valueOf(batch, "disk.io.msec_weighted_total", "device", "sda"));
    EXPECT_EQ(valueOf(batch, "disk.io.read_requests", "device", "sda"), 10.0);
    EXPECT_EQ(valueOf(batch, "disk.io.write_requests", "device", "sda"), 30.0);
    EXPECT_EQ(valueOf(batch, "disk.io.read_sectors", "device", "sda"), 160.0);
    EXPECT_EQ(valueOf(batch, "disk.io.await", "device", "sda"), (60.0 + 120.0) / (100.0 + 300.0));
    EXPECT_EQ(valueOf(batch, "disk.io.util", "device", "sda"), 1000.0 / (10 * 1000.0) * 100.0);
    EXPECT_EQ(valueOf(batch, "disk.io.ios_in_progress", "device", "sda"), 2.0);
    ASSERT_EQ(countContaining(rounds[1].report.warnings, "block device sda: counters went back"), 1u);
    EXPECT_EQ(countContaining(rounds[1].report.warnings, "disk.io.msec_weighted_total"), 1u);
    for (const agent::Metric& metric : batch)
        EXPECT_GE(std::get<double>(metric.fields.at(0).value), 0.0) << metric.name;
}

TEST(HostDisk, UtilIsCappedAtHundredAndAwaitIsZeroWithoutRequests) {
    HostFixture fixture("wrap");
    auto disk = collectorFor(Group::Disk, fixture.options());
    const agent::Batch batch = readSnapshots(fixture, *disk, 3).back().points;
    // 12000 ms busy in 10 s: the kernel's io_ticks ran ahead of the clock.
    EXPECT_EQ(valueOf(batch, "disk.io.util", "device", "sda"), 100.0);
    EXPECT_EQ(valueOf(batch, "disk.io.await", "device", "sda"), 0.0);
    EXPECT_EQ(valueOf(batch, "disk.io.msec_weighted_total", "device", "sda"), 100.0); // from the new baseline
    EXPECT_EQ(valueOf(batch, "disk.io.read_requests", "device", "sda"), 0.0);
}

TEST(HostDisk, PartitionsAndVirtualDevicesAreWatchedWhenConfigured) {
    HostFixture fixture("wrap");
    HostOptions options = fixture.options();
    options.diskPartitions = true;
    options.diskVirtual = true;
    auto disk = collectorFor(Group::Disk, options);
    const agent::Batch batch = readSnapshots(fixture, *disk, 2).back().points;
    EXPECT_EQ(tagValues(batch, "device"), (std::set<std::string>{"sda", "sda1", "dm-0", "loop0"}));
    EXPECT_EQ(valueOf(batch, "disk.io.read_requests", "device", "dm-0"), 5.0);
    EXPECT_EQ(valueOf(batch, "disk.io.msec_weighted_total", "device", "sda1"), 120.0);
}

TEST(HostDisk, DeviceNamePatternsNarrowWhatTheOtherKeysAllow) {
    HostFixture fixture("wrap");
    HostOptions options = fixture.options();
    options.diskPartitions = true;
    options.diskVirtual = true;
    options.devices = NameFilter{{"sd*", "dm-*"}, {"sda1"}};
    auto disk = collectorFor(Group::Disk, options);
    const agent::Batch batch = readSnapshots(fixture, *disk, 2).back().points;
    EXPECT_EQ(tagValues(batch, "device"), (std::set<std::string>{"sda", "dm-0"}));
}

TEST(HostDisk, ADeviceThatDisappearsIsForgottenAndStartsWithABaselineWhenItComesBack) {
    HostFixture fixture("devicegone");
    auto disk = collectorFor(Group::Disk, fixture.options());
    const std::vector<Round> rounds = readSnapshots(fixture, *disk, 3);
    EXPECT_EQ(tagValues(rounds[1].points, "device"), std::set<std::string>{"sda"});
    EXPECT_EQ(countContaining(rounds[1].report.notices, "block device sdb is gone"), 1u);
    EXPECT_EQ(valueOf(rounds[1].points, "disk.io.read_requests", "device", "sda"), 5.0);
    // sdb is back with smaller counters: a new device, so a baseline, not a wrap.
    EXPECT_EQ(valueOf(rounds[2].points, "disk.io.ios_in_progress", "device", "sdb"), 0.0);
    EXPECT_FALSE(valueOf(rounds[2].points, "disk.io.read_requests", "device", "sdb"));
    EXPECT_EQ(countContaining(rounds[2].report.notices, "block device sdb found"), 1u);
    EXPECT_TRUE(rounds[2].report.warnings.empty());
    EXPECT_EQ(valueOf(rounds[2].points, "disk.io.read_requests", "device", "sda"), 5.0);
}

TEST(HostDisk, WithoutSysfsEveryDeviceCountsAsAWholeDiskWithOneWarningEach) {
    HostFixture fixture("devicegone");
    HostOptions options = fixture.options();
    options.paths.sysRoot = (fixture.dir() / "no-sys").string();
    auto disk = collectorFor(Group::Disk, options);
    const std::vector<Round> rounds = readSnapshots(fixture, *disk, 2);
    EXPECT_EQ(countContaining(rounds[0].report.warnings, "cannot classify block device"), 2u);
    EXPECT_TRUE(rounds[1].report.warnings.empty());
    EXPECT_TRUE(valueOf(rounds[1].points, "disk.io.util", "device", "sda"));
}

// ---- fs --------------------------------------------------------------------------------------

class HostFs : public ::testing::Test {
protected:
    HostFs() : fixture_("mounts") {
        statvfs_.usage["/"] = usage(1000, 400, 350, 4096, 500, 100);
        statvfs_.usage["/data"] = usage(2000, 1000, 1000, 1024, 100, 100);
        statvfs_.usage["/srv/remounted"] = usage(100, 0, 0, 4096, 10, 5, true); // ext4 remounted ro after errors
        statvfs_.usage["/mnt/with space"] = usage(10, 5, 5, 512, 10, 0);
        statvfs_.usage["/mnt/nfs"] = usage(1u << 30, 1u << 29, 1u << 29, 1u << 20, 0, 0);
        statvfs_.usage["/boot/efi"] = usage(100, 90, 90, 4096, 0, 0); // vfat: no inodes
        statvfs_.errors["/mnt/gone"] = ENOENT;
    }

    HostFixture fixture_;
    FakeStatvfs statvfs_;
};

TEST_F(HostFs, SpaceIsBlocksTimesFragmentSizeAndUsedPercentIsAsDfShowsIt) {
    auto fsCollector = collectorFor(Group::Fs, fixture_.options(), statvfs_.function());
    const agent::Batch batch = readAt(*fsCollector, 0).points;
    auto root = [&](const std::string& name) { return valueOf(batch, name, "mount", "/"); };
    EXPECT_EQ(root("fs.space.total"), 1000.0 * 4096);
    EXPECT_EQ(root("fs.space.used"), 600.0 * 4096);
    EXPECT_EQ(root("fs.space.free"), 350.0 * 4096);
    EXPECT_EQ(root("fs.space.used.percent"), 600.0 * 4096 / (600.0 * 4096 + 350.0 * 4096) * 100.0);
    EXPECT_EQ(root("fs.inodes.used.percent"), 400.0 / 500.0 * 100.0);
    EXPECT_EQ(root("fs.files.rw"), 1.0);
    for (const agent::Metric& metric : batch) {
        if (*metric.findTag("mount") == "/") {
            EXPECT_EQ(*metric.findTag("fstype"), "ext4");
        }
    }
}

TEST_F(HostFs, ReadOnlyFileSystemsReportZeroWhetherTheMountOrStatvfsSaysSo) {
    auto fsCollector = collectorFor(Group::Fs, fixture_.options(), statvfs_.function());
    const agent::Batch batch = readAt(*fsCollector, 0).points;
    EXPECT_EQ(valueOf(batch, "fs.files.rw", "mount", "/data"), 0.0);          // mounted with "ro"
    EXPECT_EQ(valueOf(batch, "fs.files.rw", "mount", "/srv/remounted"), 0.0); // ST_RDONLY from statvfs
    EXPECT_EQ(valueOf(batch, "fs.files.rw", "mount", "/mnt/nfs"), 1.0);
    // A full file system: nothing left for users, 100 % used.
    EXPECT_EQ(valueOf(batch, "fs.space.used.percent", "mount", "/srv/remounted"), 100.0);
}

TEST_F(HostFs, PseudoFileSystemsAndBindMountsAreSkippedAndEscapedNamesDecoded) {
    auto fsCollector = collectorFor(Group::Fs, fixture_.options(), statvfs_.function());
    const Round round = readAt(*fsCollector, 0);
    // proc, sysfs, tmpfs, overlay and fuse.sshfs are excluded; the bind mount of /dev/sda1 is /.
    EXPECT_EQ(tagValues(round.points, "mount"),
              (std::set<std::string>{"/", "/data", "/srv/remounted", "/mnt/with space", "/mnt/nfs", "/boot/efi"}));
    EXPECT_EQ(tagValues(round.points, "fstype"), (std::set<std::string>{"ext4", "xfs", "nfs4", "vfat"}));
    EXPECT_EQ(std::count(statvfs_.asked.begin(), statvfs_.asked.end(), "/var/lib/kubelet/pods/bind"), 0);
    EXPECT_FALSE(valueOf(round.points, "fs.inodes.used.percent", "mount", "/boot/efi")); // no inodes at all
    EXPECT_EQ(valueOf(round.points, "fs.inodes.used.percent", "mount", "/mnt/with space"), 100.0);
}

TEST_F(HostFs, AMountStatvfsFailsOnIsSkippedWithOneWarningAndAMalformedLineIsSaidOnce) {
    auto fsCollector = collectorFor(Group::Fs, fixture_.options(), statvfs_.function());
    const Round first = readAt(*fsCollector, 0);
    const Round second = readAt(*fsCollector, 10);
    EXPECT_EQ(countContaining(first.report.warnings, "statvfs /mnt/gone: No such file or directory"), 1u);
    EXPECT_EQ(countContaining(first.report.warnings, "malformed line(s), the first: 'this line is malformed'"), 1u);
    EXPECT_TRUE(second.report.warnings.empty());
    EXPECT_EQ(first.points.size(), second.points.size());

    statvfs_.errors.clear();
    statvfs_.usage["/mnt/gone"] = usage(1, 0, 0, 1, 1, 0);
    const Round third = readAt(*fsCollector, 20);
    EXPECT_EQ(countContaining(third.report.notices, "statvfs /mnt/gone works again"), 1u);
    EXPECT_EQ(valueOf(third.points, "fs.space.total", "mount", "/mnt/gone"), 1.0);
}

TEST_F(HostFs, TypeAndMountPointPatternsChooseTheFileSystems) {
    HostOptions options = fixture_.options();
    options.fsTypes = NameFilter{{"ext*", "xfs"}, {}};
    options.mountPoints = NameFilter{{}, {"/srv/*"}};
    auto fsCollector = collectorFor(Group::Fs, options, statvfs_.function());
    const agent::Batch batch = readAt(*fsCollector, 0).points;
    // /mnt/gone passes the filters too, but its statvfs fails.
    EXPECT_EQ(tagValues(batch, "mount"), (std::set<std::string>{"/", "/data", "/mnt/with space"}));
    EXPECT_EQ(std::count(statvfs_.asked.begin(), statvfs_.asked.end(), "/mnt/gone"), 1);
}

TEST_F(HostFs, ImpossibleStatvfsFiguresNeverGiveANegativeOrMoreThanHundredPercent) {
    statvfs_.usage["/"] = usage(100, 500, 0, 4096, 10, 50); // more free blocks and inodes than there are
    auto fsCollector = collectorFor(Group::Fs, fixture_.options(), statvfs_.function());
    const agent::Batch batch = readAt(*fsCollector, 0).points;
    EXPECT_EQ(valueOf(batch, "fs.space.used", "mount", "/"), 0.0);
    EXPECT_FALSE(valueOf(batch, "fs.space.used.percent", "mount", "/")); // 0 of 0
    EXPECT_EQ(valueOf(batch, "fs.inodes.used.percent", "mount", "/"), 0.0);
}

TEST(HostFsSystem, TheRealStatvfsOfTheRootFileSystemHasSpace) {
    FsUsage root;
    ASSERT_EQ(systemStatvfs("/", root), 0);
    EXPECT_GT(root.blocks, 0u);
    EXPECT_GT(root.fragmentSize, 0u);
    FsUsage none;
    EXPECT_EQ(systemStatvfs("/no/such/mount/point", none), ENOENT);
}

// ---- ps, kernel, alive -----------------------------------------------------------------------

TEST(HostPs, CountsEveryProcessDirectoryByItsState) {
    // 8 processes recorded on the machine (2 running) plus a zombie, one named "a) Z (b" that
    // sleeps, and one whose stat is garbage (not counted); "self" and "sys" are not processes.
    HostFixture fixture("machine");
    auto ps = collectorFor(Group::Ps, fixture.options());
    fixture.use(2);
    const agent::Batch batch = readAt(*ps, 0).points;
    EXPECT_EQ(valueOf(batch, "ps.total.num"), 10.0);
    EXPECT_EQ(valueOf(batch, "ps.running.num"), 2.0);
    EXPECT_EQ(valueOf(batch, "ps.zombies.num"), 1.0);
}

TEST(HostKernel, FileHandlesOfThisMachine) {
    HostFixture fixture("machine");
    auto kernel = collectorFor(Group::Kernel, fixture.options());
    fixture.use(2);
    const agent::Batch batch = readAt(*kernel, 0).points;
    EXPECT_EQ(valueOf(batch, "kernel.files.allocated"), 920.0);
    EXPECT_EQ(valueOf(batch, "kernel.files.max"), 2466186.0);
    EXPECT_EQ(valueOf(batch, "kernel.files.left"), 2466186.0 - 920.0);
    EXPECT_EQ(valueOf(batch, "kernel.files.allocated.percent"), 920.0 / 2466186.0 * 100.0);
}

TEST(HostKernel, MoreAllocatedThanTheMaximumLeavesZeroAndHundredPercent) {
    HostFixture fixture("missing");
    fixture.use(1);
    fs::create_directories(fixture.dir() / "proc" / "sys" / "fs");
    std::ofstream(fixture.dir() / "proc" / "sys" / "fs" / "file-nr") << "1200\t0\t1000\n";
    auto kernel = collectorFor(Group::Kernel, fixture.options());
    const agent::Batch batch = readAt(*kernel, 0).points;
    EXPECT_EQ(valueOf(batch, "kernel.files.left"), 0.0);
    EXPECT_EQ(valueOf(batch, "kernel.files.allocated.percent"), 100.0);
}

TEST(HostAlive, IsOneEveryRoundFromTheFirst) {
    auto alive = collectorFor(Group::Alive, HostOptions{});
    EXPECT_EQ(valueOf(readAt(*alive, 0).points, "agent.alive"), 1.0);
    EXPECT_EQ(valueOf(readAt(*alive, 10).points, "agent.alive"), 1.0);
}

// ---- every group together --------------------------------------------------------------------

TEST(HostCollector, FilesMissingOnThisKernelAreSkippedWithOneWarningEachNotEveryRound) {
    // proc.1 of `missing` holds only stat: no loadavg, meminfo, diskstats, file-nr or mounts.
    HostFixture fixture("missing");
    fixture.use(1);
    HostCollector collector(std::vector<Group>(kAllGroups.begin(), kAllGroups.end()), fixture.options());
    std::vector<CollectReport> reports;
    agent::Batch last;
    for (int round = 0; round < 3; ++round) {
        last.clear();
        reports.push_back(collector.collectAll(Tick{10.0 * round, kEpoch + 10 * round}, last));
    }
    for (const char* file : {"/loadavg", "/meminfo", "/diskstats", "/sys/fs/file-nr", "/mounts"}) {
        EXPECT_EQ(countContaining(reports[0].warnings, std::string(file) + ": No such file or directory"), 1u) << file;
    }
    EXPECT_EQ(reports[0].warnings.size(), 5u);
    EXPECT_TRUE(reports[1].warnings.empty());
    EXPECT_TRUE(reports[2].warnings.empty());
    // What exists is still collected: CPU shares, the (empty) process list, the heartbeat.
    EXPECT_EQ(valueOf(last, "cpu.idle"), std::nullopt); // no tick passed: the same stat every round
    EXPECT_EQ(valueOf(last, "ps.total.num"), 0.0);
    EXPECT_EQ(valueOf(last, "agent.alive"), 1.0);

    std::ofstream(fixture.dir() / "proc" / "meminfo") << "MemTotal: 1000 kB\nMemFree: 100 kB\n";
    agent::Batch batch;
    const CollectReport back = collector.collect(Group::Mem, Tick{30, kEpoch + 30}, batch);
    EXPECT_EQ(countContaining(back.notices, "/meminfo again"), 1u);
    EXPECT_EQ(valueOf(batch, "mem.total"), 1024000.0);
}

TEST(HostCollector, EveryPointIsSingleValuedWithTheTicksTimestampAndNoNamespace) {
    HostFixture fixture("machine");
    HostOptions options = fixture.options();
    options.paths.mountsFile = (fixture.dir() / "proc" / "self" / "mounts").string();
    FakeStatvfs statvfs;
    statvfs.usage["/"] = usage(1000, 400, 350, 4096, 500, 100);
    HostCollector collector(std::vector<Group>(kAllGroups.begin(), kAllGroups.end()), options, statvfs.function());
    agent::Batch batch;
    fixture.use(1);
    collector.collectAll(Tick{0, kEpoch}, batch);
    batch.clear();
    fixture.use(2);
    collector.collectAll(Tick{5, kEpoch + 5}, batch);
    std::set<std::string> groups;
    for (const agent::Metric& metric : batch) {
        EXPECT_EQ(metric.ns, "");
        EXPECT_EQ(metric.timestamp, kEpoch + 5);
        ASSERT_EQ(metric.fields.size(), 1u);
        EXPECT_TRUE(std::holds_alternative<double>(metric.fields[0].value));
        groups.insert(metric.name.substr(0, metric.name.find('.')));
    }
    EXPECT_EQ(groups, (std::set<std::string>{"cpu", "mem", "disk", "fs", "ps", "kernel", "agent"}));
    EXPECT_EQ(tagValues(batch, "mount"), std::set<std::string>{"/"}); // /run/netns is a bind mount of it
}

TEST(HostCollector, CollectingAGroupThatIsNotEnabledIsABug) {
    HostCollector collector({Group::Alive}, HostOptions{});
    agent::Batch batch;
    EXPECT_THROW(collector.collect(Group::Cpu, Tick{}, batch), std::invalid_argument);
    EXPECT_EQ(collector.collectAll(Tick{}, batch).warnings.size(), 0u);
    EXPECT_EQ(batch.size(), 1u);
}

TEST(HostCollector, GroupNamesRoundTrip) {
    for (Group group : kAllGroups)
        EXPECT_EQ(groupByName(groupName(group)), group);
    EXPECT_FALSE(groupByName("gpu"));
}
