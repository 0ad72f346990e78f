// One plugin run as steps, shared by PluginRunner::run() (which drives one run with its own poll
// loop) and PluginSupervisor (which drives every running plugin from one epoll thread):
//
//   start()   = prepare (checks, user and groups, argv and envp, pipes) + spawn (the clone child,
//               see PluginRunner.cpp), on the caller's thread, until the child's execve();
//   watch     = the object reacts to: stdout/stderr readable (readStdout/readStderr), exit noticed
//               (checkExit), and time (advance: deadline -> SIGTERM to the group, grace -> SIGKILL,
//               drain limit), or to the agent stopping (stopNow);
//   finish()  = reaps the plugin and classifies the run into a RunResult.
//
// Not thread-safe: one thread drives an object at a time (it may move between threads).
#pragma once

#include "PluginRunner.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

namespace agent::exec {

class PluginProcess {
public:
    using Clock = std::chrono::steady_clock;

    // After SIGKILL to the group the pipes reach EOF at once, unless a descendant left the group
    // and still holds them: this bounds the wait for such a process.
    static constexpr std::chrono::milliseconds kDrainLimit{1000};
    // Without a pidfd nothing wakes the driver when the plugin exits: it calls checkExit() this
    // often, which bounds how late an exit is noticed.
    static constexpr std::chrono::milliseconds kExitCheckInterval{20};

    // Prepares and spawns. nullptr when the plugin did not start; `failed` then holds the
    // NotRunnable result.
    static std::unique_ptr<PluginProcess> start(const RunRequest& request, const KernelSupport& support,
                                                RunResult& failed);

    // Kills the group and reaps the plugin when finish() was not reached.
    ~PluginProcess();
    PluginProcess(const PluginProcess&) = delete;
    PluginProcess& operator=(const PluginProcess&) = delete;

    pid_t pid() const { return pid_; }
    // Descriptors to watch for input; -1 once closed (pidFd: none without pidfd support, or once
    // the exit was noticed).
    int stdoutFd() const;
    int stderrFd() const;
    int pidFd() const;
    bool exited() const { return exited_; }

    // The descriptors are registered with this epoll instance: each is removed from it before it
    // is closed (a clone child may hold a copy for a moment, which would keep it registered).
    void watchedBy(int epollFd) { epollFd_ = epollFd; }

    void readStdout();
    void readStderr();
    void checkExit(); // waitid(WNOWAIT): notes the exit, reaps nothing
    // Sends what is due at `now`: SIGTERM to the group at the deadline, at the exit or over the
    // cap; SIGKILL after the grace (or once the plugin exited and closed its pipes).
    void advance(Clock::time_point now);
    // The agent is stopping: ended as on a timeout, with a grace of at most `grace`.
    void stopNow(std::chrono::milliseconds grace, Clock::time_point now);
    // All done but the reaping: finish() will not block (except on an error, briefly).
    bool done(Clock::time_point now) const;
    // The next time advance() has something to do; nullopt: only events can move the run on.
    std::optional<Clock::time_point> nextWake(Clock::time_point now) const;
    // Reaps the plugin and classifies the run; call once, when done().
    RunResult finish();
    // The driver lost track of the run (e.g. it could not watch a descriptor): done() at once,
    // finish() kills the group and reports Error with `reason`.
    void fail(std::string reason);

    struct Pipes;

private:
    PluginProcess(const RunRequest& request, Clock::time_point start);
    void signalGroup(int signal);
    void closeWatched(int which);

    const RunRequest request_;
    const Clock::time_point start_;
    const Clock::time_point deadline_;
    pid_t pid_ = -1;
    std::unique_ptr<Pipes> pipes_; // stdout, stderr, pidfd
    int epollFd_ = -1;
    bool reaped_ = false;

    bool exited_ = false; // a zombie now (waited for with WNOWAIT: its pid stays ours)
    bool timedOut_ = false;
    bool stopped_ = false; // ended because the agent stops
    bool stopRequested_ = false;
    bool overCap_ = false;
    bool termSent_ = false;
    bool killSent_ = false;
    std::chrono::milliseconds killGrace_;
    Clock::time_point graceEnd_{}, drainEnd_{};
    std::string cleanupProblem_;
    std::string error_; // the runner lost track: Error with this reason
    RunResult result_;
};

// Drives one started run to its end with a poll loop on the calling thread (PluginRunner::run(),
// and a supervisor that no longer takes runs), then finish()es it.
RunResult driveToEnd(PluginProcess& process);

} // namespace agent::exec
