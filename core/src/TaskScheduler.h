// Periodic tasks on a small pool of worker threads: one timer thread decides what is due, the
// workers run it. A task is never run twice at once; a run that would overlap is skipped.
#pragma once

#include <agent/Context.h>

#include <Poco/Logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace agent {

class TaskScheduler : public Scheduler {
public:
    struct TaskStats {
        std::string name;
        std::uint64_t runs = 0;
        std::uint64_t skipped = 0;
        std::uint64_t failures = 0;
    };

    TaskScheduler(unsigned workers, Poco::Logger& logger);
    ~TaskScheduler() override;

    TaskId every(const std::string& name, Poco::Timespan period, Poco::Timespan offset,
                 std::function<void()> task) override;
    void cancel(TaskId id) override;
    void post(const std::string& name, std::function<void()> task) override;

    // Tasks registered before start() wait for it; stop() waits for running tasks and joins.
    void start();
    void stop();

    std::vector<TaskStats> stats() const;

private:
    using Clock = std::chrono::steady_clock;
    struct Task {
        TaskId id = 0;
        std::string name;
        Clock::duration period{};
        Clock::time_point due{};
        std::function<void()> run;
        bool running = false;
        bool cancelled = false;
        bool once = false;
        std::uint64_t runs = 0;
        std::uint64_t skipped = 0;
        std::uint64_t failures = 0;
    };
    using TaskPtr = std::shared_ptr<Task>;

    void timerLoop();
    void workerLoop();

    const unsigned workerCount_;
    Poco::Logger& logger_;

    mutable std::mutex mutex_; // guards everything below
    std::condition_variable timerWake_;
    std::condition_variable workAvailable_;
    std::map<TaskId, TaskPtr> tasks_;
    std::deque<TaskPtr> ready_;
    TaskId nextId_ = 1;
    bool started_ = false;
    bool stopping_ = false;

    std::thread timer_;
    std::vector<std::thread> workers_;
};

} // namespace agent
