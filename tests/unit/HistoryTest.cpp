// The status page's history ring and sampler (core/src/History.cpp) and the log ring
// (core/src/LogRing.cpp): fixed size, oldest first, rates from counter deltas, CPU and memory
// from /proc files, nulls where there is no value.
#include "History.h"
#include "LogRing.h"
#include "TestSupport.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>

#include <gtest/gtest.h>

#include <cmath>

using namespace agent;
using agent::test::TempDir;
using agent::test::writeFile;

namespace {

Poco::JSON::Object::Ptr parse(const std::string& json) {
    return Poco::JSON::Parser().parse(json).extract<Poco::JSON::Object::Ptr>();
}

std::string procStat(std::uint64_t user, std::uint64_t idle) {
    return "cpu  " + std::to_string(user) + " 0 0 " + std::to_string(idle) + " 0 0 0 0 0 0\ncpu0 1 2 3 4\n";
}

const std::string kMeminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n";

} // namespace

TEST(HistoryRing, KeepsTheNewestSamplesOldestFirstInAFixedSize) {
    HistoryRing ring({"a", "b"}, 3);
    EXPECT_EQ(ring.size(), 0u);
    for (int i = 1; i <= 5; ++i) ring.push(i * 10, {double(i), double(-i)});
    EXPECT_EQ(ring.size(), 3u);
    EXPECT_EQ(ring.times(), (std::vector<std::int64_t>{30, 40, 50}));
    EXPECT_EQ(ring.values(0), (std::vector<double>{3, 4, 5}));
    EXPECT_EQ(ring.values(1), (std::vector<double>{-3, -4, -5}));
    ring.push(60, {7}); // a missing value is NaN
    EXPECT_EQ(ring.times(), (std::vector<std::int64_t>{40, 50, 60}));
    EXPECT_TRUE(std::isnan(ring.values(1).back()));
    // 90 samples of 2 + 2 series per sink: the bound docs/ARCHITECTURE.md §11.1 states.
    EXPECT_EQ(HistoryRing::bytesFor(2, 90), 90u * (8 + 2 * 8));
    EXPECT_EQ(HistoryRing::bytesFor(4, 90), 3600u);
}

TEST(HistoryParsers, ProcStatAndMeminfo) {
    const auto before = parseProcStat("cpu  100 10 50 800 40 0 0 0 0 0\n");
    ASSERT_TRUE(before);
    EXPECT_EQ(before->total, 1000u);
    EXPECT_EQ(before->busy, 160u); // idle and iowait are not busy
    const auto after = parseProcStat("cpu  200 10 50 1700 40 0 0 0 0 0\n");
    ASSERT_TRUE(after);
    EXPECT_DOUBLE_EQ(*cpuBusyPercent(*before, *after), 10.0);
    EXPECT_FALSE(cpuBusyPercent(*after, *after)); // no time passed
    EXPECT_FALSE(parseProcStat("intr 1 2 3\n"));
    EXPECT_FALSE(parseProcStat(""));
    EXPECT_DOUBLE_EQ(*memUsedPercent(kMeminfo), 75.0);
    EXPECT_FALSE(memUsedPercent("MemTotal: 1000 kB\n"));
    EXPECT_FALSE(memUsedPercent("HugePages_Total: 0\nMemAvailable: 5 kB\n"));
}

TEST(HistorySampler, RatesFromCounterDeltasAndHostFiguresFromProc) {
    TempDir proc;
    writeFile(proc / "stat", procStat(100, 900));
    writeFile(proc / "meminfo", kMeminfo);
    std::uint64_t in = 1000, out = 0;
    HistorySampler::Options options;
    options.capacity = 4;
    options.procDir = proc.path();
    HistorySampler sampler([&] { return std::vector<HistorySampler::Counter>{{"sink.file.in", in}, {"sink.file.out", out}}; },
                           options);
    sampler.sample(1000, 0); // the baseline: no rates, no CPU yet
    in += 200;
    out += 100;
    writeFile(proc / "stat", procStat(150, 1350)); // 50 of 500 jiffies busy
    sampler.sample(1010, 10);
    in += 50;
    sampler.sample(1020, 15); // 5 s later: 10 points/s in, none out

    const auto json = parse(sampler.json());
    EXPECT_EQ(json->getValue<int>("interval_seconds"), 10);
    EXPECT_EQ(json->getValue<int>("capacity"), 4);
    EXPECT_EQ(json->getValue<std::size_t>("memory_bytes"), HistoryRing::bytesFor(4, 4));
    const auto times = json->getArray("times");
    ASSERT_EQ(times->size(), 3u);
    EXPECT_EQ(times->getElement<int>(0), 1000);
    EXPECT_EQ(times->getElement<int>(2), 1020);
    const auto series = json->getObject("series");
    const auto sinkIn = series->getArray("sink.file.in");
    EXPECT_TRUE(sinkIn->isNull(0));
    EXPECT_DOUBLE_EQ(sinkIn->getElement<double>(1), 20.0);
    EXPECT_DOUBLE_EQ(sinkIn->getElement<double>(2), 10.0);
    const auto sinkOut = series->getArray("sink.file.out");
    EXPECT_DOUBLE_EQ(sinkOut->getElement<double>(1), 10.0);
    EXPECT_DOUBLE_EQ(sinkOut->getElement<double>(2), 0.0);
    const auto cpu = series->getArray("host.cpu_percent");
    EXPECT_TRUE(cpu->isNull(0));
    EXPECT_DOUBLE_EQ(cpu->getElement<double>(1), 10.0);
    EXPECT_TRUE(cpu->isNull(2)); // /proc/stat did not move
    EXPECT_DOUBLE_EQ(series->getArray("host.mem_percent")->getElement<double>(0), 75.0);

    // Wrapping keeps the last `capacity` samples.
    for (int i = 0; i < 10; ++i) sampler.sample(1030 + i * 10, 20 + i * 10);
    const auto wrapped = parse(sampler.json());
    EXPECT_EQ(wrapped->getArray("times")->size(), 4u);
    EXPECT_EQ(wrapped->getArray("times")->getElement<int>(0), 1090);
}

TEST(HistorySampler, MissingProcFilesAndNoSinksGiveNullsNotErrors) {
    HistorySampler::Options options;
    options.procDir = "/nonexistent";
    HistorySampler sampler(nullptr, options);
    EXPECT_EQ(parse(sampler.json())->getArray("times")->size(), 0u); // before the first sample
    sampler.sample(5, 0);
    sampler.sample(15, 10);
    const auto json = parse(sampler.json());
    EXPECT_EQ(json->getObject("series")->size(), 2u);
    EXPECT_TRUE(json->getObject("series")->getArray("host.mem_percent")->isNull(1));
}

TEST(HistorySampler, StartSamplesAtOnceAndStopJoins) {
    HistorySampler::Options options;
    options.interval = std::chrono::seconds(3600);
    HistorySampler sampler(nullptr, options);
    sampler.start();
    ASSERT_TRUE(agent::test::eventually([&] { return parse(sampler.json())->getArray("times")->size() == 1; }));
    const auto json = parse(sampler.json());
    // This machine's own /proc: memory in use is a percentage.
    const double mem = json->getObject("series")->getArray("host.mem_percent")->getElement<double>(0);
    EXPECT_GT(mem, 0.0);
    EXPECT_LE(mem, 100.0);
    sampler.stop(); // does not wait out the hour
    sampler.stop();
}

TEST(LogRing, KeepsTheLastWarningsAndErrorsOnly) {
    Poco::AutoPtr<LogRing> ring(new LogRing(3));
    Poco::Logger& logger = Poco::Logger::create("history-test", ring, Poco::Message::PRIO_DEBUG);
    logger.information("not kept");
    logger.debug("not kept");
    logger.warning("first");
    for (int i = 0; i < 3; ++i) logger.error("error %d", i);
    logger.critical(std::string(10000, 'x'));
    EXPECT_EQ(ring->size(), 3u);
    const auto entries = Poco::JSON::Parser().parse(ring->json()).extract<Poco::JSON::Array::Ptr>();
    ASSERT_EQ(entries->size(), 3u);
    EXPECT_EQ(entries->getObject(0)->getValue<std::string>("text"), "error 1");
    EXPECT_EQ(entries->getObject(0)->getValue<std::string>("level"), "error");
    EXPECT_EQ(entries->getObject(0)->getValue<std::string>("source"), "history-test");
    EXPECT_GT(entries->getObject(0)->getValue<double>("time"), 1.6e9);
    EXPECT_EQ(entries->getObject(2)->getValue<std::string>("level"), "critical");
    EXPECT_LE(entries->getObject(2)->getValue<std::string>("text").size(), LogRing::kMaxText + 3); // cut
    Poco::Logger::destroy("history-test");
}
