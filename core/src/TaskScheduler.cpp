#include "TaskScheduler.h"

#include <Poco/Exception.h>

namespace agent {

TaskScheduler::TaskScheduler(unsigned workers, Poco::Logger& logger)
    : workerCount_(workers == 0 ? 1 : workers), logger_(logger) {}

TaskScheduler::~TaskScheduler() { stop(); }

TaskId TaskScheduler::every(const std::string& name, Poco::Timespan period, Poco::Timespan offset,
                            std::function<void()> task) {
    if (period.totalMicroseconds() <= 0) throw Poco::InvalidArgumentException("task " + name + ": period must be positive");
    auto entry = std::make_shared<Task>();
    entry->name = name;
    entry->period = std::chrono::microseconds(period.totalMicroseconds());
    entry->due = Clock::now() + std::chrono::microseconds(std::max<Poco::Int64>(0, offset.totalMicroseconds()));
    entry->run = std::move(task);
    std::lock_guard<std::mutex> lock(mutex_);
    entry->id = nextId_++;
    tasks_[entry->id] = entry;
    timerWake_.notify_all();
    return entry->id;
}

void TaskScheduler::post(const std::string& name, std::function<void()> task) {
    auto entry = std::make_shared<Task>();
    entry->name = name;
    entry->once = true;
    entry->run = std::move(task);
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    entry->id = nextId_++;
    entry->running = true;
    ready_.push_back(entry);
    workAvailable_.notify_one();
}

void TaskScheduler::cancel(TaskId id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    it->second->cancelled = true;
    tasks_.erase(it);
}

void TaskScheduler::start() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) return;
    started_ = true;
    timer_ = std::thread([this] { timerLoop(); });
    for (unsigned i = 0; i < workerCount_; ++i) workers_.emplace_back([this] { workerLoop(); });
}

void TaskScheduler::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_ || !started_) {
            stopping_ = true;
            return;
        }
        stopping_ = true;
        ready_.clear();
    }
    timerWake_.notify_all();
    workAvailable_.notify_all();
    if (timer_.joinable()) timer_.join();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
}

void TaskScheduler::timerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        const Clock::time_point now = Clock::now();
        Clock::time_point nextDue = now + std::chrono::hours(1);
        for (auto& [id, task] : tasks_) {
            if (task->due <= now) {
                if (task->running) {
                    ++task->skipped;
                    logger_.warning("task %s is still running; skipped a run (%Lu skipped so far)", task->name,
                                    static_cast<Poco::UInt64>(task->skipped));
                } else {
                    task->running = true;
                    ready_.push_back(task);
                    workAvailable_.notify_one();
                }
                // Keep the phase: the next run is due a whole number of periods after the first.
                while (task->due <= now) task->due += task->period;
            }
            nextDue = std::min(nextDue, task->due);
        }
        timerWake_.wait_until(lock, nextDue);
    }
}

void TaskScheduler::workerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        workAvailable_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
        if (stopping_) return;
        TaskPtr task = ready_.front();
        ready_.pop_front();
        const bool cancelled = task->cancelled;
        lock.unlock();
        bool failed = false;
        try {
            if (!cancelled) task->run();
        } catch (const Poco::Exception& error) {
            failed = true;
            logger_.error("task %s failed: %s", task->name, error.displayText());
        } catch (const std::exception& error) {
            failed = true;
            logger_.error("task %s failed: %s", task->name, std::string(error.what()));
        }
        lock.lock();
        task->running = false;
        ++task->runs;
        if (failed) ++task->failures;
    }
}

std::vector<TaskScheduler::TaskStats> TaskScheduler::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<TaskStats> result;
    for (const auto& [id, task] : tasks_) result.push_back({task->name, task->runs, task->skipped, task->failures});
    return result;
}

} // namespace agent
