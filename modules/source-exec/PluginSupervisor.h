// Watches every running plugin from ONE thread, so that a plugin run holds no thread while its
// child runs: 1,000 running plugins need one thread, not 1,000.
//
// start() prepares and spawns the plugin on the caller's thread (until the child's execve(), see
// PluginProcess.h) and hands it to the supervisor's thread, which runs epoll over every running
// plugin's stdout, stderr and pidfd, plus an eventfd that wakes it for new runs and for stop(),
// with the nearest deadline (SIGTERM), grace end (SIGKILL) or drain limit as its timeout. Without
// pidfd_open (Linux before 5.3) it checks its own children with waitid(WNOWAIT) every 20 ms.
// Each run ends exactly as with PluginRunner::run() (same statuses, reasons, group cleanup).
//
// Never reaps a child that is not one of its plugins (waitid/waitpid on their pids only) and
// installs no signal handler.
#pragma once

#include "PluginRunner.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace agent::exec {

class PluginProcess;

class PluginSupervisor {
public:
    // Gets the result on the supervisor's thread (or, when the plugin did not start or the
    // supervisor has stopped, on the thread that called start()). Keep it short: every other
    // running plugin waits meanwhile. Exceptions it throws are swallowed.
    using Callback = std::function<void(RunResult)>;

    PluginSupervisor() : PluginSupervisor(PluginRunner::kernelSupport()) {}
    // Uses only what both `allowed` and the kernel offer (tests force the fallbacks with it).
    explicit PluginSupervisor(const KernelSupport& allowed);
    ~PluginSupervisor(); // stop(0 ms) when still running
    PluginSupervisor(const PluginSupervisor&) = delete;
    PluginSupervisor& operator=(const PluginSupervisor&) = delete;

    // Starts the run and returns once the plugin is spawned (or failed to start: `done` then runs
    // at once, on this thread, with the NotRunnable result). After stop(), a plugin that started
    // is ended at once (status Error, reason kAgentStopping) on this thread.
    void start(const RunRequest& request, Callback done);

    // Ends every running plugin as on a timeout: SIGTERM to its group, SIGKILL after
    // min(grace, its kill grace), reaped; its callback gets status Error and reason
    // kAgentStopping (unless it had finished by itself). Then joins the thread. Returns within
    // about grace + 1 s (the drain limit) + 20 ms. Idempotent.
    void stop(std::chrono::milliseconds grace);

    std::size_t running() const { return running_.load(); } // started and not yet reported
    static constexpr unsigned threads() { return 1; }
    const KernelSupport& support() const { return support_; }

private:
    struct Entry;
    void loop();
    void wake();
    void adopt(std::unique_ptr<Entry> entry);
    void report(Entry& entry, RunResult result);

    KernelSupport support_;
    int epollFd_ = -1;
    int eventFd_ = -1;
    std::thread thread_;
    std::atomic<std::size_t> running_{0};

    std::mutex mutex_; // guards the members below
    std::vector<std::unique_ptr<Entry>> pending_; // started, not yet taken by the thread
    bool stopping_ = false;
    bool accepting_ = true; // false once the thread has left (after stop)
    std::chrono::milliseconds stopGrace_{0};
    std::mutex stopMutex_; // serialises stop()
};

} // namespace agent::exec
