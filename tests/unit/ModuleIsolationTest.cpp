// Isolation between modules: each module's executor runs its own work only, a stuck task does not
// hang the stop, routes belong to the module that declared them, and start and stop follow roles.
#include "ModuleHost.h"
#include "RouteTable.h"
#include "TaskScheduler.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using agent::Role;
using agent::Roles;
using agent::TaskScheduler;
using agent::test::eventually;
using namespace std::chrono_literals;

namespace {

Poco::Logger& testLogger() { return Poco::Logger::get("test.executor"); }

// A gate a task waits on; opened by the test (or its destructor, so no thread waits forever).
class Gate {
public:
    ~Gate() { open(); }
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        ++waiting_;
        opened_.wait(lock, [this] { return open_; });
    }
    void open() {
        std::lock_guard<std::mutex> lock(mutex_);
        open_ = true;
        opened_.notify_all();
    }
    int waiting() {
        std::lock_guard<std::mutex> lock(mutex_);
        return waiting_;
    }

private:
    std::mutex mutex_;
    std::condition_variable opened_;
    bool open_ = false;
    int waiting_ = 0;
};

Roles roles(Role role) { return static_cast<Roles>(role); }

} // namespace

TEST(Executor, ATaskBlockedOnOneExecutorDoesNotDelayAnother) {
    // The gate outlives both executors: the blocked thread is left behind at stop and must find it.
    static Gate gate;
    TaskScheduler plugins(1, testLogger(), "module slow");
    TaskScheduler host(1, testLogger(), "module fast");
    std::atomic<int> ticks{0};
    plugins.every("blocked", Poco::Timespan(0, 50'000), 0, [] { gate.wait(); });
    host.every("tick", Poco::Timespan(0, 100'000), 0, [&] { ++ticks; });
    plugins.start();
    host.start();
    ASSERT_TRUE(eventually([] { return gate.waiting() >= 1; }, 10s));
    const int before = ticks;
    std::this_thread::sleep_for(1500ms);
    // 15 periods passed; even a loaded machine gets most of them.
    EXPECT_GE(ticks - before, 8);
    EXPECT_TRUE(host.stop(TaskScheduler::Clock::now() + 5s));
    EXPECT_FALSE(plugins.stop(TaskScheduler::Clock::now() + 100ms));
    gate.open();
}

TEST(Executor, ARunWaitingForTheOnlyWorkerIsNotSkipped) {
    Gate gate;
    TaskScheduler executor(1, testLogger(), "module one");
    std::atomic<int> waitingRuns{0};
    executor.every("hog", Poco::Timespan(3600, 0), 0, [&] { gate.wait(); });
    executor.every("waiting", Poco::Timespan(0, 20'000), 0, [&] { ++waitingRuns; });
    executor.start();
    ASSERT_TRUE(eventually([&] { return gate.waiting() == 1; }, 10s));
    std::this_thread::sleep_for(300ms); // ~15 periods of "waiting" while it waits for the worker
    gate.open();
    ASSERT_TRUE(eventually([&] { return waitingRuns >= 2; }, 10s));
    ASSERT_TRUE(executor.stop());
    for (const TaskScheduler::TaskStats& stats : executor.stats()) {
        if (stats.name != "waiting") continue;
        EXPECT_EQ(stats.skipped, 0u);
        EXPECT_GE(stats.late, 1u);
        EXPECT_GE(stats.maxLag, std::chrono::microseconds(100'000)); // it waited for the hog
    }
}

TEST(Executor, PostRunsOnceAndIsDroppedAfterStop) {
    TaskScheduler executor(2, testLogger(), "module posts");
    std::atomic<int> runs{0};
    executor.post("early", [&] { ++runs; }); // before start(): runs once started
    executor.start();
    ASSERT_TRUE(eventually([&] { return runs == 1; }, 10s));
    executor.post("second", [&] { ++runs; });
    ASSERT_TRUE(eventually([&] { return runs == 2; }, 10s));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(runs, 2);
    ASSERT_TRUE(executor.stop());
    executor.post("late", [&] { ++runs; });
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(runs, 2);
    EXPECT_EQ(executor.summary().runs, 2u);
}

TEST(Executor, StopWithAStuckTaskReturnsFalseByItsDeadlineAndTheDestructorDoesNotHang) {
    static Gate gate; // outlives the detached thread
    const auto began = TaskScheduler::Clock::now();
    {
        TaskScheduler executor(2, testLogger(), "module stuck");
        executor.every("stuck", Poco::Timespan(0, 10'000), 0, [] { gate.wait(); });
        executor.every("quick", Poco::Timespan(0, 10'000), 0, [] {});
        executor.start();
        ASSERT_TRUE(eventually([] { return gate.waiting() >= 1; }, 10s));
        const auto stopAt = TaskScheduler::Clock::now();
        EXPECT_FALSE(executor.stop(stopAt + 300ms));
        EXPECT_LT(TaskScheduler::Clock::now() - stopAt, 3s);
        EXPECT_TRUE(executor.abandoned());
        EXPECT_FALSE(executor.stop()); // idempotent
    }
    EXPECT_LT(TaskScheduler::Clock::now() - began, 15s);
    gate.open(); // the detached thread finishes on state it shares, not on the executor
}

TEST(Executor, IdleWorkersAreNeverAbandonedEvenWhenTheDeadlineHasPassed) {
    TaskScheduler executor(8, testLogger(), "module idle");
    executor.every("rare", Poco::Timespan(3600, 0), Poco::Timespan(3600, 0), [] {});
    executor.start();
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(executor.stop(TaskScheduler::Clock::now() - 1s));
    EXPECT_FALSE(executor.abandoned());
}

TEST(Executor, DestructorWithoutStopDoesNotHangOnAStuckTask) {
    static Gate gate;
    const auto began = TaskScheduler::Clock::now();
    {
        TaskScheduler executor(1, testLogger(), "module stuck");
        executor.post("stuck", [] { gate.wait(); });
        executor.start();
        ASSERT_TRUE(eventually([] { return gate.waiting() >= 1; }, 10s));
    }
    EXPECT_LT(TaskScheduler::Clock::now() - began, 15s);
    gate.open();
}

TEST(Executor, TwoThousandTasksRegisterAndFire) {
    TaskScheduler executor(4, testLogger(), "module many");
    constexpr int kTasks = 2000;
    std::vector<std::atomic<int>> runs(kTasks);
    for (int i = 0; i < kTasks; ++i) {
        executor.every("task " + std::to_string(i), Poco::Timespan(0, 200'000), Poco::Timespan(0, (i % 100) * 1000),
                       [&runs, i] { ++runs[static_cast<std::size_t>(i)]; });
    }
    executor.start();
    EXPECT_TRUE(eventually(
        [&] {
            for (const auto& count : runs) {
                if (count < 2) return false;
            }
            return true;
        },
        20s));
    EXPECT_EQ(executor.summary().tasks, static_cast<std::size_t>(kTasks));
    EXPECT_TRUE(executor.stop());
}

TEST(Executor, CancelledTasksKeepTheirCountsInTheSummary) {
    TaskScheduler executor(1, testLogger(), "module cancel");
    std::atomic<int> runs{0};
    const agent::TaskId id = executor.every("t", Poco::Timespan(0, 10'000), 0, [&] { ++runs; });
    executor.start();
    ASSERT_TRUE(eventually([&] { return runs >= 3; }, 10s));
    executor.cancel(id);
    ASSERT_TRUE(executor.stop());
    EXPECT_EQ(executor.summary().tasks, 0u);
    EXPECT_EQ(executor.summary().runs, static_cast<std::uint64_t>(runs.load()));
}

TEST(RouteOwnership, AModuleRegistersOnlyThePathsItDeclared) {
    agent::RouteTable table;
    table.add("/healthz", {"GET"}, [](const agent::HttpRequest&) { return agent::jsonResponse(200, "{}"); });
    EXPECT_TRUE(table.declare("source-exec", {"/plugins/list"}).empty());
    EXPECT_TRUE(table.declare("api-http", {"/post"}).empty());
    agent::ModuleRoutes exec(table, "source-exec");

    try {
        exec.add("/plugins/other", {"GET"}, nullptr);
        FAIL() << "an undeclared path must be refused";
    } catch (const Poco::InvalidArgumentException& e) {
        EXPECT_NE(e.message().find("module source-exec cannot register /plugins/other: it is not among the routes"),
                  std::string::npos)
            << e.message();
    }
    try {
        exec.add("/post", {"POST"}, nullptr);
        FAIL() << "another module's path must be refused";
    } catch (const Poco::InvalidArgumentException& e) {
        EXPECT_NE(e.message().find("cannot register /post: it belongs to module api-http"), std::string::npos) << e.message();
    }
    try {
        exec.add("/healthz", {"GET"}, nullptr);
        FAIL() << "the core's path must be refused";
    } catch (const Poco::InvalidArgumentException& e) {
        EXPECT_NE(e.message().find("belongs to the agent's core"), std::string::npos) << e.message();
    }
}

TEST(RouteOwnership, APathDeclaredTwiceOrOwnedByTheCoreIsALoadProblem) {
    agent::RouteTable table;
    table.add("/metrics", {"GET"}, [](const agent::HttpRequest&) { return agent::jsonResponse(200, "{}"); });
    EXPECT_TRUE(table.declare("source-a", {"/a"}).empty());
    const std::vector<std::string> problems = table.declare("source-b", {"/a", "/metrics", "b"});
    ASSERT_EQ(problems.size(), 3u);
    EXPECT_EQ(problems[0], "route /a belongs to module source-a");
    EXPECT_EQ(problems[1], "route /metrics belongs to the agent's core");
    EXPECT_EQ(problems[2], "route \"b\" must start with '/'");
}

TEST(RouteOwnership, ADeclaredPathAnswers503NamingItsModuleUntilRegisteredAndAfterItStopped) {
    agent::RouteTable table;
    ASSERT_TRUE(table.declare("source-exec", {"/plugins/list"}).empty());
    agent::HttpRequest request;
    request.method = "GET";
    request.path = "/plugins/list";
    agent::HttpResponse before = table.handle(request);
    EXPECT_EQ(before.status, 503);
    EXPECT_NE(before.body.find("/plugins/list is served by module source-exec, which is not running"), std::string::npos)
        << before.body;

    agent::ModuleRoutes exec(table, "source-exec");
    exec.add("/plugins/list", {"GET"}, [](const agent::HttpRequest&) { return agent::jsonResponse(200, "[]"); });
    EXPECT_EQ(exec.handle(request).status, 200);

    table.withdraw("source-exec");
    agent::HttpResponse after = table.handle(request);
    EXPECT_EQ(after.status, 503);
    EXPECT_NE(after.body.find("which is not running"), std::string::npos) << after.body;

    request.path = "/nowhere";
    EXPECT_EQ(table.handle(request).status, 404);
    request.path = "/post"; // a module that ships with the agent, not loaded here
    const agent::HttpResponse notLoaded = table.handle(request);
    EXPECT_EQ(notLoaded.status, 404);
    EXPECT_NE(notLoaded.body.find("/post is served by module api-http, which is not loaded"), std::string::npos)
        << notLoaded.body;
}

// Slow routes (a plugin run, a clone, a registry poll) share kSlowRequestsAtOnce places, the core's
// and every module's together: one more is refused at once with Retry-After, every other route
// goes on, and a place is given back however its handler ends.
TEST(RouteOwnership, SlowRequestsShareABoundedNumberOfPlacesAndTheOtherRoutesGoOn) {
    agent::RouteTable table;
    Gate gate;
    table.addSlow("/update", {"GET"}, [](const agent::HttpRequest&) { return agent::jsonResponse(200, "{}"); });
    table.add("/metrics", {"GET"}, [](const agent::HttpRequest&) { return agent::jsonResponse(200, "{}"); });
    ASSERT_TRUE(table.declare("source-exec", {"/plugins/run", "/plugins/list"}, {"/plugins/run"}).empty());
    agent::ModuleRoutes exec(table, "source-exec");
    std::atomic<bool> throwNext{false};
    exec.add("/plugins/run", {"GET"}, [&](const agent::HttpRequest&) {
        if (throwNext.exchange(false)) throw std::runtime_error("the run failed");
        gate.wait();
        return agent::jsonResponse(200, "{}");
    });
    exec.add("/plugins/list", {"GET"}, [](const agent::HttpRequest&) { return agent::jsonResponse(200, "[]"); });
    const auto get = [&table](const std::string& path) {
        agent::HttpRequest request;
        request.method = "GET";
        request.path = path;
        return table.handle(request);
    };

    std::vector<std::thread> running;
    std::vector<int> statuses(agent::kSlowRequestsAtOnce, 0);
    for (unsigned i = 0; i < agent::kSlowRequestsAtOnce; ++i)
        running.emplace_back([&, i] { statuses[i] = get("/plugins/run").status; });
    ASSERT_TRUE(eventually([&] { return gate.waiting() == static_cast<int>(agent::kSlowRequestsAtOnce); }, 10s));

    for (const std::string path : {"/plugins/run", "/update"}) {
        const agent::HttpResponse refused = get(path);
        EXPECT_EQ(refused.status, 503) << path;
        EXPECT_NE(refused.body.find("already answering 4 slow requests"), std::string::npos) << refused.body;
        ASSERT_EQ(refused.headers.size(), 1u) << path;
        EXPECT_EQ(refused.headers[0], (std::pair<std::string, std::string>{"Retry-After", "1"}));
    }
    EXPECT_EQ(get("/plugins/list").status, 200);
    EXPECT_EQ(get("/metrics").status, 200);

    gate.open();
    for (std::thread& thread : running) thread.join();
    EXPECT_EQ(statuses, std::vector<int>(agent::kSlowRequestsAtOnce, 200));
    throwNext = true;
    EXPECT_EQ(get("/plugins/run").status, 500);
    // Every place is free again, the one whose handler threw included.
    for (unsigned i = 0; i <= agent::kSlowRequestsAtOnce; ++i) EXPECT_EQ(get("/update").status, 200);
    EXPECT_EQ(table.requestCounts().at({"/update", 503}), 1u);
}

TEST(RouteOwnership, ASlowRouteMustBeAmongTheModulesRoutes) {
    agent::RouteTable table;
    const std::vector<std::string> problems = table.declare("source-a", {"/a"}, {"/b"});
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_EQ(problems[0], "slow route \"/b\" is not among the module's routes");
}

TEST(ModuleOrder, ServersStartLastAndStopFirstThenReportersThenOthersThenSinks) {
    // Load order: a source, a sink, the API, a reporter, another source, another sink.
    const std::vector<Roles> loaded = {roles(Role::Source), roles(Role::Sink),   roles(Role::Server),
                                       roles(Role::Reporter), roles(Role::Source), roles(Role::Sink)};
    EXPECT_EQ(agent::startOrder(loaded), (std::vector<std::size_t>{1, 5, 0, 3, 4, 2}));
    EXPECT_EQ(agent::stopOrder(loaded), (std::vector<std::size_t>{2, 3, 4, 0, 5, 1}));
}

TEST(ModuleOrder, ASourceThatServesRoutesIsNoServerAndModulesWithoutRolesAreOthers) {
    const std::vector<Roles> loaded = {Role::Source | Role::Server, 0, roles(Role::Sink), roles(Role::Source)};
    // A Server+Source starts with the servers and stops with them; a role-less module is "other".
    EXPECT_EQ(agent::startOrder(loaded), (std::vector<std::size_t>{2, 1, 3, 0}));
    EXPECT_EQ(agent::stopOrder(loaded), (std::vector<std::size_t>{0, 3, 1, 2}));
}
