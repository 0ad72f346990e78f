// source-netif under a registry, as the Go agent ran: an entry {"measurement_type": "NET",
// "interval": "2"} of the host's namespace sets how often the interface figures are collected,
// without a restart, and the section's interval comes back when the entry goes away.
#include "RegistryFixture.h"
#include "HttpClient.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <csignal>
#include <filesystem>
#include <thread>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

std::size_t linesStartingWith(const std::string& file, const std::string& prefix) {
    std::size_t n = 0;
    for (const std::string& line : lines(readFile(file)))
        n += line.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
}

std::size_t linesContaining(const std::string& file, const std::string& part) {
    std::size_t n = 0;
    for (const std::string& line : lines(readFile(file)))
        n += contains(line, part) ? 1 : 0;
    return n;
}

// An interface whose counters stand still: every read after the first publishes rates (of 0),
// so each collection shows in the sink, whatever the test machine's interfaces.
const char* kProcNetDev =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
    "  eth0:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n";

} // namespace

TEST(NetifRegistry, ANetEntrySetsTheIntervalWithoutARestartAndItsRemovalBringsTheSectionsBack) {
    TempDir dir;
    writeFile(dir / "net_dev", kProcNetDev);
    std::filesystem::create_directories(dir / "sys");
    RegistryFixture registry;
    const RegistryFixture::Entry cpu = {{"measurement_type", "CPU"}, {"interval", "1"}}; // not netif's business
    registry.setNamespace("ops", "1", {cpu});
    const int port = freePort();
    std::string config = writeAgentConfig(dir, AGENT_MODULE_DIR, "[\"source-netif\", \"sink-file\", \"api-http\"]",
                                          "[source-netif]\ninterval = 60\n"
                                          "proc_net_dev = \"" + dir / "net_dev" + "\"\n"
                                          "sys_class_net = \"" + dir / "sys" + "\"\n"
                                          "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n",
                                          "registryaddr = \"" + registry.url() + "\"\n");
    std::string text = readFile(config);
    text.replace(text.find("listen = \"\""), std::string("listen = \"\"").size(),
                 "listen = \"127.0.0.1:" + std::to_string(port) + "\"");
    writeFile(config, text);
    BackgroundProcess agent({kAgent, "run", "-f", config, "-Dagent.registry_interval=1"}, dir.path());
    const std::string file = dir / "metrics.lp";
    const std::string log = dir / "log/agent.log";
    auto count = [&file] { return linesStartingWith(file, "net.in,ns=ops,"); };
    auto health = [&]() -> Poco::JSON::Object::Ptr {
        try {
            return getJson(port, "/me/status")->getObject("modules")->getObject("source-netif")->getObject("health");
        } catch (const std::exception&) {
            return nullptr;
        }
    };
    auto intervalIs = [&](std::int64_t seconds, const std::string& from) {
        const Poco::JSON::Object::Ptr object = health();
        return object && object->has("interval") && object->getValue<Poco::Int64>("interval") == seconds &&
               object->getValue<std::string>("interval_from") == from;
    };

    // The section's minute: the first read (a baseline) has happened, and nothing is published.
    ASSERT_TRUE(eventually([&] { return intervalIs(60, "section"); }, std::chrono::seconds(30)))
        << readFile(log) << agent.err();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(count(), 0u) << readFile(file);

    // The registry's answer changes: every 2 s from the next poll on, without a restart.
    registry.setNamespace("ops", "1", {cpu, {{"measurement_type", "NET"}, {"interval", "2"}}});
    ASSERT_TRUE(eventually([&] { return count() >= 1; }, std::chrono::seconds(30))) << readFile(log) << readFile(file);
    const std::size_t first = count();
    std::this_thread::sleep_for(std::chrono::seconds(12));
    const std::size_t rounds = count() - first;
    EXPECT_GE(rounds, 4u) << "every 2 s makes about 6 rounds in 12 s\n" << readFile(file);
    EXPECT_LE(rounds, 9u) << "every 2 s makes about 6 rounds in 12 s\n" << readFile(file);
    EXPECT_TRUE(intervalIs(2, "registry")) << readFile(log);
    EXPECT_EQ(linesContaining(log, "source-netif: interval now 2 s (a registry NET entry"), 1u) << readFile(log);

    // The entry goes away: back to the section's minute.
    registry.setNamespace("ops", "1", {cpu});
    ASSERT_TRUE(eventually([&] { return linesContaining(log, "source-netif: interval now 60 s (the section's") == 1; },
                           std::chrono::seconds(30)))
        << readFile(log);
    const std::size_t before = count();
    std::this_thread::sleep_for(std::chrono::seconds(8));
    EXPECT_LE(count() - before, 1u) << "at most a round already under way\n" << readFile(file);
    EXPECT_TRUE(intervalIs(60, "section") || !health()) << readFile(log);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}

// A bad NET interval is named in the log and the section's interval stays.
TEST(NetifRegistry, ABadNetIntervalIsLoggedAndIgnored) {
    TempDir dir;
    writeFile(dir / "net_dev", kProcNetDev);
    RegistryFixture registry;
    registry.setNamespace("ops", "1", {{{"measurement_type", "NET"}, {"interval", "2s"}}});
    const std::string config = writeAgentConfig(dir, AGENT_MODULE_DIR, "[\"source-netif\", \"sink-file\"]",
                                                "[source-netif]\ninterval = 60\n"
                                                "proc_net_dev = \"" + dir / "net_dev" + "\"\n"
                                                "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n",
                                                "registryaddr = \"" + registry.url() + "\"\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    const std::string log = dir / "log/agent.log";
    ASSERT_TRUE(eventually(
        [&] { return contains(readFile(log), "registry entry NET of namespace ops: interval \"2s\" is not 1 to 86400 seconds; ignored"); },
        std::chrono::seconds(30)))
        << readFile(log) << agent.err();
    std::this_thread::sleep_for(std::chrono::seconds(5));
    EXPECT_EQ(linesStartingWith(dir / "metrics.lp", "net.in,"), 0u) << readFile(dir / "metrics.lp");
    EXPECT_FALSE(contains(readFile(log), "source-netif: interval now")) << readFile(log);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}
