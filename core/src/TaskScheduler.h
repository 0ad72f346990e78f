// One module's executor: a timer thread that decides what is due and a few worker threads that
// run it. ModuleHost gives every module its own, so a module whose tasks block delays only itself.
// A task is never run twice at once; a run that would overlap a running one is skipped.
#pragma once

#include <agent/Context.h>

#include <Poco/Logger.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace agent {

class TaskScheduler : public Scheduler {
public:
    using Clock = std::chrono::steady_clock;

    struct TaskStats {
        std::string name;
        std::uint64_t runs = 0;
        std::uint64_t skipped = 0;  // due while its previous run was still running
        std::uint64_t late = 0;     // due while its previous run was still waiting for a worker
        std::uint64_t failures = 0;
        std::chrono::microseconds lastLag{0}; // start of the last run minus the time it was due
        std::chrono::microseconds maxLag{0};
    };
    // The whole executor, cancelled tasks and one-shot posts included.
    struct Summary {
        unsigned workers = 0;
        std::size_t tasks = 0; // periodic tasks now registered
        std::uint64_t runs = 0;
        std::uint64_t skipped = 0;
        std::uint64_t late = 0;
        std::uint64_t failures = 0;
        std::chrono::microseconds maxLag{0};
    };

    // `owner` names the module in the executor's log lines.
    TaskScheduler(unsigned workers, Poco::Logger& logger, std::string owner = "");
    // Stops with a short deadline when stop() was not called; never waits for a stuck task longer.
    ~TaskScheduler() override;
    TaskScheduler(const TaskScheduler&) = delete;
    TaskScheduler& operator=(const TaskScheduler&) = delete;

    TaskId every(const std::string& name, Poco::Timespan period, Poco::Timespan offset,
                 std::function<void()> task) override;
    void cancel(TaskId id) override;
    void post(const std::string& name, std::function<void()> task) override;

    // Tasks registered before start() wait for it.
    void start();
    // Drops queued work and waits until `deadline` for running tasks. False when a task was still
    // running then: its thread is detached and logged (naming the task), and keeps running module
    // code, so that module's library must stay loaded. Idempotent (a later call returns the same).
    bool stop(Clock::time_point deadline);
    bool stop() { return stop(Clock::now() + std::chrono::seconds(10)); }
    // True after a stop() that had to leave a thread running.
    bool abandoned() const;

    std::vector<TaskStats> stats() const;
    Summary summary() const;
    unsigned workers() const { return workerCount_; }

private:
    struct Shared;

    static void timerLoop(const std::shared_ptr<Shared>& shared);
    static void workerLoop(const std::shared_ptr<Shared>& shared, std::size_t index);

    const unsigned workerCount_;
    // Everything the threads touch lives here, shared with them: a detached thread (stuck in a
    // task past stop()) may outlive this object and must not find its state freed.
    std::shared_ptr<Shared> shared_;
    std::thread timer_;
    std::vector<std::thread> workers_;
};

} // namespace agent
