// The real agent with source-exec: a registry fixture lists a git plugin, the agent clones it
// (file:// through the [agent] git template), runs it as nobody on its period and delivers
// PLUGIN.<project>.* and the result metric PLUGIN.<project> through sink-file.
#include "GitServer.h"
#include "RegistryFixture.h"
#include "HttpClient.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <csignal>
#include <filesystem>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

// A plugin whose repository is ops/<project> on the test's GitServer (through the [agent] git template).
RegistryFixture::Entry pluginEntry(const std::string& project, const std::string& interval) {
    return RegistryFixture::pluginEntry(project, "git@git.example.com:ops/" + project + ".git", interval);
}

std::string config(const TempDir& dir, const RegistryFixture& registry, const GitServer& git) {
    return writeAgentConfig(dir, AGENT_MODULE_DIR, "[\"source-exec\", \"sink-file\"]",
                            "[source-exec]\ninterval = 1\nclone_splay = 0\nkill_grace = 0.2\n"
                            "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n",
                            "registryaddr = \"" + registry.url() + "\"\n"
                            "pluginsuser = \"nobody\"\n"
                            "git = \"" + git.fileUrlTemplate() + "\"\n");
}

// The row of ns `ops`, `project` in GET /plugins/list (read fresh on each call).
Poco::JSON::Object::Ptr pluginRow(int port, const std::string& project) {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(30, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/plugins/list?ns=ops", Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::string body;
    Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
    const auto list = Poco::JSON::Parser().parse(body).extract<Poco::JSON::Array::Ptr>();
    for (std::size_t i = 0; i < list->size(); ++i) {
        Poco::JSON::Object::Ptr row = list->getObject(static_cast<unsigned>(i));
        if (row && row->getValue<std::string>("project") == project) return row;
    }
    return nullptr;
}

// config() with api-http loaded and listening on `port`, for the plugin table (/plugins/list).
std::string configWithApi(const TempDir& dir, const RegistryFixture& registry, const GitServer& git, int port) {
    const std::string path = config(dir, registry, git);
    std::string text = readFile(path);
    const std::string load = "[\"source-exec\", \"sink-file\"]";
    text.replace(text.find(load), load.size(), "[\"source-exec\", \"sink-file\", \"api-http\"]");
    text.replace(text.find("listen = \"\""), std::string("listen = \"\"").size(),
                 "listen = \"127.0.0.1:" + std::to_string(port) + "\"");
    writeFile(path, text);
    return path;
}

// The lines of `text` that contain `part`.
std::vector<std::string> linesWith(const std::string& text, const std::string& part) {
    std::vector<std::string> found;
    for (const std::string& line : lines(text))
        if (contains(line, part)) found.push_back(line);
    return found;
}

} // namespace

TEST(ExecPlugin, RegistryListedGitPluginRunsAsNobodyAndItsMetricsReachTheSink) {
    TempDir dir;
    GitServer git;
    git.createRepo("ops/disk", "#!/bin/sh\n"
                               "echo \"[{\\\"name\\\": \\\"used\\\", \\\"value\\\": 42, \\\"tags\\\": {\\\"mount\\\": \\\"/data\\\"}},"
                               " {\\\"name\\\": \\\"uid\\\", \\\"value\\\": $(id -u)},"
                               " {\\\"name\\\": \\\"bad name\\\", \\\"value\\\": 1}]\"\n");
    git.createRepo("ops/broken", "#!/bin/sh\necho oops >&2\nexit 3\n");
    RegistryFixture registry;
    registry.setNamespace("ops", "1", {pluginEntry("disk", "1"), pluginEntry("broken", "1")});

    BackgroundProcess agent({kAgent, "run", "-f", config(dir, registry, git)}, dir.path());
    const std::string file = dir / "metrics.lp";
    // Each plugin runs at its own offset in its period: wait for both results.
    ASSERT_TRUE(eventually([&] { return contains(readFile(file), "PLUGIN.broken,") && contains(readFile(file), "PLUGIN.disk,"); },
                           std::chrono::seconds(40)))
        << readFile(dir / "log/agent.log") << agent.err();
    const std::string lines = readFile(file);
    EXPECT_TRUE(contains(lines, "PLUGIN.disk.used,ns=ops,host=test-host,mount=/data value=42i ")) << lines;
    EXPECT_TRUE(contains(lines, "PLUGIN.disk.uid,ns=ops,host=test-host value=65534i ")) << lines; // nobody
    EXPECT_TRUE(contains(lines, "PLUGIN.disk,ns=ops,host=test-host,status=ok value=0i ")) << lines;
    EXPECT_TRUE(contains(lines, "PLUGIN.broken,ns=ops,host=test-host,status=error value=1i ")) << lines;
    EXPECT_FALSE(contains(lines, "bad name")) << lines;
    const std::string log = readFile(dir / "log/agent.log");
    EXPECT_TRUE(contains(log, "plugin ops/broken: error")) << log;
    EXPECT_TRUE(contains(log, "stderr: oops")) << log;
    EXPECT_TRUE(contains(log, "dropped 1 entries")) << log;
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}

TEST(ExecPlugin, RegistryEntriesThatWouldEscapePluginsdirAreRefused) {
    TempDir dir;
    GitServer git;
    git.createRepo("ops/fine");
    RegistryFixture registry;
    registry.setNamespace("ops", "1", {RegistryFixture::pluginEntry("x", "git@h:../../etc.git", "1"),
                                       RegistryFixture::pluginEntry("y", "/abs/path", "1"),
                                       pluginEntry("fine", "1")});
    BackgroundProcess agent({kAgent, "run", "-f", config(dir, registry, git)}, dir.path());
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "metrics.lp"), "PLUGIN.fine,"); }, std::chrono::seconds(40)))
        << readFile(dir / "log/agent.log");
    const std::string log = readFile(dir / "log/agent.log");
    EXPECT_TRUE(contains(log, "git@h:../../etc.git")) << log;
    EXPECT_TRUE(contains(log, "refused")) << log;
    EXPECT_FALSE(fileExists(dir / "etc"));
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}

TEST(ExecPlugin, ChangedPeriodReschedulesAndARemovedPluginStops) {
    TempDir dir;
    GitServer git;
    git.createRepo("ops/tick", "#!/bin/sh\necho '[{\"name\": \"run\", \"value\": 1}]'\n");
    RegistryFixture registry;
    registry.setNamespace("ops", "1", {pluginEntry("tick", "3600")}); // due in up to an hour
    const std::string path = config(dir, registry, git);
    BackgroundProcess agent({kAgent, "run", "-f", path, "-Dagent.registry_interval=1"}, dir.path());
    ASSERT_TRUE(eventually([&] { return fileExists(dir / "plugins/ops/tick/plugin"); }, std::chrono::seconds(30)))
        << readFile(dir / "log/agent.log");
    registry.setNamespace("ops", "1", {pluginEntry("tick", "1")}); // the next poll brings period 1
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "metrics.lp"), "PLUGIN.tick.run,"); }, std::chrono::seconds(60)))
        << readFile(dir / "log/agent.log");
    registry.removeNamespace("ops");
    registry.setNamespace("other", "2", {});
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "log/agent.log"), "plugin ops/tick left the registry"); },
                           std::chrono::seconds(60)))
        << readFile(dir / "log/agent.log");
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}

TEST(ExecPlugin, MissingGitHelperIsNamedByAgentCheckAndTheKernelFallbacksAreLoggedAtStart) {
    TempDir dir;
    GitServer git;
    RegistryFixture registry;
    // A module directory holding copies of the modules but not the helper next to them.
    const std::string modules = dir / "modules";
    std::filesystem::create_directories(modules);
    for (const char* module : {"source-exec.so", "sink-file.so"})
        std::filesystem::copy_file(std::string(AGENT_MODULE_DIR) + "/" + module, modules + "/" + module);
    const std::string broken = writeAgentConfig(dir, modules, "[\"source-exec\", \"sink-file\"]",
                                                "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n",
                                                "registryaddr = \"" + registry.url() + "\"\n");
    const CommandResult check = runCommand({kAgent, "check", "-f", broken});
    EXPECT_NE(check.exitCode, 0);
    EXPECT_TRUE(contains(check.out + check.err, "the git helper " + modules + "/source-exec-git is missing"))
        << check.out << check.err;

    // With the real module directory the agent starts and says which kernel calls plugins get.
    BackgroundProcess agent({kAgent, "run", "-f", config(dir, registry, git)}, dir.path());
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "log/agent.log"), "plugin runner: "); }))
        << readFile(dir / "log/agent.log") << agent.err();
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}

TEST(ExecPlugin, OnceClonesThroughTheQueueAndRunsEveryPeriodicPluginTogether) {
    TempDir dir;
    GitServer git;
    // Each sleeps 2 s: run one after another they would take 6 s.
    for (const char* project : {"one", "two", "three"})
        git.createRepo(std::string("ops/") + project,
                       "#!/bin/sh\nsleep 2\necho '[{\"name\": \"up\", \"value\": 1}]'\n");
    RegistryFixture registry;
    registry.setNamespace("ops", "1", {pluginEntry("one", "60"), pluginEntry("two", "60"), pluginEntry("three", "60")});
    const auto start = std::chrono::steady_clock::now();
    const CommandResult once = runCommand({kAgent, "once", "-f", config(dir, registry, git)});
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(once.exitCode, 0) << once.err;
    for (const char* project : {"one", "two", "three"}) {
        EXPECT_TRUE(contains(once.out, std::string("PLUGIN.") + project + ".up,ns=ops")) << once.out << once.err;
        EXPECT_TRUE(contains(once.out, std::string("PLUGIN.") + project + ",ns=ops,host=test-host,status=ok")) << once.out;
    }
    EXPECT_LT(took, std::chrono::seconds(5));
}

// What plugins in the field print (issue 15): lodastack-plugins/nvidia prints `null` on a host
// without a GPU, others null values for a figure they have no reading of, and decimal numbers as
// strings. The Go agent took the first two quietly and stored "41.5" as a number. Output that is
// no JSON list at all is bad_output, and the log shows what the plugin printed.
TEST(ExecPlugin, NullOutputAndNullValuesAreQuietGoodRunsAndGarbageIsLoggedWithItsFirstBytes) {
    TempDir dir;
    GitServer git;
    git.createRepo("ops/nogpu", "#!/bin/sh\necho null\n");
    git.createRepo("ops/partial", "#!/bin/sh\necho '[{\"name\": \"util\", \"value\": null},"
                                  " {\"name\": \"temp\", \"value\": \"41.5\"}, {\"name\": \"state\", \"value\": \"idle\"}]'\n");
    git.createRepo("ops/garbage", "#!/bin/sh\nprintf 'Traceback (most recent call last):\\n  File \"x\"\\n'\n");
    RegistryFixture registry;
    registry.setNamespace("ops", "1", {pluginEntry("nogpu", "1"), pluginEntry("partial", "1"), pluginEntry("garbage", "1")});
    const int port = freePort();
    BackgroundProcess agent({kAgent, "run", "-f", configWithApi(dir, registry, git, port)}, dir.path());
    const std::string file = dir / "metrics.lp";
    const std::string log = dir / "log/agent.log";
    auto count = [&file](const std::string& part) { return linesWith(readFile(file), part).size(); };
    // Several runs of each, and the garbage warning written.
    ASSERT_TRUE(eventually(
        [&] {
            return count("PLUGIN.nogpu,ns=ops,host=test-host,status=ok value=0i ") >= 2 &&
                   count("PLUGIN.partial,ns=ops,host=test-host,status=ok value=0i ") >= 2 &&
                   count("PLUGIN.garbage,ns=ops,host=test-host,status=bad_output value=1i ") >= 2 &&
                   contains(readFile(log), "plugin ops/garbage: bad_output");
        },
        std::chrono::seconds(60)))
        << readFile(log) << agent.err() << readFile(file);

    const std::string metrics = readFile(file);
    EXPECT_EQ(count("PLUGIN.nogpu."), 0u) << metrics;
    EXPECT_EQ(count("PLUGIN.partial.util"), 0u) << metrics;
    EXPECT_GE(count("PLUGIN.partial.temp,ns=ops,host=test-host value=41.5 "), 1u) << metrics;
    EXPECT_GE(count("PLUGIN.partial.state,ns=ops,host=test-host value=\"idle\" "), 1u) << metrics;
    EXPECT_EQ(count("PLUGIN.garbage."), 0u) << metrics;

    const std::string text = readFile(log);
    EXPECT_TRUE(linesWith(text, "plugin ops/nogpu:").empty()) << text;
    EXPECT_TRUE(linesWith(text, "plugin ops/partial:").empty()) << text;
    // One line per run, the output quoted on it with its newlines escaped.
    const std::vector<std::string> garbage = linesWith(text, "plugin ops/garbage: bad_output: output is not JSON");
    ASSERT_FALSE(garbage.empty()) << text;
    EXPECT_TRUE(contains(garbage.front(), R"(; output: "Traceback (most recent call last):\n  File \"x\"\n")"))
        << garbage.front();

    // The plugin table: both quiet plugins ok, the null values counted as skipped, not dropped.
    auto rowOf = [&](const std::string& project) { return pluginRow(port, project); };
    const Poco::JSON::Object::Ptr nogpu = rowOf("nogpu");
    ASSERT_TRUE(nogpu);
    EXPECT_EQ(nogpu->getValue<std::string>("result"), "ok");
    EXPECT_EQ(nogpu->getValue<Poco::UInt64>("metrics_published"), 0u);
    const Poco::JSON::Object::Ptr partial = rowOf("partial");
    ASSERT_TRUE(partial);
    EXPECT_EQ(partial->getValue<std::string>("result"), "ok");
    EXPECT_GE(partial->getValue<Poco::UInt64>("entries_skipped"), 2u);
    EXPECT_EQ(partial->getValue<Poco::UInt64>("entries_dropped"), 0u);
    const Poco::JSON::Object::Ptr bad = rowOf("garbage");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->getValue<std::string>("result"), "bad_output");
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}
