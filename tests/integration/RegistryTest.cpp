// The real agent with a registry: the host's namespaces come from the registry fixture, and a
// restart with the registry gone keeps them from the cache in the state dir.
#include "RegistryFixture.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <csignal>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

std::string config(const TempDir& dir, const std::string& registry) {
    return writeAgentConfig(dir, AGENT_MODULE_DIR, "[\"source-netif\", \"sink-file\"]",
                            "[source-netif]\ninterval = 1\n"
                            "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n",
                            "ifaceprefix = [\"lo\"]\nregistryaddr = \"" + registry + "\"\n");
}

// Runs the agent until `file` holds a line containing `text`, then stops it.
void runUntil(const TempDir& dir, const std::string& configPath, const std::string& text) {
    BackgroundProcess agent({kAgent, "run", "-f", configPath}, dir.path());
    EXPECT_TRUE(eventually([&] { return contains(readFile(dir / "metrics.lp"), text); }, std::chrono::seconds(30)))
        << readFile(dir / "log/agent.log") << agent.err();
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
}

} // namespace

TEST(Registry, NamespacesComeFromTheRegistryAndSurviveARestartWithoutIt) {
    TempDir dir;
    std::string address;
    {
        RegistryFixture registry;
        registry.setNamespace("team.web", "7", {});
        address = registry.url();
        runUntil(dir, config(dir, address), "net.in,ns=team.web,host=test-host,interface=lo ");
        EXPECT_FALSE(registry.nsRequests().empty());
        EXPECT_FALSE(registry.reports().empty());
    }
    // The registry is gone (its port is closed): the cached answer keeps the namespace.
    writeFile(dir / "metrics.lp", "");
    runUntil(dir, config(dir, address), "net.in,ns=team.web,host=test-host,interface=lo ");
    EXPECT_TRUE(contains(readFile(dir / "log/agent.log"), "registry poll failed")) << readFile(dir / "log/agent.log");
}
