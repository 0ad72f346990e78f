// Backoff, TaskScheduler and PidFile: the small services the core gives every module.
#include "PidFile.h"
#include "TaskScheduler.h"

#include "TestSupport.h"

#include <agent/Backoff.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

using agent::test::eventually;

TEST(Backoff, GrowsExponentiallyWithJitterUpToTheCap) {
    agent::Backoff backoff({0.1, 1.0, 2.0});
    const double expected[] = {0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0};
    for (double base : expected) {
        const double wait = static_cast<double>(backoff.next().totalMicroseconds()) / 1e6;
        EXPECT_GE(wait, base * 0.5 - 1e-6);
        EXPECT_LE(wait, base + 1e-6);
    }
    backoff.reset();
    EXPECT_LE(static_cast<double>(backoff.next().totalMicroseconds()) / 1e6, 0.1 + 1e-6);
}

TEST(TaskScheduler, RunsEachTaskOnItsPeriod) {
    agent::TaskScheduler scheduler(2, Poco::Logger::get("test.scheduler"));
    std::atomic<int> runs{0};
    scheduler.every("tick", Poco::Timespan(0, 50'000), 0, [&] { ++runs; });
    scheduler.start();
    EXPECT_TRUE(eventually([&] { return runs >= 5; }, std::chrono::seconds(10)));
    scheduler.stop();
    const int after = runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_EQ(runs, after); // nothing runs after stop()
}

TEST(TaskScheduler, RunStillGoingWhenTheNextIsDueIsSkippedAndCounted) {
    agent::TaskScheduler scheduler(4, Poco::Logger::get("test.scheduler"));
    std::atomic<int> concurrent{0};
    std::atomic<int> maxConcurrent{0};
    scheduler.every("slow", Poco::Timespan(0, 20'000), 0, [&] {
        const int now = ++concurrent;
        maxConcurrent = std::max(maxConcurrent.load(), now);
        std::this_thread::sleep_for(std::chrono::milliseconds(120));
        --concurrent;
    });
    scheduler.start();
    ASSERT_TRUE(eventually([&] { return !scheduler.stats().empty() && scheduler.stats()[0].skipped >= 3; }));
    scheduler.stop();
    EXPECT_EQ(maxConcurrent, 1);
}

TEST(TaskScheduler, ExceptionInATaskIsCountedAndTheTaskKeepsItsSchedule) {
    agent::TaskScheduler scheduler(1, Poco::Logger::get("test.scheduler"));
    std::atomic<int> runs{0};
    scheduler.every("failing", Poco::Timespan(0, 20'000), 0, [&] {
        ++runs;
        throw std::runtime_error("boom");
    });
    scheduler.start();
    ASSERT_TRUE(eventually([&] { return runs >= 3; }));
    scheduler.stop();
    EXPECT_GE(scheduler.stats()[0].failures, 2u);
}

TEST(TaskScheduler, CancelledTaskRunsNoMore) {
    agent::TaskScheduler scheduler(1, Poco::Logger::get("test.scheduler"));
    std::atomic<int> runs{0};
    const agent::TaskId id = scheduler.every("t", Poco::Timespan(0, 20'000), 0, [&] { ++runs; });
    scheduler.start();
    ASSERT_TRUE(eventually([&] { return runs >= 1; }));
    scheduler.cancel(id);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    const int after = runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(runs, after);
    scheduler.stop();
}

TEST(PidFile, SecondHolderIsRefusedWithTheRunningPid) {
    agent::test::TempDir dir;
    const std::string path = dir / "run/agent.pid";
    agent::PidFile first(path);
    EXPECT_EQ(agent::PidFile::runningPid(path), getpid());
    // flock locks belong to open file descriptions: a second open in this process conflicts too.
    try {
        agent::PidFile second(path);
        FAIL() << "a second pid file holder must be refused";
    } catch (const agent::AlreadyRunning& e) {
        EXPECT_EQ(e.pid(), getpid());
        EXPECT_NE(std::string(e.what()).find("already running (pid " + std::to_string(getpid())), std::string::npos);
    }
}

TEST(PidFile, StaleFileFromADeadAgentDoesNotBlock) {
    agent::test::TempDir dir;
    const std::string path = dir / "agent.pid";
    agent::test::writeFile(path, "999999\n");
    EXPECT_FALSE(agent::PidFile::runningPid(path).has_value());
    {
        agent::PidFile pid(path);
        EXPECT_EQ(agent::test::readFile(path), std::to_string(getpid()) + "\n");
    }
    EXPECT_FALSE(agent::test::fileExists(path)); // removed at exit
}

TEST(PidFile, LockHeldByAnotherProcessIsSeen) {
    agent::test::TempDir dir;
    const std::string path = dir / "agent.pid";
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    if (child == 0) {
        agent::PidFile held(path);
        (void)!write(ready[1], "x", 1);
        pause();
        _exit(0);
    }
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    EXPECT_EQ(agent::PidFile::runningPid(path), child);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    EXPECT_FALSE(agent::PidFile::runningPid(path).has_value()); // the lock died with it
    close(ready[0]);
    close(ready[1]);
}
