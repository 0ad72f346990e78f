// Specification of source-exec's CloneQueue with real git servers: a git server that never
// answers delays only the clones from it, at most `perServer` jobs run at once per server, a
// failed checkout is not tried again before its backoff, and stop() abandons a stuck clone.
#include "CloneQueue.h"
#include "GitServer.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

using namespace std::chrono_literals;
using agent::exec::CloneJob;
using agent::exec::CloneQueue;
using agent::exec::GitResult;
using agent::exec::gitServerOf;
using agent::test::GitServer;
using agent::test::TempDir;

namespace {

// The results the queue reported, by key, with when they came.
class Finished {
public:
    CloneQueue::Done callback() {
        return [this](const std::string& key, const GitResult& result) {
            std::lock_guard lock(mutex_);
            results_[key] = result;
            times_[key] = std::chrono::steady_clock::now();
            changed_.notify_all();
        };
    }
    bool waitFor(const std::string& key, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return results_.count(key) != 0; });
    }
    GitResult get(const std::string& key) {
        std::lock_guard lock(mutex_);
        return results_.at(key);
    }
    std::size_t count() {
        std::lock_guard lock(mutex_);
        return results_.size();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::string, GitResult> results_;
    std::map<std::string, std::chrono::steady_clock::time_point> times_;
};

CloneJob job(const std::string& key, const std::string& url, const TempDir& plugins,
             std::chrono::milliseconds timeout = 60s) {
    CloneJob job;
    job.key = key;
    job.url = url;
    job.target = plugins / key;
    job.timeout = timeout;
    return job;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

TEST(CloneQueueTest, ServersAreSchemeHostAndPortAndEveryLocalPathIsOne) {
    EXPECT_EQ(gitServerOf("git://127.0.0.1:9000/g/p.git"), "git://127.0.0.1:9000");
    EXPECT_EQ(gitServerOf("git://Example.COM/g/p.git"), "git://example.com:9418");
    EXPECT_EQ(gitServerOf("https://user@host/g/p.git"), "https://host:443");
    EXPECT_EQ(gitServerOf("ssh://git@host:2222/g/p.git"), "ssh://host:2222");
    EXPECT_EQ(gitServerOf("git@host:g/p.git"), "ssh://host:22");
    EXPECT_EQ(gitServerOf("http://[::1]:8080/g/p.git"), "http://[::1]:8080");
    EXPECT_EQ(gitServerOf("file:///a/g/p.git"), "file://");
    EXPECT_EQ(gitServerOf("file:///b/other/q.git"), "file://");
}

TEST(CloneQueueTest, ASilentServerDoesNotDelayClonesFromAnotherServer) {
    GitServer server;
    server.createRepo("group/good");
    server.createRepo("group/local");
    server.startDaemon();
    agent::test::SilentServer silent;
    TempDir plugins;
    Finished finished;
    CloneQueue::Options options;
    options.perServer = 2;
    CloneQueue queue(AGENT_GIT_HELPER, options, finished.callback());
    const std::string hung = "git://127.0.0.1:" + std::to_string(silent.port()) + "/group/hung.git";
    // Jobs on the silent server first: they fill its slots (and more wait behind them).
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(queue.enqueue(job("ns1/hung" + std::to_string(i), hung, plugins, 60s)), CloneQueue::Enqueued::Queued);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(queue.enqueue(job("ns1/good", server.daemonUrl("group/good"), plugins)), CloneQueue::Enqueued::Queued);
    EXPECT_EQ(queue.enqueue(job("ns1/local", server.fileUrl("group/local"), plugins)), CloneQueue::Enqueued::Queued);
    EXPECT_EQ(queue.enqueue(job("ns1/good", server.daemonUrl("group/good"), plugins)), CloneQueue::Enqueued::Already);
    ASSERT_TRUE(finished.waitFor("ns1/good", 30s));
    ASSERT_TRUE(finished.waitFor("ns1/local", 30s));
    EXPECT_LT(secondsSince(start), 30.0);
    EXPECT_TRUE(finished.get("ns1/good").ok) << finished.get("ns1/good").error;
    EXPECT_TRUE(finished.get("ns1/local").ok) << finished.get("ns1/local").error;
    EXPECT_TRUE(agent::exec::GitRepository::checkedOutCommit(plugins / "ns1/good").has_value());
    // The silent server's jobs: two at once, the rest still waiting.
    EXPECT_EQ(queue.peakActive(gitServerOf(hung)), 2u);
    EXPECT_EQ(queue.queued(), 2u);

    // stop() abandons the stuck clones at once and drops the queued ones.
    const auto stopping = std::chrono::steady_clock::now();
    queue.stop();
    EXPECT_LT(secondsSince(stopping), 2.0);
    EXPECT_EQ(finished.count(), 2u); // abandoned jobs are not reported
    EXPECT_EQ(queue.enqueue(job("ns1/again", server.fileUrl("group/local"), plugins)), CloneQueue::Enqueued::Stopping);
}

TEST(CloneQueueTest, AtMostPerServerJobsRunAtOnceAndAFailureBacksOff) {
    agent::test::SilentServer silent;
    TempDir plugins;
    Finished finished;
    CloneQueue::Options options;
    options.perServer = 1;
    options.retryInitial = 60s;
    CloneQueue queue(AGENT_GIT_HELPER, options, finished.callback());
    const std::string hung = "git://127.0.0.1:" + std::to_string(silent.port()) + "/group/hung.git";
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i)
        queue.enqueue(job("ns1/p" + std::to_string(i), hung, plugins, 1s));
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(finished.waitFor("ns1/p" + std::to_string(i), 20s)) << i;
    EXPECT_GE(secondsSince(start), 2.8); // one after another
    EXPECT_EQ(queue.peakActive(gitServerOf(hung)), 1u);
    EXPECT_FALSE(finished.get("ns1/p0").ok);
    EXPECT_TRUE(queue.retryAt("ns1/p0").has_value());
    EXPECT_EQ(queue.enqueue(job("ns1/p0", hung, plugins, 1s)), CloneQueue::Enqueued::BackingOff);
    queue.forgetFailures("ns1/p0");
    EXPECT_EQ(queue.enqueue(job("ns1/p0", hung, plugins, 1s)), CloneQueue::Enqueued::Queued);
    EXPECT_TRUE(queue.waitIdle(20s));
}

TEST(CloneQueueTest, UpdateWaitsForASlotOfItsServerAndStopEndsIt) {
    agent::test::SilentServer silent;
    GitServer server;
    server.createRepo("group/demo");
    TempDir plugins;
    Finished finished;
    CloneQueue::Options options;
    options.perServer = 1;
    CloneQueue queue(AGENT_GIT_HELPER, options, finished.callback());
    // A local update is not held up by the silent server's clone.
    const std::string hung = "git://127.0.0.1:" + std::to_string(silent.port()) + "/group/hung.git";
    queue.enqueue(job("ns1/hung", hung, plugins, 60s));
    const GitResult local = queue.update(server.fileUrl("group/demo"), "", plugins / "ns1/demo", 20s);
    EXPECT_TRUE(local.ok) << local.error;
    // An update on the silent server waits behind the running clone until stop().
    GitResult waiting;
    std::thread updater([&] { waiting = queue.update(hung, "", plugins / "ns1/other", 60s); });
    std::this_thread::sleep_for(300ms);
    const auto start = std::chrono::steady_clock::now();
    queue.stop();
    updater.join();
    EXPECT_LT(secondsSince(start), 2.0);
    EXPECT_FALSE(waiting.ok);
    EXPECT_TRUE(agent::test::contains(waiting.error, "agent is stopping")) << waiting.error;
}
