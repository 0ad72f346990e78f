// The real agent with source-probe: the registry lists a PORT entry for a listening port and one
// for a closed port, and a PROC entry for a process that runs a binary of its own; the sink gets
// all three. Bad entries are named in the log once.
#include "GitServer.h"
#include "RegistryFixture.h"
#include "TestSupport.h"

#include <Poco/Net/ServerSocket.h>

#include <gtest/gtest.h>

#include <csignal>

using namespace agent::test;

TEST(Probe, PortAndProcEntriesOfTheRegistryBecomeMetrics) {
    TempDir dir;
    Poco::Net::ServerSocket listening(Poco::Net::SocketAddress("127.0.0.1", 0));
    const std::string open = std::to_string(listening.address().port());
    const std::string closed = std::to_string(closedLoopbackPort());
    // A copy of sleep at a path of this test's own: exactly one process runs it.
    const std::string sleeper = dir / "probe-sleeper";
    ASSERT_EQ(runCommand({"/bin/cp", "/bin/sleep", sleeper}).exitCode, 0);
    BackgroundProcess sleeping({sleeper, "60"}, dir.path());
    RegistryFixture registry;
    registry.setNamespace("ops", "1",
                          {{{"measurement_type", "PORT"}, {"name", "web"}, {"port", open}, {"interval", "1"}},
                           {{"measurement_type", "PORT"}, {"name", "gone"}, {"port", closed}, {"connect_timeout", "1"}},
                           {{"measurement_type", "PORT"}, {"name", "odd"}, {"port", open}, {"connect_timeout", "soon"}},
                           {{"measurement_type", "PROC"}, {"name", "sleeper"}, {"bin_path", sleeper}},
                           {{"measurement_type", "PROC"}, {"name", "bad name"}, {"bin_path", "/x"}}});
    const std::string config = writeAgentConfig(dir, AGENT_MODULE_DIR, "[\"source-probe\", \"sink-file\"]",
                                                "[source-probe]\ninterval = 1\n"
                                                "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n",
                                                "registryaddr = \"" + registry.url() + "\"\n");
    BackgroundProcess agent({AGENT_BINARY, "run", "-f", config}, dir.path());
    const std::string file = dir / "metrics.lp";
    ASSERT_TRUE(eventually([&] { return contains(readFile(file), "PROC.sleeper.cpu.percent,"); }, std::chrono::seconds(30)))
        << readFile(dir / "log/agent.log") << readFile(file);
    const std::string lines = readFile(file);
    EXPECT_TRUE(contains(lines, "PORT.web." + open + ",ns=ops,host=test-host value=1i ")) << lines;
    EXPECT_TRUE(contains(lines, "PORT.gone." + closed + ",ns=ops,host=test-host value=0i ")) << lines;
    EXPECT_TRUE(contains(lines, "PROC.sleeper.count,ns=ops,host=test-host value=1i ")) << lines;
    EXPECT_TRUE(contains(lines, "PROC.sleeper.threads,ns=ops,host=test-host value=1i ")) << lines;
    EXPECT_TRUE(contains(lines, "PROC.sleeper.mem.rss,")) << lines;
    const std::string log = readFile(dir / "log/agent.log");
    EXPECT_TRUE(contains(log, "invalid name \"bad name\"")) << log;
    // A bad connect_timeout is named once and the module's is used: the check still runs.
    EXPECT_TRUE(contains(lines, "PORT.odd." + open + ",ns=ops,host=test-host value=1i ")) << lines;
    const std::string oddTimeout = "PORT entry odd in ops: connect_timeout \"soon\" is not 0 to 60 seconds; the module's 3 s is used";
    EXPECT_TRUE(contains(log, oddTimeout)) << log;
    EXPECT_EQ(log.find(oddTimeout), log.rfind(oddTimeout)) << "logged once, not every round\n" << log;
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}
