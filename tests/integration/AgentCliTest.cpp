// The `agent` command as an operator uses it: run, start/status/stop with a pid file, check,
// once, version, and a clear one-line error for each kind of bad input.
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <Poco/File.h>

#include <csignal>
#include <regex>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

// A config whose every path lies in `dir`; `extra` is appended (its first line is line 16).
std::string writeConfig(const TempDir& dir, const std::string& extra, const std::string& load = "[\"source-netif\", \"sink-file\"]",
                        const std::string& moduleDir = AGENT_MODULE_DIR) {
    return writeAgentConfig(dir, moduleDir, load, "[output]\ndrain_timeout = 1\n" + extra, "ifaceprefix = [\"lo\"]\n");
}

const std::string kFastNetif = "[source-netif]\ninterval = 1\n";

std::string sinkFileSection(const TempDir& dir) { return "[sink-file]\npath = \"" + dir / "out/metrics.lp" + "\"\n"; }

CommandResult agentCommand(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {kAgent};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
}

} // namespace

TEST(AgentCli, RunWritesNetInLinesWithAHostTagAndStopsCleanlyOnSigterm) {
    TempDir dir;
    const std::string config = writeConfig(dir, kFastNetif + sinkFileSection(dir));
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    const std::string file = dir / "out/metrics.lp";
    ASSERT_TRUE(eventually([&] { return contains(readFile(file), "net.in,"); }, std::chrono::seconds(30)))
        << agent.err() << readFile(dir / "log/agent.log");
    const std::regex netIn(R"(^net\.in,ns=ns1,host=test-host,interface=lo value=[0-9.e+]+ [0-9]{10}$)");
    bool matched = false;
    for (const std::string& line : lines(readFile(file))) matched = matched || std::regex_match(line, netIn);
    EXPECT_TRUE(matched) << readFile(file);

    const auto stopAsked = std::chrono::steady_clock::now();
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - stopAsked, std::chrono::seconds(5));
    EXPECT_TRUE(contains(readFile(dir / "log/agent.log"), "agent stopped"));
    EXPECT_FALSE(fileExists(dir / "agent.pid"));
}

TEST(AgentCli, SigintStopsTheForegroundAgentToo) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "log/agent.log"), "started"); }));
    agent.signal(SIGINT);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
}

TEST(AgentCli, SighupReopensTheLogFileAfterItWasMoved) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    const std::string log = dir / "log/agent.log";
    ASSERT_TRUE(eventually([&] { return contains(readFile(log), "started"); }));
    ASSERT_EQ(std::rename(log.c_str(), (log + ".moved").c_str()), 0);
    agent.signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return contains(readFile(log), "log file reopened"); }));
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
}

TEST(AgentCli, StartStatusStopManageADaemonThroughItsPidFile) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    EXPECT_EQ(agentCommand({"status", "-f", config}).exitCode, 3);

    const CommandResult started = agentCommand({"start", "-f", config});
    ASSERT_EQ(started.exitCode, 0) << started.err;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(started.out, match, std::regex(R"(agent started \(pid ([0-9]+)\))"))) << started.out;
    const std::string pid = match[1];
    EXPECT_EQ(readFile(dir / "agent.pid"), pid + "\n");

    const CommandResult status = agentCommand({"status", "-f", config});
    EXPECT_EQ(status.exitCode, 0);
    EXPECT_EQ(status.out, "agent is running (pid " + pid + ")\n");

    const CommandResult second = agentCommand({"start", "-f", config});
    EXPECT_EQ(second.exitCode, 70);
    EXPECT_TRUE(contains(second.err, "agent is already running (pid " + pid)) << second.err;

    const CommandResult stopped = agentCommand({"stop", "-f", config});
    EXPECT_EQ(stopped.exitCode, 0) << stopped.err;
    EXPECT_EQ(stopped.out, "agent stopped (pid " + pid + ")\n");
    EXPECT_EQ(agentCommand({"status", "-f", config}).exitCode, 3);
    EXPECT_FALSE(processAlive(std::stoi(pid)));
}

TEST(AgentCli, StalePidFileDoesNotBlockAStart) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    writeFile(dir / "agent.pid", "1\n"); // pid 1 exists but holds no lock on the file
    const CommandResult started = agentCommand({"start", "-f", config});
    ASSERT_EQ(started.exitCode, 0) << started.err;
    EXPECT_EQ(agentCommand({"stop", "-f", config}).exitCode, 0);
}

TEST(AgentCli, StartReportsTheAgentsOwnStartupErrorAndFails) {
    TempDir dir;
    const std::string config = writeConfig(dir, "[sink-file]\nrotate_keep = 0\n");
    const CommandResult started = agentCommand({"start", "-f", config});
    EXPECT_NE(started.exitCode, 0);
    EXPECT_TRUE(contains(started.err, "[sink-file] rotate_keep: must be between 1 and 1000")) << started.err;
    EXPECT_EQ(agentCommand({"status", "-f", config}).exitCode, 3);
}

TEST(AgentCli, SecondForegroundRunIsRefusedNamingTheRunningPid) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    BackgroundProcess first({kAgent, "run", "-f", config}, dir.path());
    ASSERT_TRUE(eventually([&] { return fileExists(dir / "agent.pid") && !readFile(dir / "agent.pid").empty(); }));
    const CommandResult second = agentCommand({"run", "-f", config});
    EXPECT_NE(second.exitCode, 0);
    EXPECT_TRUE(contains(second.err, "agent is already running (pid " + std::to_string(first.pid()) + ", pid file ")) << second.err;
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait(std::chrono::seconds(10)), 0);
}

TEST(AgentCli, StopCleanRemovesThePluginCacheButNeverTheState) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    writeFile(dir / "plugins/ns1/project/plugin", "#!/bin/sh\n");
    writeFile(dir / "state/spool/segment-1", "data");
    const CommandResult stopped = agentCommand({"stop", "-m", "clean", "-f", config});
    EXPECT_EQ(stopped.exitCode, 0) << stopped.err;
    EXPECT_FALSE(fileExists(dir / "plugins/ns1"));
    EXPECT_TRUE(fileExists(dir / "state/spool/segment-1"));
}

TEST(AgentCli, StopCleanKeepsAStateDirectoryInsideThePluginCache) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    writeFile(dir / "state/spool/segment-1", "data");
    writeFile(dir / "ns1/project/plugin", "#!/bin/sh\n");
    // pluginsdir is the parent of statedir here: the state must survive the clean.
    const CommandResult stopped =
        runCommand({kAgent, "stop", "-m", "clean", "-f", config, "-Dagent.pluginsdir=" + dir.path()});
    EXPECT_EQ(stopped.exitCode, 0) << stopped.err;
    EXPECT_TRUE(contains(stopped.out, "kept " + dir / "state" + ": it holds the state directory")) << stopped.out;
    EXPECT_TRUE(fileExists(dir / "state/spool/segment-1"));
    EXPECT_FALSE(fileExists(dir / "ns1"));
}

TEST(AgentCli, OncePrintsLineProtocolFromEverySourceAndLoadsNoSink) {
    TempDir dir;
    // A sink section that would fail at start proves that no sink is started by `once`.
    const std::string config = writeConfig(dir, "[sink-file]\npath = \"/proc/forbidden/x.lp\"\n");
    const CommandResult once = agentCommand({"once", "-f", config});
    ASSERT_EQ(once.exitCode, 0) << once.err;
    const std::vector<std::string> got = lines(once.out);
    ASSERT_FALSE(got.empty());
    for (const std::string& line : got) {
        EXPECT_TRUE(std::regex_match(line, std::regex(R"(^net\.[a-z.]+,ns=ns1,host=test-host,interface=lo value=[-0-9.e+]+ [0-9]{10}$)")))
            << line;
    }
    EXPECT_TRUE(contains(once.out, "net.in,")) << once.out;
    EXPECT_TRUE(contains(once.out, "net.out.dropped,")) << once.out;
}

TEST(AgentCli, CheckPrintsOneLinePerModuleAndExitsZeroWhenAllLoad) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir));
    const CommandResult check = agentCommand({"check", "-f", config});
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
    EXPECT_EQ(check.out, "config " + config + ": ok\n"
                         "module source-netif: ok (" AGENT_MODULE_DIR "/source-netif.so)\n"
                         "module sink-file: ok (" AGENT_MODULE_DIR "/sink-file.so)\n");
}

TEST(AgentCli, GoAgentSeedConfigLoadsAndDerivesItsModules) {
    const std::string seed = std::string(AGENT_SOURCE_DIR) + "/etc/agent.seed.toml";
    const CommandResult check = agentCommand({"check", "-f", seed, "-Dmodules.dir=" AGENT_MODULE_DIR});
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
    EXPECT_TRUE(contains(check.out, "config " + seed + ": ok (modules derived from its sections)\n")) << check.out;
    EXPECT_TRUE(contains(check.out, "module source-netif: ok")) << check.out;
    EXPECT_TRUE(contains(check.out, "module sink-nsq: ok")) << check.out;
    if (!fileExists(AGENT_MODULE_DIR "/api-http.so"))
        EXPECT_TRUE(contains(check.out, "module api-http: not installed")) << check.out;
}

TEST(AgentCli, GoAgentFilesWithNsqAndWithInfluxOutputsRun) {
    for (const std::string output : {"nsq", "influx"}) {
        TempDir dir;
        std::string seed = readFile(std::string(AGENT_SOURCE_DIR) + "/etc/agent.seed.toml");
        seed.replace(seed.find("name = \"nsq\""), 12, "name = \"" + output + "\"");
        seed.replace(seed.find("/tmp/agent/log"), 14, dir / "log");
        seed += "[sink-influx]\nurls = [\"http://127.0.0.1:9\"]\n"; // nobody listens: points stay spooled
        if (output == "nsq") seed.erase(seed.find("[sink-influx]"));
        writeFile(dir / "agent.toml", seed);
        BackgroundProcess agent({kAgent, "run", "-f", dir / "agent.toml", "-Dmodules.dir=" AGENT_MODULE_DIR,
                                 "-Dagent.statedir=" + dir / "state", "-Dagent.ifaceprefix=lo",
                                 "-Dagent.listen=127.0.0.1:0"}, // any free port: tests run in parallel
                                dir.path());
        ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "log/agent.log"), "started: pid"); }))
            << output << agent.err() << readFile(dir / "log/agent.log");
        EXPECT_TRUE(contains(readFile(dir / "log/agent.log"), "module sink-" + output + " started")) << output;
        // The Go agent's unix socket is served too, and removed at stop.
        const std::string socket = "/var/run/monitor-agent.sock";
        const bool derived = access("/var/run", W_OK | X_OK) == 0;
        if (derived) EXPECT_TRUE(fileExists(socket)) << output << readFile(dir / "log/agent.log");
        agent.signal(SIGTERM);
        EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << output;
        if (derived) EXPECT_FALSE(fileExists(socket)) << output;
    }
}

TEST(AgentCli, DefaultConfigOfMakeRunPassesCheck) {
    const CommandResult check = runCommand({kAgent, "check", "-f", "etc/agent.toml", "-Dmodules.dir=" AGENT_MODULE_DIR},
                                           AGENT_SOURCE_DIR);
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
}

TEST(AgentCli, CheckRefusesBadModulesWithOneLineEachAndExitsOne) {
    TempDir dir;
    const std::string config =
        writeConfig(dir, "",
                    "[\"source-good\", \"source-wrongabi\", \"source-notmodule\", \"source-garbage\", "
                    "\"source-unresolved\", \"source-noabi\", \"source-misnamed\", \"source-bogus\"]",
                    AGENT_TEST_MODULE_DIR);
    const CommandResult check = agentCommand({"check", "-f", config});
    EXPECT_EQ(check.exitCode, 1);
    const std::string dirPrefix = std::string(AGENT_TEST_MODULE_DIR) + "/";
    EXPECT_TRUE(contains(check.out, "module source-good: ok")) << check.out;
    EXPECT_TRUE(contains(check.out, "module source-wrongabi: error: " + dirPrefix + "source-wrongabi.so: built for module ABI"));
    EXPECT_TRUE(contains(check.out, "module source-notmodule: error: " + dirPrefix + "source-notmodule.so: not a module"));
    EXPECT_TRUE(contains(check.out, "module source-garbage: error: " + dirPrefix + "source-garbage.so: not a module (not a shared library"));
    EXPECT_TRUE(contains(check.out, "module source-unresolved: error: " + dirPrefix + "source-unresolved.so: unresolved symbol"));
    EXPECT_TRUE(contains(check.out, "module source-noabi: error: " + dirPrefix + "source-noabi.so: missing ABI symbol"));
    EXPECT_TRUE(contains(check.out, "module source-misnamed: error: " + dirPrefix + "source-misnamed.so: duplicate module name"));
    EXPECT_TRUE(contains(check.out, "module source-bogus: error: " + dirPrefix + "source-bogus.so: not found"));
    EXPECT_TRUE(contains(check.out, "config: error: " + config + ": no sink is loaded, but source-good publishes metrics"))
        << check.out;
}

// Sinks are needed where something publishes: an agent with a source and no sink is refused,
// one that only serves the API (or only reports, ArgusTest) is not.
TEST(AgentCli, ASourceWithoutASinkIsRefusedAndAnAgentWithoutSourcesNeedsNone) {
    TempDir dir;
    const std::string netif = writeConfig(dir, "", "[\"source-netif\"]");
    const CommandResult refused = agentCommand({"check", "-f", netif});
    EXPECT_EQ(refused.exitCode, 1) << refused.out;
    EXPECT_TRUE(contains(refused.out, "config: error: " + netif + ": no sink is loaded, but source-netif publishes metrics: "
                                      "set [output] name (nsq, influx or file) or load a sink- module"))
        << refused.out;

    const std::string apiOnly = writeConfig(dir, "[api-http]\nlisten = \"127.0.0.1:0\"\n", "[\"api-http\"]");
    const CommandResult accepted = agentCommand({"check", "-f", apiOnly});
    EXPECT_EQ(accepted.exitCode, 0) << accepted.out << accepted.err;
}

TEST(AgentCli, ModuleThatRejectsItsSectionListsEveryBadKey) {
    TempDir dir;
    const std::string unknown = writeConfig(dir, "[source-good]\ncolour = \"red\"\n", "[\"source-good\"]", AGENT_TEST_MODULE_DIR);
    const CommandResult check = agentCommand({"check", "-f", unknown});
    EXPECT_EQ(check.exitCode, 1);
    EXPECT_TRUE(contains(check.out, "module source-good: error: " + unknown +
                                        ":17: [source-good] colour: unknown key (valid keys: interval, value)\n"))
        << check.out;

    const std::string rejected = writeConfig(dir, "[source-good]\ninterval = 0\nvalue = -1\n", "[\"source-good\"]", AGENT_TEST_MODULE_DIR);
    const CommandResult result = agentCommand({"check", "-f", rejected});
    EXPECT_EQ(result.exitCode, 1);
    EXPECT_TRUE(contains(result.out, "module source-good: error: " + rejected + ":17: [source-good] interval: must be at least 1\n"
                                     "    " + rejected + ":18: [source-good] value: must not be negative\n"))
        << result.out;
}

TEST(AgentCli, MissingConfigFileIsOneClearLine) {
    const CommandResult run = agentCommand({"run", "-f", "/nonexistent/agent.toml"});
    EXPECT_EQ(run.exitCode, 78);
    EXPECT_EQ(run.err, "agent: /nonexistent/agent.toml: config file not found\n");
}

TEST(AgentCli, DirectoryGivenAsConfigFileIsOneClearLine) {
    TempDir dir;
    Poco::File(dir.path()).createDirectories();
    const CommandResult run = agentCommand({"check", "-f", dir.path()});
    EXPECT_EQ(run.exitCode, 1);
    EXPECT_EQ(run.err, "agent: " + dir.path() + ": is a directory, not a config file\n");
}

TEST(AgentCli, TomlSyntaxErrorNamesTheLine) {
    TempDir dir;
    writeFile(dir / "bad.toml", "[agent]\nlisten = \"127.0.0.1:1232\"\nifaceprefix = [\"eth\"\n");
    const CommandResult run = agentCommand({"run", "-f", dir / "bad.toml"});
    EXPECT_EQ(run.exitCode, 78);
    EXPECT_TRUE(std::regex_search(run.err, std::regex("^agent: " + dir / "bad.toml" + ":[34]:[0-9]+: TOML syntax error: ")))
        << run.err;
    EXPECT_EQ(lines(run.err).size(), 1u);
}

TEST(AgentCli, UnknownKeyNamesFileLineAndKey) {
    TempDir dir;
    writeFile(dir / "bad.toml", "[agent]\nlisten = \"\"\n[log]\nlogdir = \"/tmp\"\nlog_level = \"DEBUG\"\n");
    const CommandResult run = agentCommand({"run", "-f", dir / "bad.toml"});
    EXPECT_EQ(run.exitCode, 78);
    EXPECT_TRUE(contains(run.err, "agent: " + dir / "bad.toml" + ":5: [log] log_level: unknown key")) << run.err;
}

TEST(AgentCli, UnknownModuleIsNamedWithItsFile) {
    TempDir dir;
    const std::string config = writeConfig(dir, sinkFileSection(dir), "[\"source-netif\", \"sink-file\", \"source-nope\"]");
    const CommandResult run = agentCommand({"run", "-f", config});
    EXPECT_EQ(run.exitCode, 78);
    EXPECT_TRUE(contains(run.err, AGENT_MODULE_DIR "/source-nope.so: not found")) << run.err;
}

TEST(AgentCli, WrongUsagePrintsUsageAndExitsTwo) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"frobnicate"}, {"--no-such-option"}, {"run", "extra"}, {"stop", "-m", "dirty"}, {"run", "-f"}}) {
        const CommandResult result = agentCommand(args);
        EXPECT_EQ(result.exitCode, 2) << args[0];
        EXPECT_TRUE(contains(result.err, "usage: agent")) << result.err;
    }
    const CommandResult help = agentCommand({"--help"});
    EXPECT_EQ(help.exitCode, 0);
    EXPECT_TRUE(contains(help.out, "usage: agent"));
}

TEST(AgentCli, VersionNamesTheVersionCommitAndAbi) {
    const CommandResult version = agentCommand({"version"});
    EXPECT_EQ(version.exitCode, 0);
    EXPECT_TRUE(std::regex_match(version.out, std::regex(R"(agent [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]+|unknown), module ABI [0-9]+\)\n)")))
        << version.out;
}
