// sink-nsq in the real agent: `agent run` with the test source source-burst publishing through
// sink-nsq to an NsqPeer (nsqd's protocol V2 on loopback), delivery after nsqd was down, a batch
// nsqd refuses for good (and the agent's counters saying so), and
// `agent check` on configs that name sink-nsq, the Go agent's seed among them.
#include "HttpClient.h"
#include "NsqPeer.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

// sink-nsq.so and the test source source-burst.so are built into different directories.
std::string moduleDirWithNsqAndBurst(const TempDir& dir) {
    return linkModuleDir(dir, {AGENT_MODULE_DIR "/sink-nsq.so", AGENT_TEST_MODULE_DIR "/source-burst.so"});
}

// A config whose every path lies in `dir`; `extra` is appended (its first line is line 13).
std::string writeConfig(const TempDir& dir, const std::string& moduleDir, const std::string& load,
                        const std::string& extra) {
    return writeAgentConfig(dir, moduleDir, load, extra);
}

std::string burstConfig(const TempDir& dir, const NsqPeer& peer, const std::string& output = "") {
    return writeConfig(dir, moduleDirWithNsqAndBurst(dir), "[\"source-burst\", \"sink-nsq\"]",
                       "[output]\n"
                       "servers = [\"" +
                           peer.address() +
                           "\"]\n"
                           "buffersize = 10000\n"
                           "drain_timeout = 2\n" +
                           output +
                           "[source-burst]\n"
                           "points = 500\n"
                           "collections = 4\n"
                           "interval = 1\n");
}

// What the peer holds: every point's (seq, n), and everything that is not as
// docs/ARCHITECTURE.md §15 says.
struct Received {
    std::size_t points = 0;
    std::set<std::pair<std::string, std::int64_t>> distinct;
    std::vector<std::string> problems;
};

Received receivedBy(const NsqPeer& peer) {
    Received received;
    for (const NsqPeer::Message& message : peer.messages()) {
        if (message.topic != "collect.ns1") received.problems.push_back("topic " + message.topic);
        Poco::JSON::Object::Ptr batch;
        try {
            batch = Poco::JSON::Parser().parse(message.body).extract<Poco::JSON::Object::Ptr>();
        } catch (const Poco::Exception& e) {
            received.problems.push_back("not JSON: " + e.displayText());
            continue;
        }
        if (batch->optValue<std::string>("database", "") != "collect.ns1") received.problems.push_back("database");
        if (batch->optValue<std::string>("retentionPolicy", "") != "default")
            received.problems.push_back("retentionPolicy");
        if (batch->optValue<std::string>("precision", "") != "s") received.problems.push_back("precision");
        Poco::JSON::Array::Ptr points = batch->getArray("points");
        if (!points) {
            received.problems.push_back("no points");
            continue;
        }
        for (std::size_t i = 0; i < points->size(); ++i) {
            Poco::JSON::Object::Ptr point = points->getObject(i);
            Poco::JSON::Object::Ptr tags = point->getObject("tags");
            Poco::JSON::Object::Ptr fields = point->getObject("fields");
            if (point->optValue<std::string>("measurement", "") != "burst") received.problems.push_back("measurement");
            const std::int64_t timestamp = point->optValue<std::int64_t>("timestamp", 0);
            if (timestamp < 1'000'000'000 || timestamp >= 10'000'000'000) received.problems.push_back("timestamp");
            if (!tags || tags->optValue<std::string>("host", "") != "test-host")
                received.problems.push_back("host tag");
            if (!fields || !fields->has("n") || !fields->has("value")) {
                received.problems.push_back("fields");
                continue;
            }
            ++received.points;
            received.distinct.emplace(tags->optValue<std::string>("seq", "?"), fields->getValue<std::int64_t>("n"));
        }
    }
    return received;
}

std::string logOf(const TempDir& dir, const BackgroundProcess& agent) {
    return "--- stderr\n" + agent.err() + "\n--- agent.log\n" + readFile(dir / "log/agent.log");
}

} // namespace

TEST(NsqSink, AgentPublishesEveryBurstPointAsJsonBatchesOnTheNamespacesTopic) {
    NsqPeer peer;
    TempDir dir;
    const std::string config = burstConfig(dir, peer);
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    ASSERT_TRUE(eventually([&] { return receivedBy(peer).distinct.size() >= 2000; }, std::chrono::seconds(60)))
        << receivedBy(peer).distinct.size() << " points\n"
        << logOf(dir, agent);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0) << logOf(dir, agent);

    const Received received = receivedBy(peer);
    EXPECT_EQ(received.points, 2000u); // nothing failed, so nothing went twice
    EXPECT_EQ(received.distinct.size(), 2000u);
    for (const char* seq : {"0", "1", "2", "3"}) {
        EXPECT_TRUE(received.distinct.count({seq, 0}) == 1 && received.distinct.count({seq, 499}) == 1) << seq;
    }
    EXPECT_EQ(received.problems, std::vector<std::string>{});
    EXPECT_EQ(peer.errorsSent(), std::vector<std::string>{});
    ASSERT_FALSE(peer.identifyBodies().empty());
    EXPECT_TRUE(contains(peer.identifyBodies().front(), "\"client_id\":\"test-host\""));
    EXPECT_EQ(peer.internalError(), "");
}

TEST(NsqSink, PointsPublishedWhileNsqdIsDownAreDeliveredWhenItComesBack) {
    NsqPeer peer;
    peer.stopListening();
    TempDir dir;
    const std::string config = burstConfig(dir, peer, "retry_initial = 0.2\nretry_max = 1\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "log/agent.log"), "sink-nsq"); })) << logOf(dir, agent);
    std::this_thread::sleep_for(std::chrono::seconds(5)); // every collection happens while nsqd is down
    EXPECT_EQ(peer.connectionsAccepted(), 0u);
    peer.startListening();
    EXPECT_TRUE(eventually([&] { return receivedBy(peer).distinct.size() >= 2000; }, std::chrono::seconds(60)))
        << receivedBy(peer).distinct.size() << " points\n"
        << logOf(dir, agent);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0) << logOf(dir, agent);
    const Received received = receivedBy(peer);
    EXPECT_EQ(received.distinct.size(), 2000u);
    EXPECT_EQ(received.problems, std::vector<std::string>{});
}

// The agent's /metrics line `name{sink="sink-nsq"} N`: N, or -1 when absent or unanswered.
std::int64_t nsqCounter(int port, const std::string& name) {
    HttpReply reply;
    try {
        reply = httpCall(port, "GET", "/metrics");
    } catch (const Poco::Exception&) {
        return -1;
    }
    const std::string prefix = name + "{sink=\"sink-nsq\"} ";
    for (const std::string& line : lines(reply.body))
        if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size()));
    return -1;
}

TEST(NsqSink, BatchNsqdRefusesForGoodIsDroppedOnceAndTheOthersDelivered) {
    NsqPeer peer;
    peer.refuseMessagesContaining("\"seq\":\"2\""); // the third collection: one batch, one message
    TempDir dir;
    // api-http is loaded too, for the counters an operator reads.
    const int port = freePort();
    const std::string modules = linkModuleDir(
        dir, {AGENT_MODULE_DIR "/sink-nsq.so", AGENT_MODULE_DIR "/api-http.so", AGENT_TEST_MODULE_DIR "/source-burst.so"});
    std::string config = writeConfig(dir, modules, "[\"source-burst\", \"sink-nsq\", \"api-http\"]",
                                     "[output]\nservers = [\"" + peer.address() +
                                         "\"]\nbuffersize = 10000\ndrain_timeout = 2\nretry_initial = 0.2\nretry_max = 1\n"
                                         "[source-burst]\npoints = 500\ncollections = 4\ninterval = 1\n");
    std::string text = readFile(config);
    text.replace(text.find("listen = \"\""), std::string("listen = \"\"").size(),
                 "listen = \"127.0.0.1:" + std::to_string(port) + "\"");
    writeFile(config, text);
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    ASSERT_TRUE(eventually([&] { return receivedBy(peer).distinct.size() >= 1500; }, std::chrono::seconds(60)))
        << receivedBy(peer).distinct.size() << " points\n"
        << logOf(dir, agent);
    std::this_thread::sleep_for(std::chrono::seconds(2)); // a retry of the refused batch would show by now
    // Every point is counted once: 1,500 delivered, the refused batch's 500 dropped, none left.
    EXPECT_TRUE(eventually([&] { return nsqCounter(port, "agent_sink_points_dropped_total") == 500; },
                           std::chrono::seconds(10)))
        << nsqCounter(port, "agent_sink_points_dropped_total") << " dropped\n" << httpCall(port, "GET", "/metrics").body;
    EXPECT_EQ(nsqCounter(port, "agent_sink_points_in_total"), 2000);
    EXPECT_EQ(nsqCounter(port, "agent_sink_points_out_total"), 1500);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0) << logOf(dir, agent);

    const Received received = receivedBy(peer);
    EXPECT_EQ(received.distinct.size(), 1500u);
    EXPECT_EQ(received.distinct.count({"2", 0}), 0u);
    EXPECT_EQ(received.problems, std::vector<std::string>{});
    EXPECT_EQ(peer.refusals(), 1u) << logOf(dir, agent); // dropped, not retried
    ASSERT_EQ(peer.errorsSent().size(), 1u);
    EXPECT_TRUE(contains(peer.errorsSent().front(), "E_BAD_MESSAGE"));
    EXPECT_TRUE(contains(readFile(dir / "log/agent.log"), "500 points")) << logOf(dir, agent);
    EXPECT_EQ(peer.internalError(), "");
}

TEST(NsqSink, CheckOfTheGoAgentsSeedPointingAtThePeerSaysSinkNsqIsOk) {
    NsqPeer peer;
    TempDir dir;
    std::string seed = readFile(std::string(AGENT_SOURCE_DIR) + "/etc/agent.seed.toml");
    const std::string servers = "servers = [\"127.0.0.1:4150\"]";
    const std::string logdir = "logdir = \"/tmp/agent/log\"";
    ASSERT_NE(seed.find(servers), std::string::npos) << seed;
    ASSERT_NE(seed.find(logdir), std::string::npos) << seed;
    seed.replace(seed.find(servers), servers.size(), "servers = [\"" + peer.address() + "\"]");
    seed.replace(seed.find(logdir), logdir.size(), "logdir = \"" + dir / "log" + "\"");
    writeFile(dir / "agent.toml", seed);

    const CommandResult check =
        runCommand({kAgent, "check", "-f", dir / "agent.toml", "-Dmodules.dir=" AGENT_MODULE_DIR});
    EXPECT_TRUE(contains(check.out, "module sink-nsq: ok (" AGENT_MODULE_DIR "/sink-nsq.so)\n"))
        << check.out << check.err;
}

TEST(NsqSink, CheckListsEveryBadSinkNsqKeyAtOnce) {
    TempDir dir;
    const std::string config = writeConfig(dir, AGENT_MODULE_DIR, "[\"sink-nsq\"]",
                                           "[sink-nsq]\n"
                                           "servers = [\"nsqd-without-port\", \"127.0.0.1:0\"]\n"
                                           "topic = \"collect {ns}\"\n"
                                           "format = \"xml\"\n"
                                           "max_message_bytes = 100\n"
                                           "timeout = 0\n"
                                           "heartbeat_interval = 600\n");
    const CommandResult check = runCommand({kAgent, "check", "-f", config});
    EXPECT_EQ(check.exitCode, 1) << check.out << check.err;
    for (const std::string& expected :
         {config + ":14: [sink-nsq] servers: \"nsqd-without-port\" has no port (host:port)",
          config + ":14: [sink-nsq] servers: \"127.0.0.1:0\" has no valid port (1 to 65535)",
          config +
              ":15: [sink-nsq] topic: \"collect {ns}\" gives \"collect ns1\" for namespace ns1, not a valid NSQ topic",
          config + ":16: [sink-nsq] format: \"xml\" is neither json nor line",
          config + ":17: [sink-nsq] max_message_bytes: must be between 256 and",
          config + ":18: [sink-nsq] timeout: must be above 0",
          config + ":19: [sink-nsq] heartbeat_interval: must be between 1 and 60 seconds"}) {
        EXPECT_TRUE(contains(check.out, expected)) << expected << "\n" << check.out;
    }
}

TEST(NsqSink, EmptyOutputServersAreRefusedSayingWhereTheListCameFrom) {
    TempDir dir;
    const std::string config = writeConfig(dir, AGENT_MODULE_DIR, "[\"sink-nsq\"]", "[output]\nservers = []\n");
    const CommandResult check = runCommand({kAgent, "check", "-f", config});
    EXPECT_EQ(check.exitCode, 1) << check.out << check.err;
    EXPECT_TRUE(
        contains(check.out, "[sink-nsq] servers: lists no server; give at least one host:port (from [output] servers)"))
        << check.out;
}
