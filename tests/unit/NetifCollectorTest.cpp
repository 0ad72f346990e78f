// Specification of source-netif's collector: the /proc/net/dev parser and the rate rules, checked
// with exact values over the files in tests/fixtures/netif/<case>/ (proc_net_dev_<n> snapshots and
// a sys/class/net/<if>/speed tree). Each test copies its case into a temporary directory and
// swaps snapshots in between reads, the way the kernel's file changes between two collections.
#include "NetifCollector.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

namespace fs = std::filesystem;
using agent::netif::CollectReport;
using agent::netif::NetifCollector;
using agent::netif::parseProcNetDev;

namespace {

const std::vector<std::string> kDefaultPrefixes = {"eth", "en"};

// One fixture case copied into a fresh temporary directory, removed again at the end.
class FixtureCase {
public:
    explicit FixtureCase(const std::string& name) {
        const fs::path source = fs::path(AGENT_TEST_FIXTURES) / "netif" / name;
        if (!fs::is_directory(source)) throw std::runtime_error("no fixture case " + source.string());
        std::string pattern = (fs::temp_directory_path() / "netif-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        dir_ = pattern;
        fs::copy(source, dir_, fs::copy_options::recursive);
    }
    ~FixtureCase() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
        if (ec) std::cerr << "cannot remove " << dir_ << ": " << ec.message() << '\n';
    }
    FixtureCase(const FixtureCase&) = delete;
    FixtureCase& operator=(const FixtureCase&) = delete;

    std::string procNetDev() const { return (dir_ / "proc_net_dev").string(); }
    std::string sysClassNet() const { return (dir_ / "sys" / "class" / "net").string(); }
    const fs::path& dir() const { return dir_; }

    // Makes snapshot n what the collector reads next.
    void use(int snapshot) const {
        fs::copy_file(dir_ / ("proc_net_dev_" + std::to_string(snapshot)), procNetDev(),
                      fs::copy_options::overwrite_existing);
    }

    NetifCollector collector(std::vector<std::string> prefixes = kDefaultPrefixes) const {
        return NetifCollector(procNetDev(), sysClassNet(), std::move(prefixes));
    }

private:
    fs::path dir_;
};

std::optional<double> valueOf(const agent::Batch& batch, const std::string& name, const std::string& iface) {
    for (const agent::Metric& metric : batch) {
        const std::string* tag = metric.findTag("interface");
        if (metric.name != name || tag == nullptr || *tag != iface) continue;
        EXPECT_EQ(metric.fields.size(), 1u);
        EXPECT_EQ(metric.fields.at(0).key, "value");
        return std::get<double>(metric.fields.at(0).value);
    }
    return std::nullopt;
}

std::set<std::string> interfacesIn(const agent::Batch& batch) {
    std::set<std::string> names;
    for (const agent::Metric& metric : batch) {
        if (const std::string* tag = metric.findTag("interface")) names.insert(*tag);
    }
    return names;
}

std::size_t pointsFor(const agent::Batch& batch, const std::string& iface) {
    std::size_t count = 0;
    for (const agent::Metric& metric : batch) {
        const std::string* tag = metric.findTag("interface");
        if (tag != nullptr && *tag == iface) ++count;
    }
    return count;
}

// Reads snapshots 1..n at t = 0, 10, 20 ... and returns the batch of the last read.
agent::Batch readSnapshots(const FixtureCase& fixture, NetifCollector& collector, int n) {
    agent::Batch batch;
    for (int i = 1; i <= n; ++i) {
        batch.clear();
        fixture.use(i);
        collector.collect(10.0 * (i - 1), 1'700'000'000 + 10 * (i - 1), batch);
    }
    return batch;
}

} // namespace

TEST(NetifCollector, ParserSkipsTheTwoHeaderLinesWithoutCountingThem) {
    const auto parsed = parseProcNetDev(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo "
        "colls carrier compressed\n"
        "    lo:    3267      29    0    0    0     0          0         0     3267      29    0    0    0     "
        "0       0          0\n");
    ASSERT_EQ(parsed.interfaces.size(), 1u);
    EXPECT_EQ(parsed.interfaces[0].name, "lo");
    EXPECT_EQ(parsed.interfaces[0].rxBytes, 3267u);
    EXPECT_EQ(parsed.interfaces[0].txPackets, 29u);
    EXPECT_EQ(parsed.malformedLines, 0u);
}

TEST(NetifCollector, ParserReadsTheEightCountersItNeedsFromTheirColumns) {
    const auto parsed = parseProcNetDev("eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16");
    ASSERT_EQ(parsed.interfaces.size(), 1u);
    const auto& c = parsed.interfaces[0];
    EXPECT_EQ(c.rxBytes, 1u);
    EXPECT_EQ(c.rxPackets, 2u);
    EXPECT_EQ(c.rxErrors, 3u);
    EXPECT_EQ(c.rxDropped, 4u);
    EXPECT_EQ(c.txBytes, 9u);
    EXPECT_EQ(c.txPackets, 10u);
    EXPECT_EQ(c.txErrors, 11u);
    EXPECT_EQ(c.txDropped, 12u);
}

TEST(NetifCollector, ParserReadsANameGluedToItsFirstCounter) {
    const auto parsed = parseProcNetDev("  eth0:4398046511104 3000000000 0 0 0 0 0 0 2199023255552 1500000000 "
                                        "0 0 0 0 0 0\r\nenp0s31f6:18446744073709551615 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0");
    ASSERT_EQ(parsed.interfaces.size(), 2u);
    EXPECT_EQ(parsed.interfaces[0].name, "eth0");
    EXPECT_EQ(parsed.interfaces[0].rxBytes, 4398046511104u);
    EXPECT_EQ(parsed.interfaces[0].txBytes, 2199023255552u);
    EXPECT_EQ(parsed.interfaces[1].name, "enp0s31f6");
    EXPECT_EQ(parsed.interfaces[1].rxBytes, 18446744073709551615u);
    EXPECT_EQ(parsed.malformedLines, 0u);
}

TEST(NetifCollector, ParserSkipsAndCountsMalformedLines) {
    FixtureCase fixture("malformed");
    fixture.use(1);
    std::string content;
    {
        std::ifstream in(fixture.procNetDev());
        content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const auto parsed = parseProcNetDev(content);
    ASSERT_EQ(parsed.interfaces.size(), 2u);
    EXPECT_EQ(parsed.interfaces[0].name, "eth0");
    EXPECT_EQ(parsed.interfaces[0].rxBytes, 100u); // the first eth0 line; the duplicate is malformed
    EXPECT_EQ(parsed.interfaces[1].name, "eth5");
    // No colon, too few counters, a non-number, no name, an overflow, a negative, a duplicate.
    EXPECT_EQ(parsed.malformedLines, 7u);
    EXPECT_EQ(parsed.firstMalformedLine, "this line has no colon");
}

TEST(NetifCollector, ParserRefusesNamesThatWouldLeaveTheSysDirectory) {
    const auto parsed = parseProcNetDev("..: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                                        "a/b: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
    EXPECT_TRUE(parsed.interfaces.empty());
    EXPECT_EQ(parsed.malformedLines, 2u);
}

TEST(NetifCollector, ParserOfEmptyOrGarbageContentFindsNothingAndDoesNotThrow) {
    EXPECT_TRUE(parseProcNetDev("").interfaces.empty());
    EXPECT_TRUE(parseProcNetDev(std::string("\0\0:\xff\n", 5)).interfaces.empty());
    EXPECT_EQ(parseProcNetDev("eth0:").malformedLines, 1u);
}

TEST(NetifCollector, FirstReadPublishesOnlyABaseline) {
    FixtureCase fixture("speed1000");
    NetifCollector collector = fixture.collector();
    agent::Batch batch;
    fixture.use(1);
    const CollectReport report = collector.collect(0.0, 1'700'000'000, batch);
    EXPECT_TRUE(batch.empty());
    EXPECT_TRUE(report.error.empty());
    EXPECT_EQ(collector.interfaceCount(), 1u);
}

TEST(NetifCollector, RatesOfThisMachineAreByteDeltasTimesEightOverElapsedSeconds) {
    // Two snapshots of a real /proc/net/dev; eth0 gained 206 bytes, 3 packets in and 190 bytes,
    // 3 packets out. Its speed file holds -1, as a virtual NIC's does.
    FixtureCase fixture("host");
    NetifCollector collector = fixture.collector();
    const agent::Batch batch = readSnapshots(fixture, collector, 2);
    EXPECT_EQ(interfacesIn(batch), std::set<std::string>{"eth0"});
    EXPECT_EQ(valueOf(batch, "net.in", "eth0"), 206.0 * 8 / 10);
    EXPECT_EQ(valueOf(batch, "net.out", "eth0"), 190.0 * 8 / 10);
    EXPECT_EQ(valueOf(batch, "net.in.packets", "eth0"), 3.0 / 10);
    EXPECT_EQ(valueOf(batch, "net.out.packets", "eth0"), 3.0 / 10);
    EXPECT_EQ(valueOf(batch, "net.in.errors", "eth0"), 0.0);
    EXPECT_EQ(pointsFor(batch, "eth0"), 8u);
}

TEST(NetifCollector, EveryRateIsExactAndEveryPointIsSingleValuedWithTheGivenTimestamp) {
    FixtureCase fixture("speed1000");
    NetifCollector collector = fixture.collector();
    const agent::Batch batch = readSnapshots(fixture, collector, 2);
    // eth0 over 10 s: +125 MB in, +250 MB out, +100000/+50000 packets, +5/+0 errors, +30/+1 drops.
    EXPECT_EQ(valueOf(batch, "net.in", "eth0"), 100'000'000.0);
    EXPECT_EQ(valueOf(batch, "net.out", "eth0"), 200'000'000.0);
    EXPECT_EQ(valueOf(batch, "net.in.packets", "eth0"), 10'000.0);
    EXPECT_EQ(valueOf(batch, "net.out.packets", "eth0"), 5'000.0);
    EXPECT_EQ(valueOf(batch, "net.in.errors", "eth0"), 0.5);
    EXPECT_EQ(valueOf(batch, "net.out.errors", "eth0"), 0.0);
    EXPECT_EQ(valueOf(batch, "net.in.dropped", "eth0"), 3.0);
    EXPECT_EQ(valueOf(batch, "net.out.dropped", "eth0"), 0.1);
    for (const agent::Metric& metric : batch) {
        EXPECT_EQ(metric.ns, "");
        EXPECT_EQ(metric.timestamp, 1'700'000'010);
        EXPECT_EQ(metric.tags.size(), 1u);
    }
}

TEST(NetifCollector, KnownLinkSpeedAddsSpeedAndExactPercentages) {
    FixtureCase fixture("speed1000");
    NetifCollector collector = fixture.collector();
    const agent::Batch batch = readSnapshots(fixture, collector, 2);
    EXPECT_EQ(valueOf(batch, "net.speed", "eth0"), 1000.0);
    EXPECT_EQ(valueOf(batch, "net.in.percent", "eth0"), 10.0);
    EXPECT_EQ(valueOf(batch, "net.out.percent", "eth0"), 20.0);
    EXPECT_EQ(pointsFor(batch, "eth0"), 11u);
}

TEST(NetifCollector, UnknownSpeedPublishesNoSpeedOrPercent) {
    // eth0's speed file holds -1, eth1 has none, eth2's holds a word.
    FixtureCase fixture("speedunknown");
    NetifCollector collector = fixture.collector();
    const agent::Batch batch = readSnapshots(fixture, collector, 2);
    for (const std::string iface : {"eth0", "eth1", "eth2"}) {
        EXPECT_EQ(valueOf(batch, "net.in", iface), 800.0) << iface;
        EXPECT_EQ(valueOf(batch, "net.out", iface), 1600.0) << iface;
        EXPECT_FALSE(valueOf(batch, "net.speed", iface)) << iface;
        EXPECT_FALSE(valueOf(batch, "net.in.percent", iface)) << iface;
        EXPECT_FALSE(valueOf(batch, "net.out.percent", iface)) << iface;
        EXPECT_EQ(pointsFor(batch, iface), 8u) << iface;
    }
}

TEST(NetifCollector, UnreadableSpeedIsWarnedAboutOnceNotEveryRound) {
    FixtureCase fixture("speedunknown");
    NetifCollector collector = fixture.collector();
    agent::Batch batch;
    std::vector<CollectReport> reports;
    for (int i = 1; i <= 3; ++i) {
        fixture.use(i);
        reports.push_back(collector.collect(10.0 * i, 1'700'000'000, batch));
    }
    ASSERT_EQ(reports[1].warnings.size(), 1u);
    EXPECT_NE(reports[1].warnings[0].find("eth2"), std::string::npos);
    EXPECT_TRUE(reports[2].warnings.empty());
}

TEST(NetifCollector, LinkSpeedIsUnknownForMinusOneAndMissingFiles) {
    FixtureCase fixture("speedunknown");
    EXPECT_FALSE(agent::netif::readLinkSpeed(fixture.sysClassNet(), "eth0").mbitPerSecond);
    EXPECT_TRUE(agent::netif::readLinkSpeed(fixture.sysClassNet(), "eth0").problem.empty());
    EXPECT_FALSE(agent::netif::readLinkSpeed(fixture.sysClassNet(), "eth1").mbitPerSecond);
    EXPECT_TRUE(agent::netif::readLinkSpeed(fixture.sysClassNet(), "eth1").problem.empty());
    EXPECT_FALSE(agent::netif::readLinkSpeed(fixture.sysClassNet(), "eth2").mbitPerSecond);
    EXPECT_FALSE(agent::netif::readLinkSpeed(fixture.sysClassNet(), "eth2").problem.empty());
}

TEST(NetifCollector, LinkSpeedOfLoopbackOnThisMachineIsUnknownWithoutAProblem) {
    // The real kernel answers EINVAL here; that means "unknown", not an error.
    if (!fs::exists("/sys/class/net/lo/speed")) GTEST_SKIP() << "no /sys/class/net/lo/speed";
    const auto speed = agent::netif::readLinkSpeed("/sys/class/net", "lo");
    EXPECT_FALSE(speed.mbitPerSecond);
    EXPECT_EQ(speed.problem, "");
}

TEST(NetifCollector, CounterResetNeverYieldsNegativeRate) {
    FixtureCase fixture("reset");
    NetifCollector collector = fixture.collector();
    agent::Batch batch;
    fixture.use(1);
    collector.collect(0.0, 1'700'000'000, batch);
    fixture.use(2); // eth0 was re-created: every counter is smaller
    const CollectReport report = collector.collect(10.0, 1'700'000'010, batch);
    EXPECT_TRUE(batch.empty());
    ASSERT_EQ(report.warnings.size(), 1u);
    EXPECT_NE(report.warnings[0].find("went from 900000 to 1000"), std::string::npos) << report.warnings[0];

    // The smaller values became the baseline: the next round is an ordinary rate.
    fixture.use(3);
    collector.collect(20.0, 1'700'000'020, batch);
    EXPECT_EQ(valueOf(batch, "net.in", "eth0"), 8000.0);
    EXPECT_EQ(valueOf(batch, "net.out", "eth0"), 4000.0);
    EXPECT_EQ(valueOf(batch, "net.in.packets", "eth0"), 2.0);
    EXPECT_EQ(valueOf(batch, "net.out.packets", "eth0"), 0.5);
    for (const agent::Metric& metric : batch) EXPECT_GE(std::get<double>(metric.fields[0].value), 0.0);
}

TEST(NetifCollector, ImpossibleRateAfter32BitWrapIsSkipped) {
    // 100 Mbit/s link; rx bytes jump by 2^32 in 10 s, i.e. 3.4 Gbit/s: more than ten times the link.
    FixtureCase fixture("wrap32");
    NetifCollector collector = fixture.collector();
    agent::Batch batch;
    fixture.use(1);
    collector.collect(0.0, 1'700'000'000, batch);
    fixture.use(2);
    const CollectReport report = collector.collect(10.0, 1'700'000'010, batch);
    EXPECT_TRUE(batch.empty());
    ASSERT_EQ(report.warnings.size(), 1u);
    EXPECT_NE(report.warnings[0].find("cannot be real"), std::string::npos) << report.warnings[0];

    fixture.use(3);
    collector.collect(20.0, 1'700'000'020, batch);
    EXPECT_EQ(valueOf(batch, "net.in", "eth0"), 1'000'000.0);
    EXPECT_EQ(valueOf(batch, "net.in.percent", "eth0"), 1.0);
    EXPECT_EQ(valueOf(batch, "net.out", "eth0"), 100'000.0);
    EXPECT_EQ(valueOf(batch, "net.out.percent", "eth0"), 0.1);
    EXPECT_EQ(valueOf(batch, "net.in.packets", "eth0"), 100.0);
}

TEST(NetifCollector, OnlyInterfacesMatchingAPrefixArePublished) {
    FixtureCase fixture("prefix");
    NetifCollector collector = fixture.collector();
    const agent::Batch batch = readSnapshots(fixture, collector, 2);
    EXPECT_EQ(interfacesIn(batch), (std::set<std::string>{"eth0", "eth1", "ens3", "enp0s31f6"}));
    EXPECT_EQ(collector.interfaceCount(), 4u);
}

TEST(NetifCollector, EmptyPrefixWatchesEveryInterface) {
    FixtureCase fixture("prefix");
    NetifCollector collector = fixture.collector({""});
    const agent::Batch batch = readSnapshots(fixture, collector, 2);
    EXPECT_EQ(interfacesIn(batch).size(), 9u);
}

TEST(NetifCollector, InterfaceThatDisappearsAndReappearsStartsFromANewBaseline) {
    FixtureCase fixture("appear");
    NetifCollector collector = fixture.collector();
    agent::Batch batch;
    fixture.use(1);
    collector.collect(0.0, 1'700'000'000, batch);
    EXPECT_EQ(collector.interfaceCount(), 2u);

    fixture.use(2); // eth1 is gone
    CollectReport report = collector.collect(10.0, 1'700'000'010, batch);
    EXPECT_EQ(interfacesIn(batch), std::set<std::string>{"eth0"});
    EXPECT_EQ(collector.interfaceCount(), 1u);
    ASSERT_EQ(report.notices.size(), 1u);
    EXPECT_NE(report.notices[0].find("eth1 is gone"), std::string::npos) << report.notices[0];

    batch.clear();
    fixture.use(3); // eth1 is back with small counters: a baseline, not a negative rate
    report = collector.collect(20.0, 1'700'000'020, batch);
    EXPECT_EQ(interfacesIn(batch), std::set<std::string>{"eth0"});
    EXPECT_EQ(collector.interfaceCount(), 2u);
    EXPECT_TRUE(report.warnings.empty());

    batch.clear();
    fixture.use(4);
    report = collector.collect(30.0, 1'700'000'030, batch);
    EXPECT_EQ(valueOf(batch, "net.in", "eth1"), 800.0);
    EXPECT_EQ(valueOf(batch, "net.out", "eth1"), 1600.0);
    EXPECT_EQ(valueOf(batch, "net.in.packets", "eth1"), 1.0);
    EXPECT_EQ(valueOf(batch, "net.out.packets", "eth1"), 2.0);
    EXPECT_TRUE(report.notices.empty()); // the disappearance was reported once, not every round
}

TEST(NetifCollector, MalformedLinesAreSkippedCountedAndWarnedAboutOnce) {
    FixtureCase fixture("malformed");
    NetifCollector collector = fixture.collector({"eth"});
    agent::Batch batch;
    fixture.use(1);
    CollectReport first = collector.collect(0.0, 1'700'000'000, batch);
    fixture.use(2);
    CollectReport second = collector.collect(10.0, 1'700'000'010, batch);
    EXPECT_EQ(first.malformedLines, 7u);
    EXPECT_EQ(second.malformedLines, 7u);
    EXPECT_EQ(collector.malformedLinesTotal(), 14u);
    EXPECT_EQ(first.warnings.size(), 1u);
    EXPECT_TRUE(second.warnings.empty());
    EXPECT_EQ(interfacesIn(batch), (std::set<std::string>{"eth0", "eth5"}));
    EXPECT_EQ(valueOf(batch, "net.in", "eth0"), 800.0 * 8 / 10);
    EXPECT_EQ(valueOf(batch, "net.in", "eth5"), 1000.0 * 8 / 10);
}

TEST(NetifCollector, NameGluedToItsFirstCounterYieldsRatesLikeAnyOther) {
    FixtureCase fixture("nospace");
    NetifCollector collector = fixture.collector();
    const agent::Batch batch = readSnapshots(fixture, collector, 2);
    EXPECT_EQ(valueOf(batch, "net.in", "eth0"), 11'500'000.0 * 8 / 10);
    EXPECT_EQ(valueOf(batch, "net.out", "eth0"), 200'000.0 * 8 / 10);
    EXPECT_EQ(valueOf(batch, "net.in.packets", "eth0"), 1000.0);
    EXPECT_EQ(valueOf(batch, "net.out.packets", "eth0"), 500.0);
    EXPECT_EQ(valueOf(batch, "net.in", "enp0s31f6"), 800.0);
    EXPECT_EQ(valueOf(batch, "net.out", "enp0s31f6"), 1600.0);
}

TEST(NetifCollector, NoElapsedTimePublishesNothing) {
    FixtureCase fixture("speed1000");
    NetifCollector collector = fixture.collector();
    agent::Batch batch;
    fixture.use(1);
    collector.collect(100.0, 1'700'000'000, batch);
    fixture.use(2);
    collector.collect(100.0, 1'700'000'000, batch); // same instant
    EXPECT_TRUE(batch.empty());
    fixture.use(1);
    collector.collect(90.0, 1'700'000'000, batch); // a clock that went back
    EXPECT_TRUE(batch.empty());
}

TEST(NetifCollector, MissingProcNetDevIsReportedOnceAndPublishesNothing) {
    FixtureCase fixture("speed1000");
    NetifCollector collector = fixture.collector();
    agent::Batch batch;
    fixture.use(1);
    collector.collect(0.0, 1'700'000'000, batch);

    fs::remove(fixture.procNetDev());
    CollectReport report = collector.collect(10.0, 1'700'000'010, batch);
    EXPECT_TRUE(batch.empty());
    EXPECT_NE(report.error.find("No such file or directory"), std::string::npos) << report.error;
    EXPECT_TRUE(report.errorIsNew);
    EXPECT_EQ(collector.lastError(), report.error);
    report = collector.collect(20.0, 1'700'000'020, batch);
    EXPECT_FALSE(report.error.empty());
    EXPECT_FALSE(report.errorIsNew); // logged once, not every round
    EXPECT_TRUE(batch.empty());

    // Back again: the baseline survived, so the rate covers the whole gap of 30 s.
    fixture.use(2);
    report = collector.collect(30.0, 1'700'000'030, batch);
    EXPECT_TRUE(report.error.empty());
    EXPECT_EQ(collector.lastError(), "");
    EXPECT_EQ(report.notices.size(), 1u);
    EXPECT_EQ(valueOf(batch, "net.in", "eth0"), 125'000'000.0 * 8 / 30);
}

TEST(NetifCollector, ReadsThisMachinesProcNetDev) {
    if (!fs::exists("/proc/net/dev")) GTEST_SKIP() << "no /proc/net/dev";
    NetifCollector collector("/proc/net/dev", "/sys/class/net", {""});
    agent::Batch batch;
    EXPECT_EQ(collector.collect(1.0, 1'700'000'000, batch).error, "");
    EXPECT_GE(collector.interfaceCount(), 1u); // lo at least
    EXPECT_EQ(collector.malformedLinesTotal(), 0u);
    collector.collect(2.0, 1'700'000'001, batch);
    for (const agent::Metric& metric : batch) EXPECT_GE(std::get<double>(metric.fields[0].value), 0.0);
}
