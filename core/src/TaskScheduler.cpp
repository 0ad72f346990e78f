#include "TaskScheduler.h"

#include <Poco/Exception.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <queue>

namespace agent {
namespace {

using Clock = TaskScheduler::Clock;

// Waiting for a worker is not overlapping: only a run that is due while the previous one runs is
// skipped. A run due while the previous waits in the queue is that period's run already.
enum class TaskState { Idle, Queued, Running };

struct Task {
    TaskId id = 0;
    std::string name;
    Clock::duration period{};
    Clock::time_point due{};     // the next due time (the timer keeps the phase)
    Clock::time_point queuedFor{}; // the due time of the run now queued, for its start lag
    std::function<void()> run;
    TaskState state = TaskState::Idle;
    bool cancelled = false;
    bool once = false;
    std::uint64_t runs = 0;
    std::uint64_t skipped = 0;
    std::uint64_t late = 0;
    std::uint64_t failures = 0;
    std::chrono::microseconds lastLag{0};
    std::chrono::microseconds maxLag{0};
};
using TaskPtr = std::shared_ptr<Task>;

// A timer entry. Cancelled tasks stay in the heap until they come up and are dropped then, so a
// cancel costs nothing and a wake costs O(log n) whatever the number of tasks.
struct Due {
    Clock::time_point at;
    std::uint64_t sequence; // keeps equal due times in registration order
    TaskPtr task;
    bool operator>(const Due& other) const {
        return at != other.at ? at > other.at : sequence > other.sequence;
    }
};

std::chrono::microseconds toMicros(Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d);
}

} // namespace

struct TaskScheduler::Shared {
    Shared(Poco::Logger& log, std::string name, unsigned workers)
        : logger(log), owner(std::move(name)), current(workers), busy(workers, false), exited(workers, false) {}

    Poco::Logger& logger;
    const std::string owner;

    std::mutex mutex; // guards everything below
    std::condition_variable timerWake;
    std::condition_variable workAvailable;
    std::condition_variable workerExited;
    std::map<TaskId, TaskPtr> tasks; // periodic tasks
    std::priority_queue<Due, std::vector<Due>, std::greater<Due>> timers;
    std::deque<TaskPtr> ready;
    std::vector<std::string> current; // per worker: the task it runs (when busy)
    std::vector<bool> busy;           // per worker: in a task now
    std::vector<bool> exited;         // per worker
    std::size_t exitedCount = 0;
    TaskId nextId = 1;
    std::uint64_t nextSequence = 0;
    bool started = false;
    bool stopping = false;
    bool stopped = false;
    bool abandoned = false;
    Summary retired; // counters of cancelled tasks and one-shot posts

    std::string prefix() const { return owner.empty() ? std::string() : owner + ": "; }
    void schedule(const TaskPtr& task) { timers.push(Due{task->due, nextSequence++, task}); }
};

TaskScheduler::TaskScheduler(unsigned workers, Poco::Logger& logger, std::string owner)
    : workerCount_(workers == 0 ? 1 : workers),
      shared_(std::make_shared<Shared>(logger, std::move(owner), workers == 0 ? 1 : workers)) {}

TaskScheduler::~TaskScheduler() { stop(Clock::now() + std::chrono::seconds(1)); }

TaskId TaskScheduler::every(const std::string& name, Poco::Timespan period, Poco::Timespan offset,
                            std::function<void()> task) {
    if (period.totalMicroseconds() <= 0) throw Poco::InvalidArgumentException("task " + name + ": period must be positive");
    auto entry = std::make_shared<Task>();
    entry->name = name;
    entry->period = std::chrono::microseconds(period.totalMicroseconds());
    entry->due = Clock::now() + std::chrono::microseconds(std::max<Poco::Int64>(0, offset.totalMicroseconds()));
    entry->run = std::move(task);
    std::lock_guard<std::mutex> lock(shared_->mutex);
    entry->id = shared_->nextId++;
    shared_->tasks[entry->id] = entry;
    shared_->schedule(entry);
    shared_->timerWake.notify_all();
    return entry->id;
}

void TaskScheduler::post(const std::string& name, std::function<void()> task) {
    auto entry = std::make_shared<Task>();
    entry->name = name;
    entry->once = true;
    entry->run = std::move(task);
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (shared_->stopping) return; // the module is stopping: nothing new runs
    entry->id = shared_->nextId++;
    entry->state = TaskState::Queued;
    entry->queuedFor = Clock::now();
    shared_->ready.push_back(entry);
    shared_->workAvailable.notify_one();
}

void TaskScheduler::cancel(TaskId id) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    auto it = shared_->tasks.find(id);
    if (it == shared_->tasks.end()) return;
    const Task& task = *it->second;
    it->second->cancelled = true;
    Summary& retired = shared_->retired;
    retired.runs += task.runs;
    retired.skipped += task.skipped;
    retired.late += task.late;
    retired.failures += task.failures;
    retired.maxLag = std::max(retired.maxLag, task.maxLag);
    shared_->tasks.erase(it);
}

void TaskScheduler::start() {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (shared_->started || shared_->stopping) return;
    shared_->started = true;
    std::shared_ptr<Shared> shared = shared_;
    timer_ = std::thread([shared] { timerLoop(shared); });
    for (std::size_t i = 0; i < workerCount_; ++i) workers_.emplace_back([shared, i] { workerLoop(shared, i); });
}

bool TaskScheduler::stop(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    if (shared_->stopped) return !shared_->abandoned;
    shared_->stopped = true;
    shared_->stopping = true;
    for (const TaskPtr& task : shared_->ready) task->state = TaskState::Idle;
    shared_->ready.clear();
    shared_->timers = {};
    shared_->timerWake.notify_all();
    shared_->workAvailable.notify_all();
    if (!shared_->started) return true;
    lock.unlock();
    timer_.join(); // the timer runs no module code: it always ends at once

    lock.lock();
    shared_->workerExited.wait_until(lock, deadline, [this] { return shared_->exitedCount == workers_.size(); });
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        // An idle worker has seen `stopping` or is about to: it runs no module code, join it.
        if (shared_->exited[i] || !shared_->busy[i]) continue;
        shared_->abandoned = true;
        shared_->logger.error("%stask %s is still running at the stop deadline; its thread is left running and "
                              "the module's code stays loaded",
                              shared_->prefix(), shared_->current[i]);
        workers_[i].detach();
    }
    lock.unlock();
    for (std::thread& worker : workers_) {
        if (worker.joinable()) worker.join(); // exited, or idle and about to exit
    }
    workers_.clear();
    return !abandoned();
}

bool TaskScheduler::abandoned() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return shared_->abandoned;
}

void TaskScheduler::timerLoop(const std::shared_ptr<Shared>& shared) {
    std::unique_lock<std::mutex> lock(shared->mutex);
    while (!shared->stopping) {
        const Clock::time_point now = Clock::now();
        while (!shared->timers.empty() && shared->timers.top().at <= now) {
            TaskPtr task = shared->timers.top().task;
            const Clock::time_point due = shared->timers.top().at;
            shared->timers.pop();
            if (task->cancelled) continue;
            if (task->state == TaskState::Running) {
                ++task->skipped;
                shared->logger.warning("%stask %s is still running; skipped a run (%Lu skipped so far)", shared->prefix(),
                                       task->name, static_cast<Poco::UInt64>(task->skipped));
            } else if (task->state == TaskState::Queued) {
                ++task->late; // the queued run is this period's: not skipped, only late
            } else {
                task->state = TaskState::Queued;
                task->queuedFor = due;
                shared->ready.push_back(task);
                shared->workAvailable.notify_one();
            }
            // Keep the phase: the next run is due a whole number of periods after the first.
            while (task->due <= now) task->due += task->period;
            shared->schedule(task);
        }
        if (shared->timers.empty()) {
            shared->timerWake.wait(lock);
        } else {
            // A copy: wait_until reads its argument again after waking, when the heap (changed by
            // every() or stop() while the lock was released) may have moved the element.
            const Clock::time_point next = shared->timers.top().at;
            shared->timerWake.wait_until(lock, next);
        }
    }
}

void TaskScheduler::workerLoop(const std::shared_ptr<Shared>& shared, std::size_t index) {
    std::unique_lock<std::mutex> lock(shared->mutex);
    for (;;) {
        shared->workAvailable.wait(lock, [&] { return shared->stopping || !shared->ready.empty(); });
        if (shared->stopping) break;
        TaskPtr task = shared->ready.front();
        shared->ready.pop_front();
        if (task->cancelled) {
            task->state = TaskState::Idle;
            continue;
        }
        task->state = TaskState::Running;
        const auto lag = toMicros(std::max(Clock::duration::zero(), Clock::now() - task->queuedFor));
        task->lastLag = lag;
        task->maxLag = std::max(task->maxLag, lag);
        shared->current[index] = task->name;
        shared->busy[index] = true;
        lock.unlock();
        bool failed = false;
        try {
            task->run();
        } catch (const Poco::Exception& error) {
            failed = true;
            shared->logger.error("%stask %s failed: %s", shared->prefix(), task->name, error.displayText());
        } catch (const std::exception& error) {
            failed = true;
            shared->logger.error("%stask %s failed: %s", shared->prefix(), task->name, std::string(error.what()));
        }
        lock.lock();
        shared->busy[index] = false;
        task->state = TaskState::Idle;
        Summary& retired = shared->retired;
        if (task->once) {
            ++retired.runs;
            if (failed) ++retired.failures;
            retired.maxLag = std::max(retired.maxLag, lag);
            continue;
        }
        ++task->runs;
        if (failed) ++task->failures;
        if (task->cancelled) { // cancelled while running: its counters went to `retired` before this run
            ++retired.runs;
            if (failed) ++retired.failures;
        }
    }
    shared->exited[index] = true;
    ++shared->exitedCount;
    shared->workerExited.notify_all();
}

std::vector<TaskScheduler::TaskStats> TaskScheduler::stats() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    std::vector<TaskStats> result;
    result.reserve(shared_->tasks.size());
    for (const auto& [id, task] : shared_->tasks)
        result.push_back({task->name, task->runs, task->skipped, task->late, task->failures, task->lastLag, task->maxLag});
    return result;
}

TaskScheduler::Summary TaskScheduler::summary() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    Summary total = shared_->retired;
    total.workers = workerCount_;
    total.tasks = shared_->tasks.size();
    for (const auto& [id, task] : shared_->tasks) {
        total.runs += task->runs;
        total.skipped += task->skipped;
        total.late += task->late;
        total.failures += task->failures;
        total.maxLag = std::max(total.maxLag, task->maxLag);
    }
    return total;
}

} // namespace agent
