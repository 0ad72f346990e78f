// The sink-influx writer against a real influxd (started by the tests): what it writes is read
// back with InfluxQL, and each kind of answer (404, 400, 401, 413, no answer, timeout) gives the
// outcome the module's README promises.
#include "InfluxServer.h"
#include "InfluxWriter.h"

#include <gtest/gtest.h>

#include <Poco/Net/ServerSocket.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <ostream>
#include <thread>
#include <vector>

using agent::Batch;
using agent::Metric;
using agent::WriteOutcome;
using agent::WriteResult;
using agent::influx::InfluxWriter;
using agent::influx::WriterSettings;
using agent::test::InfluxServer;

namespace agent {
// The tests compare a write's result with its outcome, and gtest shows the counts on a failure.
static bool operator==(const WriteResult& result, WriteOutcome outcome) {
    return result.outcome == outcome;
}
static void PrintTo(const WriteResult& result, std::ostream* out) {
    *out << toString(result.outcome) << " (delivered " << result.delivered << ", rejected " << result.rejected << ")";
}
} // namespace agent

namespace {

constexpr std::int64_t kTime = 1'700'000'000;

Poco::Logger& testLogger() {
    Poco::Logger& logger = Poco::Logger::get("sink-influx-test");
    logger.setLevel(Poco::Message::PRIO_FATAL); // the outcomes are asserted, not the log lines
    return logger;
}

WriterSettings settingsFor(const std::vector<std::string>& urls) {
    WriterSettings settings;
    settings.urls = urls;
    settings.timeout = Poco::Timespan(5, 0);
    return settings;
}

Metric point(const std::string& ns, const std::string& name, std::int64_t n, std::int64_t timestamp = kTime) {
    Metric metric;
    metric.ns = ns;
    metric.name = name;
    metric.setTag("host", "test-host");
    metric.setTag("n", std::to_string(n));
    metric.addField("n", n);
    metric.timestamp = timestamp;
    return metric;
}

Batch points(const std::string& ns, const std::string& name, std::int64_t count) {
    Batch batch;
    for (std::int64_t n = 0; n < count; ++n)
        batch.push_back(point(ns, name, n));
    return batch;
}

// A port on loopback where nothing listens.
std::uint16_t deadPort() {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    const std::uint16_t port = socket.address().port();
    socket.close();
    return port;
}

std::string deadUrl() {
    return "http://127.0.0.1:" + std::to_string(deadPort());
}

// The columns of the first row of a SELECT, by name.
std::map<std::string, Poco::Dynamic::Var> firstRow(const InfluxServer& server, const std::string& db,
                                                   const std::string& influxql) {
    const Poco::JSON::Object::Ptr answer = server.queryObject(db, influxql);
    std::map<std::string, Poco::Dynamic::Var> row;
    const Poco::JSON::Object::Ptr result = answer->getArray("results")->getObject(0);
    if (!result->has("series")) return row;
    const Poco::JSON::Object::Ptr series = result->getArray("series")->getObject(0);
    const Poco::JSON::Array::Ptr columns = series->getArray("columns");
    const Poco::JSON::Array::Ptr values = series->getArray("values")->getArray(0);
    for (std::size_t i = 0; i < columns->size(); ++i)
        row[columns->getElement<std::string>(static_cast<unsigned>(i))] = values->get(static_cast<unsigned>(i));
    return row;
}

// One influxd shared by the tests that do not stop it or need a special config.
class SinkInflux : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (InfluxServer::available()) server_ = std::make_unique<InfluxServer>();
    }
    static void TearDownTestSuite() { server_.reset(); }
    void SetUp() override {
        if (!server_) GTEST_SKIP() << "influxd is not installed (" << InfluxServer::binary() << ")";
    }
    static InfluxServer& server() { return *server_; }

    static std::unique_ptr<InfluxServer> server_;
};

std::unique_ptr<InfluxServer> SinkInflux::server_;

} // namespace

TEST_F(SinkInflux, PointsWrittenAreReadBackExactly) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    Batch batch;
    for (int i = 0; i < 3; ++i) {
        Metric metric;
        metric.ns = "readback";
        metric.name = "cpu.load";
        metric.setTag("host", "test-host");
        metric.setTag("core", std::to_string(i));
        metric.addField("value", 0.25 + i);
        metric.addField("busy", i % 2 == 0);
        metric.addField("state", std::string("state ") + std::to_string(i));
        metric.addField("ticks", static_cast<std::int64_t>(1000 * i));
        metric.timestamp = kTime + i;
        batch.push_back(metric);
    }
    ASSERT_EQ(writer.write(batch), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().pointsWritten, 3u);

    const Poco::JSON::Array::Ptr rows =
        server().rows("readback", R"(SELECT "busy", "core", "host", "state", "ticks", "value" FROM "cpu.load")");
    ASSERT_EQ(rows->size(), 3u);
    for (unsigned i = 0; i < 3; ++i) {
        const Poco::JSON::Array::Ptr row = rows->getArray(i);
        EXPECT_EQ(row->get(0).convert<std::int64_t>(), kTime + i);
        EXPECT_EQ(row->get(1).convert<bool>(), i % 2 == 0);
        EXPECT_EQ(row->get(2).convert<std::string>(), std::to_string(i));
        EXPECT_EQ(row->get(3).convert<std::string>(), "test-host");
        EXPECT_EQ(row->get(4).convert<std::string>(), "state " + std::to_string(i));
        EXPECT_EQ(row->get(5).convert<std::int64_t>(), 1000 * i);
        EXPECT_EQ(row->get(6).convert<double>(), 0.25 + i);
    }
}

TEST_F(SinkInflux, SpecialCharactersInNamesTagsAndFieldsRoundTripExactly) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    const std::string measurement = "disk use,by mount=\"x\"";
    const std::string tagKey = "mount point,=";
    const std::string tagValue = "C:\\Program Files, \"x86\"=32 bit ünïcødé 日本";
    const std::string fieldKey = "free space,=\"";
    const std::string fieldValue = "he said \"hi\\there\", a=b\nsecond line ✓ \\";
    Metric metric;
    metric.ns = "escaping";
    metric.name = measurement;
    metric.setTag(tagKey, tagValue);
    metric.addField(fieldKey, fieldValue);
    metric.timestamp = kTime;
    ASSERT_EQ(writer.write({metric}), WriteOutcome::Done) << writer.stats().lastError;

    const Poco::JSON::Object::Ptr answer =
        server().queryObject("escaping", "SELECT * FROM \"disk use,by mount=\\\"x\\\"\" GROUP BY *");
    const Poco::JSON::Object::Ptr result = answer->getArray("results")->getObject(0);
    ASSERT_TRUE(result->has("series")) << server().query("escaping", "SHOW MEASUREMENTS");
    const Poco::JSON::Object::Ptr series = result->getArray("series")->getObject(0);
    EXPECT_EQ(series->getValue<std::string>("name"), measurement);
    EXPECT_EQ(series->getObject("tags")->getValue<std::string>(tagKey), tagValue);
    const Poco::JSON::Array::Ptr columns = series->getArray("columns");
    ASSERT_EQ(columns->size(), 2u);
    EXPECT_EQ(columns->getElement<std::string>(1), fieldKey);
    EXPECT_EQ(series->getArray("values")->getArray(0)->getElement<std::string>(1), fieldValue);
}

TEST_F(SinkInflux, IntegersComeBackAsIntegers) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    Metric metric;
    metric.ns = "integers";
    metric.name = "counters";
    metric.addField("big", std::numeric_limits<std::int64_t>::max() - 1); // no double holds it
    metric.addField("negative", static_cast<std::int64_t>(-9'007'199'254'740'993));
    metric.addField("unsigned", static_cast<std::uint64_t>(4'000'000'000'000'000'001ULL));
    metric.timestamp = kTime;
    ASSERT_EQ(writer.write({metric}), WriteOutcome::Done) << writer.stats().lastError;

    auto row = firstRow(server(), "integers", "SELECT big, negative, \"unsigned\" FROM counters");
    ASSERT_FALSE(row.empty());
    EXPECT_EQ(row["big"].convert<std::int64_t>(), std::numeric_limits<std::int64_t>::max() - 1);
    // Poco's JSON parser reads large negative integers through a double: check the text instead.
    EXPECT_NE(server().query("integers", "SELECT negative FROM counters").find(",-9007199254740993]"),
              std::string::npos);
    EXPECT_EQ(row["unsigned"].convert<std::int64_t>(), 4'000'000'000'000'000'001LL);
    const Poco::JSON::Array::Ptr types = server().rows("integers", "SHOW FIELD KEYS FROM counters");
    ASSERT_EQ(types->size(), 3u);
    for (unsigned i = 0; i < types->size(); ++i)
        EXPECT_EQ(types->getArray(i)->getElement<std::string>(1), "integer");
}

TEST_F(SinkInflux, NanAndInfinityFieldsAreLeftOutAndCounted) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    Metric mixed;
    mixed.ns = "nonfinite";
    mixed.name = "ratio";
    mixed.addField("nan", std::nan(""));
    mixed.addField("ok", 1.5);
    mixed.addField("inf", std::numeric_limits<double>::infinity());
    mixed.timestamp = kTime;
    Metric onlyInfinite = mixed;
    onlyInfinite.fields.clear();
    onlyInfinite.addField("value", -std::numeric_limits<double>::infinity());
    onlyInfinite.timestamp = kTime + 1;

    ASSERT_EQ(writer.write({mixed, onlyInfinite}), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().nonFiniteFields, 3u);
    EXPECT_EQ(writer.stats().unencodablePoints, 1u);
    EXPECT_EQ(writer.stats().pointsWritten, 1u);
    EXPECT_EQ(writer.health()->getValue<std::uint64_t>("nonfinite_fields_dropped"), 3u);
    const Poco::JSON::Array::Ptr rows = server().rows("nonfinite", "SELECT * FROM ratio");
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ(rows->getArray(0)->get(1).convert<double>(), 1.5);
}

TEST_F(SinkInflux, MissingDatabaseIsCreatedAndTheWriteRepeated) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    ASSERT_EQ(writer.write(points("created_on_404", "m", 10)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().databasesCreated, 1u);
    EXPECT_EQ(server().count("created_on_404", "SELECT count(n) FROM m"), 10);
    // Once it exists, nothing is created again.
    ASSERT_EQ(writer.write(points("created_on_404", "m", 10)), WriteOutcome::Done);
    EXPECT_EQ(writer.stats().databasesCreated, 1u);
}

TEST_F(SinkInflux, MissingDatabaseIsRetriedWhenCreationIsOff) {
    WriterSettings settings = settingsFor({server().url()});
    settings.createDatabase = false;
    InfluxWriter writer(settings, testLogger());
    EXPECT_EQ(writer.write(points("never_created", "m", 1)), WriteOutcome::Retry);
    EXPECT_EQ(writer.stats().lastStatus, 404);
    EXPECT_NE(writer.stats().lastError.find("database not found"), std::string::npos) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().databasesCreated, 0u);
}

TEST_F(SinkInflux, EachNamespaceGoesToItsOwnDatabaseAndNoNamespaceToTheDefault) {
    WriterSettings settings = settingsFor({server().url()});
    settings.databaseTemplate = "collect_{ns}";
    InfluxWriter writer(settings, testLogger());
    Batch batch = points("alpha", "m", 3);
    for (Metric& metric : points("beta", "m", 2))
        batch.push_back(metric);
    batch.push_back(point("", "m", 0));
    ASSERT_EQ(writer.write(batch), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(server().count("collect_alpha", "SELECT count(n) FROM m"), 3);
    EXPECT_EQ(server().count("collect_beta", "SELECT count(n) FROM m"), 2);
    EXPECT_EQ(server().count("collect_default", "SELECT count(n) FROM m"), 1);
}

TEST_F(SinkInflux, NamespaceGivingAnInvalidDatabaseNameIsDroppedAndCounted) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    Batch batch = points("bad namespace/..", "m", 4);
    EXPECT_EQ(writer.write(batch), WriteOutcome::Drop);
    EXPECT_EQ(writer.stats().pointsDropped.at(agent::influx::kDropInvalidDatabase), 4u);
    EXPECT_EQ(writer.stats().requests, 0u);

    // The valid part of a mixed batch is still written.
    for (Metric& metric : points("valid_beside_invalid", "m", 2))
        batch.push_back(metric);
    const WriteResult result = writer.write(batch);
    EXPECT_EQ(result, WriteOutcome::Done);
    EXPECT_EQ(result.delivered, 2u);
    EXPECT_EQ(result.rejected, 4u);
    EXPECT_EQ(server().count("valid_beside_invalid", "SELECT count(n) FROM m"), 2);
}

TEST_F(SinkInflux, RejectedChunkIsDroppedWithTheServersMessageInTheLastError) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    Metric integer = point("conflict", "m", 1);
    ASSERT_EQ(writer.write({integer}), WriteOutcome::Done) << writer.stats().lastError;
    Metric text = point("conflict", "m", 2);
    text.fields = {{"n", std::string("not an integer")}};
    EXPECT_EQ(writer.write({text}), WriteOutcome::Drop);
    EXPECT_EQ(writer.stats().lastStatus, 400);
    EXPECT_NE(writer.stats().lastError.find("field type conflict"), std::string::npos) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().pointsDropped.at(agent::influx::kDropBadRequest), 1u);
    EXPECT_EQ(writer.stats().chunksDropped.at(agent::influx::kDropBadRequest), 1u);
    EXPECT_EQ(writer.health()->getObject("chunks_dropped")->getValue<std::uint64_t>("bad_request"), 1u);
}

// The points of measurement "m" in `database`, as InfluxDB holds them.
std::int64_t countIn(const InfluxServer& server, const std::string& database) {
    return server.count(database, R"(SELECT count("n") FROM "m")");
}

// A batch of `count` points of measurement "m"; those whose number is in [textFrom, textTo) carry
// a string "n", which InfluxDB refuses once "n" is an integer field.
Batch withTextPoints(const std::string& ns, std::int64_t count, std::int64_t textFrom, std::int64_t textTo) {
    Batch batch = points(ns, "m", count);
    for (std::int64_t n = textFrom; n < textTo; ++n)
        batch[static_cast<std::size_t>(n)].fields = {{"n", std::string("text")}};
    return batch;
}

TEST_F(SinkInflux, PartialWriteCountsThePointsInfluxDbKeptAsDeliveredAndTheOthersAsRejected) {
    WriterSettings settings = settingsFor({server().url()});
    settings.batchSize = 10;
    InfluxWriter writer(settings, testLogger());
    ASSERT_EQ(writer.write({point("partial", "m", 1000)}), WriteOutcome::Done) << writer.stats().lastError;

    // One point of the second chunk conflicts; InfluxDB keeps the chunk's 9 others (same shard).
    const WriteResult result = writer.write(withTextPoints("partial", 30, 15, 16));
    EXPECT_EQ(result, WriteOutcome::Done);
    EXPECT_EQ(result.delivered, 29u);
    EXPECT_EQ(result.rejected, 1u);
    EXPECT_EQ(countIn(server(), "partial"), 1 + 29);
    EXPECT_EQ(server().rows("partial", "SELECT * FROM m WHERE \"n\"::tag = '15'")->size(), 0u);
    EXPECT_EQ(writer.stats().partialWrites, 1u);
    EXPECT_EQ(writer.stats().pointsDropped.at(agent::influx::kDropBadRequest), 1u);
    EXPECT_EQ(writer.stats().chunksDropped.count(agent::influx::kDropBadRequest), 0u); // no whole chunk lost
    EXPECT_EQ(writer.stats().pointsWritten, 1u + 29u);
    EXPECT_NE(writer.stats().lastError.find("dropped=1"), std::string::npos) << writer.stats().lastError;
    EXPECT_EQ(writer.health()->getValue<std::uint64_t>("partial_writes"), 1u);
}

TEST_F(SinkInflux, ChunkInfluxDbRefusesWhollyIsRejectedAndTheOtherChunksDelivered) {
    WriterSettings settings = settingsFor({server().url()});
    settings.batchSize = 10;
    InfluxWriter writer(settings, testLogger());
    ASSERT_EQ(writer.write({point("one_chunk_refused", "m", 1000)}), WriteOutcome::Done) << writer.stats().lastError;

    const WriteResult result = writer.write(withTextPoints("one_chunk_refused", 30, 10, 20)); // all of chunk 2
    EXPECT_EQ(result, WriteOutcome::Done);
    EXPECT_EQ(result.delivered, 20u);
    EXPECT_EQ(result.rejected, 10u);
    EXPECT_EQ(countIn(server(), "one_chunk_refused"), 1 + 20);
    EXPECT_EQ(writer.stats().chunksDropped.at(agent::influx::kDropBadRequest), 1u);
    EXPECT_EQ(writer.stats().pointsDropped.at(agent::influx::kDropBadRequest), 10u);
    EXPECT_EQ(writer.stats().partialWrites, 0u);

    // Every chunk refused: drop, the whole batch rejected.
    const WriteResult all = writer.write(withTextPoints("one_chunk_refused", 20, 0, 20));
    EXPECT_EQ(all, WriteOutcome::Drop);
    EXPECT_EQ(all.delivered, 0u);
    EXPECT_EQ(all.rejected, 20u);
    EXPECT_EQ(writer.stats().chunksDropped.at(agent::influx::kDropBadRequest), 3u);
}

TEST_F(SinkInflux, UnparsableLineBesideGoodOnesCountsOnlyItselfRejected) {
    InfluxWriter writer(settingsFor({server().url()}), testLogger());
    Batch batch = points("unparsable", "m", 5);
    batch[2].setTag("path", "C:\\"); // a tag value ending in a backslash: line protocol cannot carry it
    const WriteResult result = writer.write(batch);
    EXPECT_EQ(result, WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(result.delivered, 4u) << writer.stats().lastError;
    EXPECT_EQ(result.rejected, 1u);
    EXPECT_EQ(countIn(server(), "unparsable"), 4);
}

TEST(SinkInfluxPartialWrite, RefusedPointsAreReadFromInfluxDbsAnswer) {
    using agent::influx::refusedPointsOf;
    EXPECT_EQ(refusedPointsOf("partial write: field type conflict: input field \"n\" on measurement \"m\" is type "
                              "string, already exists as type integer dropped=3",
                              10),
              3u);
    EXPECT_EQ(refusedPointsOf("partial write: points beyond retention policy dropped=12", 10), 10u); // at most all
    EXPECT_EQ(refusedPointsOf("partial write: unable to parse 'a b': invalid field format\nunable to parse 'c d': "
                              "invalid field format dropped=0",
                              10),
              2u);
    EXPECT_EQ(refusedPointsOf("unable to parse 'a b': invalid field format", 10), 0u); // not partial: all of it
    EXPECT_EQ(refusedPointsOf("partial write: something new", 10), 0u);
}

TEST_F(SinkInflux, ConcurrentWritesFromFourThreadsDeliverEveryPointOverAtMostFourConnections) {
    WriterSettings settings = settingsFor({server().url()});
    settings.concurrency = 4;
    InfluxWriter writer(settings, testLogger());
    constexpr int kThreads = 4;
    constexpr int kBatches = 50;
    constexpr int kPoints = 100;
    std::atomic<int> done{0};
    std::atomic<std::size_t> delivered{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int b = 0; b < kBatches; ++b) {
                Batch batch;
                for (int p = 0; p < kPoints; ++p)
                    batch.push_back(point("concurrent", "m", (t * kBatches + b) * kPoints + p));
                const WriteResult result = writer.write(batch);
                if (result.outcome == WriteOutcome::Done && result.rejected == 0) ++done;
                delivered += result.delivered;
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    EXPECT_EQ(done.load(), kThreads * kBatches) << writer.stats().lastError;
    EXPECT_EQ(delivered.load(), std::size_t{kThreads * kBatches * kPoints});
    EXPECT_EQ(countIn(server(), "concurrent"), kThreads * kBatches * kPoints);
    const agent::influx::WriterStats stats = writer.stats();
    EXPECT_EQ(stats.pointsWritten, std::uint64_t{kThreads * kBatches * kPoints});
    EXPECT_GE(stats.connectionsOpened, 1u);
    EXPECT_LE(stats.connectionsOpened, 4u);
    EXPECT_EQ(writer.health()->getValue<std::uint64_t>("connections_opened"), stats.connectionsOpened);
    EXPECT_EQ(writer.health()->getValue<unsigned>("concurrency"), 4u);
}

TEST_F(SinkInflux, MoreCallersThanConcurrencyShareItsConnectionsAndSequentialWritesReuseOne) {
    WriterSettings settings = settingsFor({server().url()});
    settings.concurrency = 2;
    InfluxWriter writer(settings, testLogger());
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(writer.write(points("shared_pool", "m", 10)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().connectionsOpened, 1u); // one write at a time: one keep-alive connection

    std::vector<std::thread> threads;
    std::atomic<int> done{0};
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&] {
            for (int b = 0; b < 10; ++b)
                if (writer.write(points("shared_pool", "m", 10)) == WriteOutcome::Done) ++done;
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    EXPECT_EQ(done.load(), 60);
    EXPECT_LE(writer.stats().connectionsOpened, 2u);
}

// The measurement behind the default of `concurrency` (README): the same points, in batches of
// BENCH_BATCH points (5000), written by 1, 2, 4 and 8 threads through a writer with that
// concurrency, each run into a database of its own (created beforehand); BENCH_ROUNDS (3) rounds
// of the four, interleaved. Prints points/s; asserts only that everything arrived. Run it by hand:
// unit_tests --gtest_also_run_disabled_tests --gtest_filter='*ThroughputByConcurrency'
// (BENCH_POINTS sets the points per run, 400000 by default).
TEST_F(SinkInflux, DISABLED_ThroughputByConcurrency) {
    auto fromEnv = [](const char* name, int fallback) {
        const char* value = std::getenv(name);
        return value != nullptr ? std::atoi(value) : fallback;
    };
    const int total = fromEnv("BENCH_POINTS", 400'000);
    const int kBatch = fromEnv("BENCH_BATCH", 5000);
    const int rounds = fromEnv("BENCH_ROUNDS", 3);
    std::vector<Batch> batches;
    for (int first = 0; first < total; first += kBatch) {
        Batch batch;
        for (int i = first; i < std::min(total, first + kBatch); ++i) {
            Metric metric;
            metric.ns = "throughput";
            metric.name = "net";
            metric.setTag("host", "bench-host");
            metric.setTag("interface", "eth" + std::to_string(i % 100));
            metric.addField("bytes", static_cast<std::int64_t>(i));
            metric.addField("rate", 0.5 * i);
            metric.timestamp = kTime + i / 100;
            batch.push_back(std::move(metric));
        }
        batches.push_back(std::move(batch));
    }
    for (int round = 0; round < rounds; ++round)
    for (const unsigned concurrency : {1u, 2u, 4u, 8u}) {
        const std::string database =
            "throughput_" + std::to_string(kBatch) + "_" + std::to_string(round) + "_" + std::to_string(concurrency);
        WriterSettings settings = settingsFor({server().url()});
        settings.concurrency = concurrency;
        settings.batchSize = static_cast<std::size_t>(kBatch);
        settings.databaseTemplate = database;
        settings.createDatabase = false;
        server().execute("CREATE DATABASE \"" + database + "\"");
        InfluxWriter writer(settings, testLogger());
        std::atomic<std::size_t> next{0};
        std::atomic<int> failed{0};
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < concurrency; ++t) {
            threads.emplace_back([&] {
                for (std::size_t b = next++; b < batches.size(); b = next++)
                    if (writer.write(batches[b]) != WriteOutcome::Done) ++failed;
            });
        }
        for (std::thread& thread : threads)
            thread.join();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        EXPECT_EQ(failed.load(), 0) << writer.stats().lastError;
        std::printf("round %d, batches of %d, concurrency %u: %d points in %.3f s = %.0f points/s (%llu connections)\n",
                    round, kBatch, concurrency, total, seconds, total / seconds,
                    static_cast<unsigned long long>(writer.stats().connectionsOpened));
        std::fflush(stdout);
        EXPECT_EQ(server().count(database, "SELECT count(bytes) FROM net"), total);
    }
}

TEST_F(SinkInflux, BatchIsPostedInChunksOfBatchSize) {
    WriterSettings settings = settingsFor({server().url()});
    settings.batchSize = 100;
    InfluxWriter writer(settings, testLogger());
    ASSERT_EQ(writer.write(points("chunked", "m", 1050)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().chunksWritten, 11u);
    EXPECT_EQ(writer.stats().requests, 13u); // the first chunk also met a 404 and a CREATE DATABASE
    EXPECT_EQ(server().count("chunked", "SELECT count(n) FROM m"), 1050);
}

TEST_F(SinkInflux, GzipBodiesArriveIntact) {
    WriterSettings settings = settingsFor({server().url()});
    settings.gzip = true;
    InfluxWriter writer(settings, testLogger());
    ASSERT_EQ(writer.write(points("gzipped", "m", 500)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(server().count("gzipped", "SELECT count(n) FROM m"), 500);
    EXPECT_EQ(server().count("gzipped", "SELECT sum(n) FROM m"), 499 * 500 / 2);
}

TEST_F(SinkInflux, RetentionPolicyNamesWhereThePointsGo) {
    server().execute("CREATE DATABASE with_rp");
    server().execute("CREATE RETENTION POLICY \"two days\" ON with_rp DURATION 2d REPLICATION 1");
    WriterSettings settings = settingsFor({server().url()});
    settings.retentionPolicy = "two days";
    InfluxWriter writer(settings, testLogger());
    Batch batch = points("with_rp", "m", 5);
    for (Metric& metric : batch)
        metric.timestamp = static_cast<std::int64_t>(std::time(nullptr)); // within 2 days
    ASSERT_EQ(writer.write(batch), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(server().count("with_rp", "SELECT count(n) FROM \"two days\".m"), 5);
    EXPECT_EQ(server().count("with_rp", "SELECT count(n) FROM autogen.m"), 0);
}

TEST(SinkInfluxUnreachable, ConnectionRefusedAnswersRetry) {
    InfluxWriter writer(settingsFor({deadUrl()}), testLogger());
    EXPECT_EQ(writer.write(points("nowhere", "m", 3)), WriteOutcome::Retry);
    EXPECT_EQ(writer.stats().lastStatus, 0);
    EXPECT_NE(writer.stats().lastError.find("refused"), std::string::npos) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().pointsWritten, 0u);
}

TEST(SinkInfluxUnreachable, ServerThatNeverAnswersTimesOutAndAnswersRetry) {
    // Connections queue in the listen backlog and are never accepted: nothing ever answers.
    Poco::Net::ServerSocket silent(Poco::Net::SocketAddress("127.0.0.1", 0));
    WriterSettings settings = settingsFor({"http://127.0.0.1:" + std::to_string(silent.address().port())});
    settings.timeout = Poco::Timespan(0, 300'000);
    InfluxWriter writer(settings, testLogger());
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(writer.write(points("silent", "m", 3)), WriteOutcome::Retry);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
    EXPECT_NE(writer.stats().lastError.find("timeout"), std::string::npos) << writer.stats().lastError;
}

TEST_F(SinkInflux, FirstUrlDownFailsOverToTheSecond) {
    const std::string dead = deadUrl();
    InfluxWriter writer(settingsFor({dead, server().url()}), testLogger());
    ASSERT_EQ(writer.write(points("failover", "m", 7)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().currentUrl, server().url());
    EXPECT_EQ(writer.stats().failovers, 1u);
    EXPECT_EQ(server().count("failover", "SELECT count(n) FROM m"), 7);
    // It stays on the second until failback_after has passed.
    ASSERT_EQ(writer.write(points("failover", "m", 7)), WriteOutcome::Done);
    EXPECT_EQ(writer.stats().failovers, 1u);
}

TEST_F(SinkInflux, FirstUrlIsUsedAgainOnceItIsBackAndFailbackAfterHasPassed) {
    InfluxServer first;
    first.stop();
    WriterSettings settings = settingsFor({first.url(), server().url()});
    settings.failbackAfter = Poco::Timespan(0, 200'000);
    InfluxWriter writer(settings, testLogger());
    ASSERT_EQ(writer.write(points("failback", "m", 3)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().currentUrl, server().url());

    first.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_EQ(writer.write(points("failback", "m", 5)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().currentUrl, first.url());
    EXPECT_EQ(first.count("failback", "SELECT count(n) FROM m"), 5);
}

TEST(SinkInfluxOutage, RestartedServerIsWrittenToOnAFreshConnection) {
    if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed";
    InfluxServer server;
    InfluxWriter writer(settingsFor({server.url()}), testLogger());
    ASSERT_EQ(writer.write(points("restart", "m", 2)), WriteOutcome::Done) << writer.stats().lastError;
    server.stop();
    EXPECT_EQ(writer.write(points("restart", "m", 3)), WriteOutcome::Retry);
    server.start();
    // The keep-alive connection of the first write is dead; the writer must not need a second call.
    ASSERT_EQ(writer.write(points("restart", "m", 4)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(server.count("restart", "SELECT count(n) FROM m"), 4);
}

TEST(SinkInfluxOutage, LossesOfARetriedBatchAreCountedOnceWhenItIsFinished) {
    if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed";
    InfluxServer server;
    server.stop();
    InfluxWriter writer(settingsFor({server.url()}), testLogger());
    Batch batch = points("counted_once", "m", 3);
    batch[1].addField("ratio", std::nan(""));
    EXPECT_EQ(writer.write(batch), WriteOutcome::Retry);
    EXPECT_EQ(writer.write(batch), WriteOutcome::Retry);
    EXPECT_EQ(writer.stats().nonFiniteFields, 0u);
    server.start();
    ASSERT_EQ(writer.write(batch), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(writer.stats().nonFiniteFields, 1u);
    EXPECT_EQ(server.count("counted_once", "SELECT count(n) FROM m"), 3);
}

TEST(SinkInfluxBodyLimit, TooLargeChunkIsSplitInHalvesUntilEachPartFits) {
    if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed";
    InfluxServer::Options options;
    options.maxBodySize = 2000; // [http] max-body-size: influxd answers 413 above it
    InfluxServer server(options);
    InfluxWriter writer(settingsFor({server.url()}), testLogger());
    const Batch batch = points("split", "cpu", 300); // about 40 bytes each: 12 kB
    ASSERT_EQ(writer.write(batch), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_GE(writer.stats().splits, 3u);
    EXPECT_EQ(writer.stats().pointsWritten, 300u);
    EXPECT_EQ(server.count("split", "SELECT count(n) FROM cpu"), 300);
}

TEST(SinkInfluxBodyLimit, SinglePointAboveTheLimitIsDroppedAndTheRestWritten) {
    if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed";
    InfluxServer::Options options;
    options.maxBodySize = 2000;
    InfluxServer server(options);
    InfluxWriter writer(settingsFor({server.url()}), testLogger());
    Batch batch = points("oversized", "m", 20);
    batch[7].addField("text", std::string(3000, 'x'));
    const WriteResult result = writer.write(batch);
    EXPECT_EQ(result, WriteOutcome::Done);
    EXPECT_EQ(result.delivered, 19u);
    EXPECT_EQ(result.rejected, 1u);
    EXPECT_EQ(writer.stats().pointsDropped.at(agent::influx::kDropTooLarge), 1u);
    EXPECT_NE(writer.stats().lastError.find("HTTP 413"), std::string::npos) << writer.stats().lastError;
    EXPECT_EQ(server.count("oversized", "SELECT count(n) FROM m"), 19);
    EXPECT_EQ(server.rows("oversized", "SELECT n FROM m WHERE n = 7")->size(), 0u);
}

TEST(SinkInfluxAuth, WrongPasswordAnswersRetryAndTheRightOneWrites) {
    if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed";
    InfluxServer::Options options;
    options.adminUser = "admin";
    options.adminPassword = "s3cret";
    InfluxServer server(options);

    WriterSettings settings = settingsFor({server.url()});
    settings.username = "admin";
    settings.password = "wrong";
    InfluxWriter refused(settings, testLogger());
    EXPECT_EQ(refused.write(points("authed", "m", 2)), WriteOutcome::Retry);
    EXPECT_EQ(refused.stats().lastStatus, 401);

    settings.password = "s3cret";
    InfluxWriter writer(settings, testLogger());
    ASSERT_EQ(writer.write(points("authed", "m", 2)), WriteOutcome::Done) << writer.stats().lastError;
    EXPECT_EQ(server.count("authed", "SELECT count(n) FROM m"), 2);

    // A user without admin rights cannot create the database: retry, with the reason.
    server.execute("CREATE USER writer WITH PASSWORD 'pw'");
    settings.username = "writer";
    settings.password = "pw";
    InfluxWriter unprivileged(settings, testLogger());
    EXPECT_EQ(unprivileged.write(points("not_yet_there", "m", 1)), WriteOutcome::Retry);
    EXPECT_EQ(unprivileged.stats().lastStatus, 403);
    EXPECT_NE(unprivileged.stats().lastError.find("admin privilege"), std::string::npos)
        << unprivileged.stats().lastError;
}

TEST(SinkInfluxSettings, EveryBadSettingIsReportedWithItsKey) {
    WriterSettings settings;
    settings.urls = {"https://db.example.com:8086", "ftp://x", "http://db:8086/?db=x"};
    settings.databaseTemplate = "metrics {ns}";
    settings.emptyNamespace = "";
    settings.password = "secret";
    settings.batchSize = 0;
    settings.timeout = 0;
    settings.concurrency = 33;
    std::map<std::string, int> keys;
    for (const auto& problem : agent::influx::checkSettings(settings))
        ++keys[problem.key];
    EXPECT_EQ(keys["urls"], 3);
    EXPECT_EQ(keys["database"], 1);
    EXPECT_EQ(keys["empty_namespace"], 1);
    EXPECT_EQ(keys["password"], 1);
    EXPECT_EQ(keys["batch_size"], 1);
    EXPECT_EQ(keys["timeout"], 1);
    EXPECT_EQ(keys["concurrency"], 1);
    settings = WriterSettings{};
    settings.concurrency = 0;
    EXPECT_EQ(agent::influx::checkSettings(settings).size(), 1u);
    EXPECT_TRUE(agent::influx::checkSettings(WriterSettings{}).empty());
}

TEST(SinkInfluxSettings, DatabaseTemplateReplacesEveryNamespacePlaceholder) {
    WriterSettings settings;
    settings.databaseTemplate = "{ns}_metrics_{ns}";
    EXPECT_EQ(agent::influx::databaseFor(settings, "web"), "web_metrics_web");
    EXPECT_EQ(agent::influx::databaseFor(settings, ""), "default_metrics_default");
    settings.databaseTemplate = "fixed";
    EXPECT_EQ(agent::influx::databaseFor(settings, "web"), "fixed");
}
