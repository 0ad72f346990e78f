// Isolation (docs/ARCHITECTURE.md §5): the real agent with many slow, hanging and unclonable
// plugins, a source that blocks in collect(), and a third-party HTTP front end. What a user checks:
// the host collector's heartbeat `agent.alive` keeps its one point per second, slow plugins keep
// their own periods, stop is clean (exit 0 within the stop timeout, no plugin process left), and a
// module that serves routes stops before the modules it serves, whatever its name.
#include "GitServer.h"
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

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;
using Clock = std::chrono::steady_clock;

// The timestamp of a line-protocol line, in seconds (sink-file writes nanoseconds).
std::int64_t lineSeconds(const std::string& line) {
    const std::size_t space = line.rfind(' ');
    if (space == std::string::npos) return 0;
    const long long value = std::atoll(line.c_str() + space + 1);
    return value > 1'000'000'000'000'000LL ? value / 1'000'000'000 : value > 1'000'000'000'000LL ? value / 1000 : value;
}

// The distinct seconds at which lines starting with `prefix` were stamped.
std::set<std::int64_t> secondsOf(const std::string& text, const std::string& prefix) {
    std::set<std::int64_t> seconds;
    for (const std::string& line : lines(text))
        if (line.rfind(prefix, 0) == 0) seconds.insert(lineSeconds(line));
    return seconds;
}

// The longest distance between neighbouring seconds in [from, to], counting the window's edges.
std::int64_t longestGap(const std::set<std::int64_t>& seconds, std::int64_t from, std::int64_t to) {
    std::int64_t previous = from;
    std::int64_t gap = 0;
    for (std::int64_t second : seconds) {
        if (second < from || second > to) continue;
        gap = std::max(gap, second - previous);
        previous = second;
    }
    return std::max(gap, to - previous);
}

std::string describeSeconds(const std::set<std::int64_t>& seconds, std::int64_t from, std::int64_t to) {
    std::string text;
    for (std::int64_t second : seconds)
        if (second >= from && second <= to) text += std::to_string(second - from) + " ";
    return text;
}

std::int64_t wallSeconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Every process below `root` (children, grandchildren...), with its start time so that a reused
// pid is not mistaken for it later.
std::map<pid_t, std::string> descendants(pid_t root) {
    std::map<pid_t, pid_t> parentOf;
    std::map<pid_t, std::string> startOf;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t pid = std::atoi(name.c_str());
        const std::vector<std::string> values = procStat(pid);
        if (values.size() < 20) continue;
        parentOf[pid] = std::atoi(values[1].c_str()); // field 4: ppid
        startOf[pid] = values[19];                    // field 22: start time
    }
    std::map<pid_t, std::string> found;
    std::vector<pid_t> frontier{root};
    while (!frontier.empty()) {
        const pid_t parent = frontier.back();
        frontier.pop_back();
        for (const auto& [pid, ppid] : parentOf) {
            if (ppid != parent || found.count(pid) != 0) continue;
            found[pid] = startOf[pid];
            frontier.push_back(pid);
        }
    }
    return found;
}

bool stillRuns(pid_t pid, const std::string& start) {
    const std::vector<std::string> values = procStat(pid);
    return values.size() >= 20 && values[19] == start && values[0] != "Z";
}

} // namespace

// 50 plugins that run 4.4 s of their 5 s period (the scheduled timeout is the period minus 0.5 s),
// 5 that ignore SIGTERM and hang until killed, 10 whose git server accepts connections and never
// answers; source-host publishes agent.alive every second. Over 60 s: no alive gap over 2 s, every
// slow plugin completes at least 10 of its 12 periods. Then SIGTERM: exit 0 within the stop
// timeout, no "Fatal", no plugin or git helper process left.
TEST(Isolation, SlowHangingAndUnclonablePluginsDelayNeitherTheHostCollectorNorEachOther) {
    constexpr int kSlow = 50;
    constexpr int kHanging = 5;
    constexpr int kUnclonable = 10;
    TempDir dir;
    GitServer git;
    git.createRepo("ops/slow", "#!/bin/sh\nsleep 4.4\necho '[{\"name\": \"done\", \"value\": 1}]'\n");
    git.createRepo("ops/hang", "#!/bin/sh\ntrap '' TERM\nsleep 1000\n");
    for (int i = 0; i < kSlow; ++i)
        std::filesystem::copy(git.barePath("ops/slow"), git.barePath("ops/slow" + std::to_string(i)),
                              std::filesystem::copy_options::recursive);
    for (int i = 0; i < kHanging; ++i)
        std::filesystem::copy(git.barePath("ops/hang"), git.barePath("ops/hang" + std::to_string(i)),
                              std::filesystem::copy_options::recursive);
    git.startDaemon();
    SilentServer silent;

    std::vector<RegistryFixture::Entry> entries;
    for (int i = 0; i < kSlow; ++i)
        entries.push_back(RegistryFixture::pluginEntry("slow" + std::to_string(i), git.daemonUrl("ops/slow" + std::to_string(i)), "5"));
    for (int i = 0; i < kHanging; ++i)
        entries.push_back(RegistryFixture::pluginEntry("hang" + std::to_string(i), git.daemonUrl("ops/hang" + std::to_string(i)), "5"));
    for (int i = 0; i < kUnclonable; ++i)
        entries.push_back(RegistryFixture::pluginEntry("mute" + std::to_string(i),
                                      "git://127.0.0.1:" + std::to_string(silent.port()) + "/ops/mute" + std::to_string(i) + ".git",
                                      "5"));
    RegistryFixture registry;
    registry.setNamespace("ops", "1", entries);

    const std::string metrics = dir / "metrics.lp";
    const std::string config = writeAgentConfig(
        dir, AGENT_MODULE_DIR, "[\"source-host\", \"source-exec\", \"sink-file\"]",
        "[source-host]\ngroups = [\"alive\"]\ninterval = 1\n"
        "[source-exec]\ninterval = 1\nclone_splay = 0\n"
        "[sink-file]\npath = \"" + metrics + "\"\n",
        "registryaddr = \"" + registry.url() + "\"\npluginsuser = \"nobody\"\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    const std::string log = dir / "log/agent.log";

    // Every slow plugin cloned and through one run: the 60 s window starts there.
    auto slowWithResults = [&] {
        std::set<std::string> plugins;
        for (const std::string& line : lines(readFile(metrics)))
            if (line.rfind("PLUGIN.slow", 0) == 0 && contains(line, "status=ok")) plugins.insert(line.substr(0, line.find(',')));
        return plugins.size();
    };
    ASSERT_TRUE(eventually([&] { return slowWithResults() == kSlow; }, std::chrono::seconds(90)))
        << slowWithResults() << " slow plugins have a result\n" << readFile(log) << agent.err();
    const std::int64_t from = wallSeconds() + 1;
    const std::int64_t to = from + 60;
    while (wallSeconds() <= to + 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(agent.running()) << readFile(log) << agent.err();

    const std::string text = readFile(metrics);
    const std::set<std::int64_t> alive = secondsOf(text, "agent.alive,");
    EXPECT_LE(longestGap(alive, from, to), 2) << "alive points at seconds: " << describeSeconds(alive, from, to);
    std::vector<std::size_t> completions;
    for (int i = 0; i < kSlow; ++i) {
        const std::string name = "slow" + std::to_string(i);
        std::size_t completed = 0;
        for (const std::string& line : lines(text)) {
            if (line.rfind("PLUGIN." + name + ",", 0) != 0 || !contains(line, "status=ok")) continue;
            const std::int64_t second = lineSeconds(line);
            if (second >= from && second < to) ++completed;
        }
        EXPECT_GE(completed, 10u) << "plugin " << name << " completed " << completed << " of 12 periods";
        completions.push_back(completed);
    }
    std::sort(completions.begin(), completions.end());
    std::size_t aliveInWindow = 0;
    for (std::int64_t second : alive) aliveInWindow += second >= from && second <= to ? 1 : 0;
    std::cout << "[ figures  ] 60 s window: " << aliveInWindow << " of 61 seconds have agent.alive, longest gap "
              << longestGap(alive, from, to) << " s; slow plugins completed min " << completions.front() << ", median "
              << completions[completions.size() / 2] << ", max " << completions.back() << " of 12 periods\n";
    // The hanging plugins were killed at their timeout, the unclonable ones were never run.
    EXPECT_TRUE(contains(text, "PLUGIN.hang0,ns=ops,host=test-host,status=timeout ")) << readFile(log);
    EXPECT_FALSE(contains(text, "PLUGIN.mute0,")) << text;

    // Stop with all of it still going: hanging plugins running, clones from the silent server stuck.
    const std::map<pid_t, std::string> children = descendants(agent.pid());
    EXPECT_FALSE(children.empty());
    const Clock::time_point stopAsked = Clock::now();
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(30)), 0) << readFile(log) << agent.err();
    const double stopSeconds = std::chrono::duration<double>(Clock::now() - stopAsked).count();
    EXPECT_LE(stopSeconds, 10.0) << "stop_timeout is 10 s by default";
    const std::string finalLog = readFile(log);
    EXPECT_FALSE(contains(finalLog, "Fatal")) << finalLog;
    EXPECT_FALSE(contains(finalLog, "stopping took more than")) << finalLog;
    EXPECT_TRUE(contains(finalLog, "agent stopped")) << finalLog;
    for (const auto& [pid, start] : children)
        EXPECT_FALSE(stillRuns(pid, start)) << "process " << pid << " of the agent outlived it";
    std::cout << "[ figures  ] stop took " << stopSeconds << " s with " << children.size() << " child processes\n";
}

// source-stall blocks 30 s in every collect(); source-host's heartbeat goes on every second.
TEST(Isolation, ASourceBlockedInCollectDelaysNoOtherSource) {
    TempDir dir;
    const std::string modules =
        linkModuleDir(dir, {std::string(AGENT_MODULE_DIR) + "/source-host.so", std::string(AGENT_MODULE_DIR) + "/sink-file.so",
                            std::string(AGENT_TEST_MODULE_DIR) + "/source-stall.so"});
    const std::string metrics = dir / "metrics.lp";
    const std::string config = writeAgentConfig(
        dir, modules, "[\"source-stall\", \"source-host\", \"sink-file\"]",
        "[source-stall]\ninterval = 1\nblock_seconds = 30\n"
        "[source-host]\ngroups = [\"alive\"]\ninterval = 1\n"
        "[sink-file]\npath = \"" + metrics + "\"\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    const std::string log = dir / "log/agent.log";
    ASSERT_TRUE(eventually([&] { return contains(readFile(metrics), "agent.alive,"); })) << readFile(log) << agent.err();
    const std::int64_t from = wallSeconds() + 1;
    const std::int64_t to = from + 12;
    while (wallSeconds() <= to + 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));

    const std::string text = readFile(metrics);
    EXPECT_FALSE(contains(text, "test.stall")) << "collect() should still be blocked";
    const std::set<std::int64_t> alive = secondsOf(text, "agent.alive,");
    EXPECT_LE(longestGap(alive, from, to), 2) << "alive points at seconds: " << describeSeconds(alive, from, to);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << readFile(log);
    EXPECT_FALSE(contains(readFile(log), "Fatal")) << readFile(log);
}

// web-front (a Server module whose name does not start with "api-") is loaded first, so an order
// by load or by name would stop it last; by its role it stops first, while source-exec, whose
// route it asks for, still answers.
TEST(Isolation, AThirdPartyRouteModuleStopsBeforeTheModulesItServes) {
    TempDir dir;
    const std::string modules = linkModuleDir(
        dir, {std::string(AGENT_TEST_MODULE_DIR) + "/web-front.so", std::string(AGENT_MODULE_DIR) + "/source-exec.so",
              std::string(AGENT_MODULE_DIR) + "/source-host.so", std::string(AGENT_MODULE_DIR) + "/sink-file.so"});
    const std::string config = writeAgentConfig(
        dir, modules, "[\"web-front\", \"source-exec\", \"source-host\", \"sink-file\"]",
        "[source-host]\ngroups = [\"alive\"]\ninterval = 1\n"
        "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    const std::string log = dir / "log/agent.log";
    ASSERT_TRUE(eventually([&] { return contains(readFile(log), "agent " ) && contains(readFile(log), " started: pid"); }))
        << readFile(log) << agent.err();
    // Started last: every module it serves was running when it asked.
    EXPECT_TRUE(contains(readFile(log), "web-front: GET /plugins/list answered 200 at start")) << readFile(log);
    agent.signal(SIGTERM);
    ASSERT_EQ(agent.wait(std::chrono::seconds(15)), 0) << readFile(log);

    const std::vector<std::string> all = lines(readFile(log));
    auto indexOf = [&](const std::string& part) {
        for (std::size_t i = 0; i < all.size(); ++i)
            if (contains(all[i], part)) return static_cast<long>(i);
        return -1L;
    };
    const long front = indexOf("module web-front stopped");
    ASSERT_GE(front, 0) << readFile(log);
    for (const char* served : {"module source-exec stopped", "module source-host stopped", "module sink-file stopped"}) {
        const long other = indexOf(served);
        ASSERT_GE(other, 0) << served << "\n" << readFile(log);
        EXPECT_LT(front, other) << served << "\n" << readFile(log);
    }
    EXPECT_TRUE(contains(readFile(log), "web-front: GET /plugins/list answered 200 while stopping")) << readFile(log);
}

// A plugin that ignores SIGTERM outlives its 1 s period (timeout 0.5 s + kill_grace 2 s): it skips
// its own periods, counted in its row, while a quick plugin of the same period runs every second.
// Every scheduled start is measured against its due time (start_delay_ms in the module's health).
TEST(Isolation, APluginStillRunningWhenDueSkipsOnlyItsOwnPeriods) {
    TempDir dir;
    GitServer git;
    git.createRepo("ops/stuck", "#!/bin/sh\ntrap '' TERM\nsleep 1000\n");
    git.createRepo("ops/quick", "#!/bin/sh\necho '[]'\n");
    RegistryFixture registry;
    registry.setNamespace("ops", "1", {RegistryFixture::pluginEntry("stuck", git.fileUrl("ops/stuck"), "1"),
                                       RegistryFixture::pluginEntry("quick", git.fileUrl("ops/quick"), "1")});
    const int port = freePort();
    const std::string metrics = dir / "metrics.lp";
    const std::string config = writeAgentConfig(
        dir, AGENT_MODULE_DIR, "[\"source-exec\", \"sink-file\", \"api-http\"]",
        "[source-exec]\ninterval = 1\nclone_splay = 0\nkill_grace = 2\n"
        "[sink-file]\npath = \"" + metrics + "\"\n",
        "registryaddr = \"" + registry.url() + "\"\npluginsuser = \"nobody\"\n");
    // writeAgentConfig leaves the API off; this test reads the plugin table and the health.
    std::string text = readFile(config);
    text.replace(text.find("listen = \"\""), std::string("listen = \"\"").size(), "listen = \"127.0.0.1:" + std::to_string(port) + "\"");
    writeFile(config, text);
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir.path());
    const std::string log = dir / "log/agent.log";

    auto rowOf = [&](const std::string& project) -> Poco::JSON::Object::Ptr {
        Poco::JSON::Object::Ptr status = getJson(port, "/me/status");
        return status->getObject("modules")->getObject("source-exec")->getObject("health")->getObject("plugins")->getObject(
            "ops/" + project);
    };
    ASSERT_TRUE(eventually(
        [&] {
            try {
                return rowOf("stuck")->getValue<Poco::UInt64>("skipped") >= 2 && rowOf("quick")->getValue<Poco::UInt64>("runs") >= 6;
            } catch (const std::exception&) {
                return false;
            }
        },
        std::chrono::seconds(60)))
        << readFile(log) << agent.err();
    EXPECT_TRUE(contains(readFile(log), "plugin ops/stuck: still running when due again; period skipped")) << readFile(log);
    EXPECT_EQ(rowOf("quick")->getValue<Poco::UInt64>("skipped"), 0u);
    EXPECT_TRUE(contains(readFile(metrics), "PLUGIN.stuck,ns=ops,host=test-host,status=timeout ")) << readFile(metrics);

    Poco::JSON::Object::Ptr health = getJson(port, "/me/status")->getObject("modules")->getObject("source-exec")->getObject("health");
    Poco::JSON::Object::Ptr delays = health->getObject("start_delay_ms");
    ASSERT_TRUE(delays) << "no start_delay_ms in the health";
    EXPECT_GE(delays->getValue<Poco::UInt64>("samples"), 6u);
    EXPECT_LE(delays->getValue<double>("p50"), delays->getValue<double>("p99"));
    EXPECT_LE(delays->getValue<double>("p99"), delays->getValue<double>("max"));
    EXPECT_EQ(health->getValue<int>("supervised_threads"), 1);
    std::cout << "[ figures  ] start delay ms: p50 " << delays->getValue<double>("p50") << ", p99 "
              << delays->getValue<double>("p99") << ", max " << delays->getValue<double>("max") << " over "
              << delays->getValue<Poco::UInt64>("samples") << " runs\n";
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << readFile(log);
}
