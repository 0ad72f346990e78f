// The real `agent` with sink-influx and the burst test source against a real influxd: volume,
// an InfluxDB outage, an agent killed during the outage (the spool replays), and escaping end to
// end. Every point carries tags seq (collection) and n (point), so none collapses onto another.
#include "InfluxServer.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <Poco/File.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <thread>
#include <unistd.h>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

// A modules directory holding only the two modules these tests load.
void linkModules(const TempDir& dir) {
    linkModuleDir(dir, {AGENT_TEST_MODULE_DIR "/source-burst.so", AGENT_MODULE_DIR "/sink-influx.so"});
}

// Writes agent.toml into `dir`; `burst` and `sinkExtra` end the two module sections.
std::string writeConfig(const TempDir& dir, const std::string& influxUrl, const std::string& burst,
                        const std::string& sinkExtra = "") {
    return writeAgentConfig(dir, dir / "modules", "[\"source-burst\", \"sink-influx\"]",
                            "[output]\n"
                            "buffersize = 200000\n"
                            "retry_initial = 0.2\n"
                            "retry_max = 1\n"
                            "drain_timeout = 5\n"
                            "[source-burst]\n" +
                                burst +
                                "[sink-influx]\n"
                                "urls = [\"" +
                                influxUrl +
                                "\"]\n"
                                "batch_size = 5000\n"
                                "flush_interval = 0.2\n"
                                "timeout = 2\n" +
                                sinkExtra);
}

std::int64_t burstCount(const InfluxServer& influx, const std::string& where = "") {
    try {
        return influx.count("ns1", "SELECT count(n) FROM burst" + where);
    } catch (const std::exception&) {
        return -1; // the database does not exist yet, or the server is restarting
    }
}

std::string diagnostics(const TempDir& dir, BackgroundProcess& agent) {
    return "agent stderr:\n" + agent.err() + "\nagent.log (tail):\n" + [&] {
        const std::string log = readFile(dir / "log/agent.log");
        return log.size() > 6000 ? log.substr(log.size() - 6000) : log;
    }();
}

class InfluxSink : public ::testing::Test {
protected:
    void SetUp() override {
        if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed (" << InfluxServer::binary() << ")";
        influx_ = std::make_unique<InfluxServer>();
        linkModules(dir_);
    }
    TempDir dir_;
    std::unique_ptr<InfluxServer> influx_;
};

} // namespace

TEST_F(InfluxSink, HundredThousandPointsArriveEveryOne) {
    const std::string config = writeConfig(dir_, influx_->url(), "points = 10000\ncollections = 10\ninterval = 1\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir_.path());
    const bool arrived = eventually([&] { return burstCount(*influx_) >= 100000; }, std::chrono::seconds(120));
    EXPECT_TRUE(arrived) << "got " << burstCount(*influx_) << "\n" << diagnostics(dir_, agent);
    EXPECT_EQ(burstCount(*influx_), 100000);
    // Ten collections of 10000 distinct points each.
    const Poco::JSON::Array::Ptr perSeq = influx_->queryObject("ns1", "SELECT count(n) FROM burst GROUP BY seq")
                                              ->getArray("results")
                                              ->getObject(0)
                                              ->getArray("series");
    ASSERT_TRUE(perSeq);
    EXPECT_EQ(perSeq->size(), 10u);
    for (std::size_t i = 0; i < perSeq->size(); ++i)
        EXPECT_EQ(perSeq->getObject(static_cast<unsigned>(i))
                      ->getArray("values")
                      ->getArray(0)
                      ->get(1)
                      .convert<std::int64_t>(),
                  10000);
    EXPECT_EQ(influx_->count("ns1", "SELECT sum(n) FROM burst"), 10 * (9999LL * 10000 / 2));
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << diagnostics(dir_, agent);
}

TEST_F(InfluxSink, EveryPointArrivesAfterInfluxdWasDownForThirtySeconds) {
    // 1000 points a second for 50 s; InfluxDB is down from about second 8 to second 38.
    const std::string config = writeConfig(dir_, influx_->url(), "points = 1000\ncollections = 50\ninterval = 1\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir_.path());
    ASSERT_TRUE(eventually([&] { return burstCount(*influx_) >= 5000; }, std::chrono::seconds(60)))
        << diagnostics(dir_, agent);
    influx_->stop();
    std::this_thread::sleep_for(std::chrono::seconds(30));
    EXPECT_TRUE(agent.running()) << diagnostics(dir_, agent);
    influx_->start();
    const bool arrived = eventually([&] { return burstCount(*influx_) >= 50000; }, std::chrono::seconds(90));
    EXPECT_TRUE(arrived) << "got " << burstCount(*influx_) << "\n" << diagnostics(dir_, agent);
    EXPECT_EQ(burstCount(*influx_), 50000);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << diagnostics(dir_, agent);
}

TEST_F(InfluxSink, AgentKilledWhileInfluxdIsDownReplaysItsSpoolAfterARestart) {
    // 1000 points a second for 20 s. InfluxDB goes down after the first points arrived; the agent
    // is SIGKILLed once the source is done, while everything after that is only in its spool.
    const std::string config = writeConfig(dir_, influx_->url(), "points = 1000\ncollections = 20\ninterval = 1\n");
    auto agent =
        std::make_unique<BackgroundProcess>(std::vector<std::string>{kAgent, "run", "-f", config}, dir_.path());
    ASSERT_TRUE(eventually([&] { return burstCount(*influx_) >= 2000; }, std::chrono::seconds(60)))
        << diagnostics(dir_, *agent);
    influx_->stop();
    // The source publishes for 20 s from the agent's start; wait until it must be done.
    std::this_thread::sleep_for(std::chrono::seconds(22));
    ASSERT_TRUE(agent->running()) << diagnostics(dir_, *agent);
    agent->signal(SIGKILL);
    ASSERT_EQ(agent->wait(std::chrono::seconds(10)), 128 + SIGKILL);
    const std::int64_t killedAt = static_cast<std::int64_t>(std::time(nullptr));
    const std::string firstRunLog = readFile(dir_ / "log/agent.log");

    influx_->start();
    ASSERT_LT(burstCount(*influx_), 20000) << "the outage came too late to test the spool";
    // Later than any point of the first run: the second run's own points start after this second.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    const std::string firstRun = " WHERE time <= " + std::to_string(killedAt) + "s";
    TempDir secondLogs;
    agent =
        std::make_unique<BackgroundProcess>(std::vector<std::string>{kAgent, "run", "-f", config}, secondLogs.path());
    const bool replayed = eventually([&] { return burstCount(*influx_, firstRun) >= 20000; }, std::chrono::seconds(90));
    EXPECT_TRUE(replayed) << "got " << burstCount(*influx_, firstRun) << " of the first run's 20000\n"
                          << "first run log (tail): "
                          << firstRunLog.substr(firstRunLog.size() > 4000 ? firstRunLog.size() - 4000 : 0) << "\n"
                          << diagnostics(dir_, *agent);
    EXPECT_EQ(burstCount(*influx_, firstRun), 20000);
    agent->signal(SIGTERM);
    EXPECT_EQ(agent->wait(std::chrono::seconds(15)), 0) << diagnostics(dir_, *agent);
}

TEST_F(InfluxSink, TagsAndFieldsWithSpecialCharactersRoundTripThroughTheAgent) {
    // TOML basic strings: \" and \\ are escapes; the values below are what the source publishes.
    const std::string tagValue = "a b,c=d \"quoted\" C:\\temp ünï 日本";
    const std::string fieldValue = "say \"hi\", a=b \\ back\\slash ✓";
    const std::string config = writeConfig(dir_, influx_->url(),
                                           "points = 5\ncollections = 1\ninterval = 1\n"
                                           "tag_value = \"a b,c=d \\\"quoted\\\" C:\\\\temp ünï 日本\"\n"
                                           "string_field = \"say \\\"hi\\\", a=b \\\\ back\\\\slash ✓\"\n");
    // The Go agent's tag rule would turn the spaces into '-': off, so that they are escaped too.
    BackgroundProcess agent({kAgent, "run", "-f", config, "-Dagent.tidy_tags=false"}, dir_.path());
    ASSERT_TRUE(eventually([&] { return burstCount(*influx_) >= 5; }, std::chrono::seconds(60)))
        << diagnostics(dir_, agent);

    const Poco::JSON::Array::Ptr tags = influx_->rows("ns1", "SHOW TAG VALUES FROM burst WITH KEY = \"text\"");
    ASSERT_EQ(tags->size(), 1u);
    EXPECT_EQ(tags->getArray(0)->getElement<std::string>(1), tagValue);
    const Poco::JSON::Array::Ptr texts = influx_->rows("ns1", "SELECT \"text\"::field FROM burst");
    ASSERT_EQ(texts->size(), 5u);
    for (unsigned i = 0; i < texts->size(); ++i)
        EXPECT_EQ(texts->getArray(i)->getElement<std::string>(1), fieldValue);
    const Poco::JSON::Array::Ptr hosts = influx_->rows("ns1", "SHOW TAG VALUES FROM burst WITH KEY = \"host\"");
    ASSERT_EQ(hosts->size(), 1u);
    EXPECT_EQ(hosts->getArray(0)->getElement<std::string>(1), "test-host");
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << diagnostics(dir_, agent);
}

TEST(InfluxSinkConfig, CheckNamesEveryBadKeyOfTheSectionAtOnce) {
    TempDir dir;
    linkModules(dir);
    const std::string config = writeConfig(dir, "ftp://127.0.0.1:8086", "points = 1\n",
                                           "password = \"secret\"\ndatabase = \"metrics {ns}\"\n"
                                           "gzip = true\nretention_policy = \"\"\nfailback_after = -1\n");
    const CommandResult check = runCommand({kAgent, "check", "-f", config, "-Dsink-influx.batch_size=0"});
    EXPECT_EQ(check.exitCode, 1) << check.out << check.err;
    for (const std::string& expected :
         {std::string("[sink-influx] urls: \"ftp://127.0.0.1:8086\" is not an http:// URL"),
          std::string("[sink-influx] database: \"metrics {ns}\" does not give a valid database name"),
          std::string("[sink-influx] password: is set but username is empty"),
          std::string("[sink-influx] batch_size: must be between 1 and 1000000 points"),
          std::string("[sink-influx] failback_after: must not be negative")})
        EXPECT_TRUE(contains(check.out, expected)) << expected << "\n" << check.out;
    EXPECT_TRUE(contains(check.out, config + ":")) << "each line names the file: " << check.out;
}
