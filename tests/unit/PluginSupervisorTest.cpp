// Specification of source-exec's PluginSupervisor, with real processes run as `nobody`: one
// thread watches every running plugin, each run ends as with PluginRunner::run(), and stop()
// ends every running plugin within its grace and leaves none of their processes. Every test runs
// with and without pidfd_open (the suite names start with PluginRunner, so that the ctest
// PluginRunnerWithoutCloseRangeAndPidfdOpen runs them under the seccomp filter as well). Must run
// as root; skipped otherwise.
#include "PluginSupervisor.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using agent::exec::KernelSupport;
using agent::exec::PluginSupervisor;
using agent::exec::RunRequest;
using agent::exec::RunResult;
using agent::exec::RunStatus;
using agent::test::TempDir;
using namespace std::chrono_literals;

namespace {

std::string fixture(const std::string& file) { return std::string(AGENT_TEST_FIXTURES) + "/plugins/" + file; }

// `<dir>/<name>/plugin` (mode 0755) holding `text`; returns the plugin's folder.
std::string installScript(const TempDir& dir, const std::string& name, const std::string& text) {
    fs::permissions(dir.path(), fs::perms(0755));
    const std::string folder = dir / name;
    fs::create_directories(folder);
    fs::permissions(folder, fs::perms(0755));
    std::ofstream(folder + "/plugin") << text;
    fs::permissions(folder + "/plugin", fs::perms(0755));
    return folder;
}

std::string installFixture(const TempDir& dir, const std::string& file) {
    return installScript(dir, file, agent::test::readFile(fixture(file)));
}

// forking_sleeper.c (ignores SIGTERM, forks, both sleep) compiled once per test run.
const std::string& sleeperFolder() {
    static const TempDir dir;
    static const std::string folder = [] {
        fs::permissions(dir.path(), fs::perms(0755));
        const std::string path = dir / "forking_sleeper";
        fs::create_directories(path);
        fs::permissions(path, fs::perms(0755));
        const auto built = agent::test::runCommand(
            {"/usr/bin/cc", "-O2", "-Wall", "-o", path + "/plugin", fixture("forking_sleeper.c")});
        if (built.exitCode != 0) throw std::runtime_error("cannot compile forking_sleeper.c: " + built.err);
        fs::permissions(path + "/plugin", fs::perms(0755));
        return path;
    }();
    return folder;
}

std::string scratchFolder(const TempDir& dir) {
    fs::permissions(dir.path(), fs::perms(0755));
    const std::string path = dir / "scratch";
    fs::create_directories(path);
    fs::permissions(path, fs::perms(01777));
    return path;
}

RunRequest requestFor(const std::string& folder) {
    RunRequest request;
    request.directory = folder;
    request.user = "nobody";
    request.environment = {{"AGENT_NS", "ns1"}, {"AGENT_PLUGIN", "project"}};
    request.timeout = 20s;
    return request;
}

std::string describe(const RunResult& result) {
    return std::string(toString(result.status)) + " exit=" + std::to_string(result.exitCode) +
           " signal=" + std::to_string(result.signal) + " reason=" + result.reason + " stderr=" + result.stderrTail;
}

int threadCount() {
    std::istringstream status(agent::test::readFile("/proc/self/status"));
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
    return -1;
}

std::vector<pid_t> pidsIn(const std::string& text) {
    std::vector<pid_t> pids;
    std::istringstream in(text);
    for (pid_t pid = 0; in >> pid;)
        pids.push_back(pid);
    return pids;
}

bool gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

bool noZombieChildren() {
    siginfo_t info{};
    const int rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
    return (rc != 0 && errno == ECHILD) || (rc == 0 && info.si_pid == 0);
}

// The results the callbacks got, by the index the test gave each run.
class Results {
public:
    PluginSupervisor::Callback at(std::size_t index) {
        return [this, index](RunResult result) {
            std::lock_guard lock(mutex_);
            if (results_.size() <= index) results_.resize(index + 1);
            results_[index] = std::move(result);
            threads_.push_back(std::this_thread::get_id());
            ++count_;
            changed_.notify_all();
        };
    }
    bool waitFor(std::size_t count, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return count_ >= count; });
    }
    RunResult get(std::size_t index) {
        std::lock_guard lock(mutex_);
        return results_.at(index);
    }
    std::size_t count() {
        std::lock_guard lock(mutex_);
        return count_;
    }
    std::vector<std::thread::id> threads() {
        std::lock_guard lock(mutex_);
        return threads_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<RunResult> results_;
    std::vector<std::thread::id> threads_;
    std::size_t count_ = 0;
};

KernelSupport allowing(bool pidfd) {
    KernelSupport support;
    support.closeRangeCloexec = support.closeRange = support.procSelfFd = true;
    support.pidfd = pidfd;
    return support;
}

class SupervisorTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "the supervisor tests switch users: run them as root";
    }
    KernelSupport support() const { return allowing(GetParam()); }
    TempDir dir_;
};

} // namespace

TEST_P(SupervisorTest, ResultsAreThoseOfTheRunnerForEveryStatus) {
    PluginSupervisor supervisor(support());
    EXPECT_EQ(supervisor.support().pidfd, GetParam() && agent::exec::PluginRunner::kernelSupport().pidfd);
    Results results;
    supervisor.start(requestFor(installFixture(dir_, "hello.sh")), results.at(0));
    supervisor.start(requestFor(installFixture(dir_, "exit3.sh")), results.at(1));
    RunRequest sleeping = requestFor(installFixture(dir_, "sleep.sh"));
    sleeping.timeout = 300ms;
    supervisor.start(sleeping, results.at(2));
    RunRequest flood = requestFor(installFixture(dir_, "hello.sh"));
    flood.stdoutCap = 5;
    supervisor.start(flood, results.at(3));
    const std::thread::id caller = std::this_thread::get_id();
    supervisor.start(requestFor(dir_ / "missing"), results.at(4)); // called back on this thread
    ASSERT_TRUE(results.waitFor(5, 20s));

    const RunResult ok = results.get(0);
    EXPECT_EQ(ok.status, RunStatus::Ok) << describe(ok);
    EXPECT_EQ(ok.output, "[{\"name\": \"answer\", \"value\": 42}]\nsecond line\twith a tab\n");
    const RunResult error = results.get(1);
    EXPECT_EQ(error.status, RunStatus::Error) << describe(error);
    EXPECT_EQ(error.reason, "exit code 3");
    EXPECT_EQ(error.output, "partial\n");
    EXPECT_EQ(error.stderrTail, "oops\n");
    const RunResult timeout = results.get(2);
    EXPECT_EQ(timeout.status, RunStatus::Timeout) << describe(timeout);
    EXPECT_EQ(timeout.reason, "timed out after 300 ms");
    EXPECT_EQ(timeout.signal, SIGTERM);
    const RunResult bad = results.get(3);
    EXPECT_EQ(bad.status, RunStatus::BadOutput) << describe(bad);
    EXPECT_EQ(bad.output, "[{\"na");
    const RunResult missing = results.get(4);
    EXPECT_EQ(missing.status, RunStatus::NotRunnable) << describe(missing);
    EXPECT_EQ(missing.reason, "no plugin file");

    const std::vector<std::thread::id> threads = results.threads();
    EXPECT_EQ(std::count(threads.begin(), threads.end(), caller), 1);
    EXPECT_EQ(supervisor.running(), 0u);
    supervisor.stop(1s);
    EXPECT_TRUE(noZombieChildren());
}

TEST_P(SupervisorTest, TwoHundredConcurrentPluginsNeedOneThread) {
    const std::string folder = installScript(dir_, "nap", "#!/bin/sh\nsleep 2\necho '[]'\n");
    const int before = threadCount();
    PluginSupervisor supervisor(support());
    Results results;
    constexpr std::size_t kRuns = 200;
    const auto start = std::chrono::steady_clock::now();
    int most = threadCount();
    for (std::size_t i = 0; i < kRuns; ++i) {
        supervisor.start(requestFor(folder), results.at(i));
        most = std::max(most, threadCount());
    }
    while (!results.waitFor(kRuns, 100ms) && std::chrono::steady_clock::now() - start < 60s)
        most = std::max(most, threadCount());
    ASSERT_EQ(results.count(), kRuns);
    EXPECT_LE(most, before + 2) << "threads before: " << before;
    // Concurrent: 200 runs of 2 s took far less than 200 x 2 s.
    EXPECT_LT(std::chrono::steady_clock::now() - start, 60s);
    for (std::size_t i = 0; i < kRuns; ++i) {
        const RunResult result = results.get(i);
        EXPECT_EQ(result.status, RunStatus::Ok) << i << ": " << describe(result);
        EXPECT_EQ(result.output, "[]\n") << i;
    }
    supervisor.stop(1s);
    EXPECT_TRUE(noZombieChildren());
}

TEST_P(SupervisorTest, SigtermIgnoringPluginIsKilledAfterTheGraceAndLeavesNoProcess) {
    const std::string pidFile = scratchFolder(dir_) + "/pids";
    PluginSupervisor supervisor(support());
    Results results;
    RunRequest request = requestFor(sleeperFolder());
    request.args = {pidFile};
    request.timeout = 300ms;
    request.killGrace = 300ms;
    supervisor.start(request, results.at(0));
    ASSERT_TRUE(results.waitFor(1, 10s));
    const RunResult result = results.get(0);
    EXPECT_EQ(result.status, RunStatus::Timeout) << describe(result);
    EXPECT_EQ(result.signal, SIGKILL);
    EXPECT_GE(result.duration, 600ms);
    const std::vector<pid_t> pids = pidsIn(agent::test::readFile(pidFile));
    ASSERT_EQ(pids.size(), 2u);
    for (pid_t pid : pids)
        EXPECT_TRUE(agent::test::eventually([&] { return gone(pid); }, 5s)) << pid;
    supervisor.stop(1s);
    EXPECT_TRUE(noZombieChildren());
}

TEST_P(SupervisorTest, StopEndsTwentyRunningPluginsWithinTheGraceAndLeavesNoneOfTheirProcesses) {
    const std::string scratch = scratchFolder(dir_);
    const std::string obeying = installScript(dir_, "obeying", "#!/bin/sh\necho $$ > \"$1\"\nexec sleep 60\n");
    PluginSupervisor supervisor(support());
    Results results;
    std::vector<std::string> pidFiles;
    for (std::size_t i = 0; i < 20; ++i) {
        const bool ignoring = i % 4 == 0; // 5 of 20 ignore SIGTERM
        RunRequest request = requestFor(ignoring ? sleeperFolder() : obeying);
        pidFiles.push_back(scratch + "/pids" + std::to_string(i));
        request.args = {pidFiles.back()};
        request.timeout = 120s;
        request.killGrace = 30s;
        supervisor.start(request, results.at(i));
    }
    // Every plugin has started (written its pids).
    ASSERT_TRUE(agent::test::eventually(
        [&] {
            for (const std::string& file : pidFiles)
                if (!fs::exists(file) || pidsIn(agent::test::readFile(file)).empty()) return false;
            return true;
        },
        20s));
    EXPECT_EQ(supervisor.running(), 20u);
    std::vector<pid_t> pids;
    for (std::size_t i = 0; i < 20; ++i) {
        const std::vector<pid_t> some = pidsIn(agent::test::readFile(pidFiles[i]));
        EXPECT_EQ(some.size(), i % 4 == 0 ? 2u : 1u) << i;
        pids.insert(pids.end(), some.begin(), some.end());
    }

    const auto start = std::chrono::steady_clock::now();
    supervisor.stop(500ms);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms + 2s);
    ASSERT_EQ(results.count(), 20u);
    for (std::size_t i = 0; i < 20; ++i) {
        const RunResult result = results.get(i);
        EXPECT_EQ(result.status, RunStatus::Error) << i << ": " << describe(result);
        EXPECT_EQ(result.reason, agent::exec::kAgentStopping) << i;
        EXPECT_EQ(result.signal, i % 4 == 0 ? SIGKILL : SIGTERM) << i;
    }
    EXPECT_EQ(supervisor.running(), 0u);
    // The plugins are reaped; their children (reparented to init) go soon after the group kill.
    for (pid_t pid : pids)
        EXPECT_TRUE(agent::test::eventually([&] { return gone(pid) && (kill(-pid, 0) != 0 && errno == ESRCH); }, 5s))
            << pid;
    EXPECT_TRUE(noZombieChildren());

    // A start after stop ends the plugin at once, on the caller's thread.
    Results late;
    const auto lateStart = std::chrono::steady_clock::now();
    supervisor.start(requestFor(obeying), late.at(0));
    EXPECT_EQ(late.count(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - lateStart, 2s);
    EXPECT_EQ(late.get(0).reason, agent::exec::kAgentStopping) << describe(late.get(0));
    EXPECT_TRUE(noZombieChildren());
}

INSTANTIATE_TEST_SUITE_P(PluginRunnerSupervisor, SupervisorTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? "WithPidfd" : "WithoutPidfd";
                         });
