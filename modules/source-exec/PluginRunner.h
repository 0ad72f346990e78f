// Runs one plugin once: clone/exec (as posix_spawn does) of `<directory>/plugin` with no shell, in
// the plugin's folder, as the plugins user (gid, supplementary groups, uid), in a new session and
// process group, with a small clean environment; stdout captured up to a cap, the tail of stderr
// kept for the log; on timeout SIGTERM to the whole process group, SIGKILL after a grace period.
//
// Touches only the plugin's folder (as its working directory), the processes it starts (every one
// is killed and the plugin reaped before run() returns: no orphan in the group, no zombie), and
// /etc/passwd + /etc/group through NSS. It never reaps any other child (waitpid on its own pid
// only) and never installs signal handlers. Logs nothing: everything comes back in the RunResult.
//
// Limit: a plugin's descendant that leaves the process group (setsid/setpgid) escapes the kill;
// only a cgroup could hold it.
//
// Linux 4.18 or later. Newer calls are used when the kernel has them and replaced by equivalents
// with the same guarantees when it does not (probed once per process, see kernelSupport()):
// the agent's descriptors are closed for the plugin with close_range(CLOSE_RANGE_CLOEXEC) (5.11),
// else close_range() (5.9), else by walking /proc/self/fd, else by closing every descriptor up to
// the RLIMIT_NOFILE hard limit; the plugin's exit wakes the runner through a pidfd (5.3), else
// the runner checks for it with waitid(WNOWAIT) every 20 ms.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace agent::exec {

// A run's outcome; toString() gives the `status` tag of the PLUGIN.<project> metric.
enum class RunStatus {
    Ok,         // exit code 0
    Error,      // non-zero exit, killed by a signal, or the runner lost track of the child
    Timeout,    // still running at the deadline: killed
    BadOutput,  // stdout over the cap: killed
    NotRunnable // never started (no file, not executable, bad pluginsuser, exec failed)
};

const char* toString(RunStatus status); // "ok", "error", "timeout", "bad_output", "not_runnable"

// The reason of a run ended because the agent stops (status Error; see PluginSupervisor::stop).
inline constexpr const char* kAgentStopping = "agent stopping";

struct RunRequest {
    std::string directory;         // the plugin's folder: working directory, holds `plugin`
    std::vector<std::string> args; // argv[1..]; argv[0] is "plugin"
    std::string user;              // pluginsuser; never root
    // Added to PATH, HOME (the user's) and LANG; an entry with one of those names replaces it.
    std::vector<std::pair<std::string, std::string>> environment; // e.g. AGENT_NS, AGENT_PLUGIN
    std::chrono::milliseconds timeout{10000};
    std::chrono::milliseconds killGrace{2000}; // between SIGTERM and SIGKILL
    std::size_t stdoutCap = 4u << 20;          // more than this is BadOutput
    std::size_t stderrTail = 4096;             // the last bytes of stderr kept
};

struct RunResult {
    RunStatus status = RunStatus::NotRunnable;
    int exitCode = -1;  // when the plugin exited
    int signal = 0;     // when a signal killed it
    std::string output; // stdout (at most stdoutCap bytes)
    std::string stderrTail;
    std::chrono::milliseconds duration{0};
    std::string reason; // for anything but Ok: what happened, for the log and the API
};

// The registry's parameter string as argv: split on whitespace, no quoting, no expansion.
std::vector<std::string> splitParameters(const std::string& parameters);

// What the running kernel offers the runner; each call that is missing has a fallback.
struct KernelSupport {
    bool closeRangeCloexec = false; // close_range(CLOSE_RANGE_CLOEXEC): Linux 5.11
    bool closeRange = false;        // close_range() without flags: Linux 5.9
    bool procSelfFd = false;        // /proc/self/fd can be listed (/proc mounted and readable)
    bool pidfd = false;             // pidfd_open(): Linux 5.3
    // For each one missing, the probe's errno (ENOSYS: no such call; EINVAL: unknown flag).
    int closeRangeCloexecError = 0;
    int closeRangeError = 0;
    int procSelfFdError = 0;
    int pidfdError = 0;
};

// Holds nothing but the (constant) kernel support it uses: run() may be called from several
// threads at once. It reports every failure in the RunResult (system call failures included,
// with errno text) and throws only std::bad_alloc.
class PluginRunner {
public:
    // Probed on first use, once per process (thread-safe).
    static const KernelSupport& kernelSupport();

    PluginRunner() = default;
    // Uses only what both `allowed` and kernelSupport() offer: tests force the fallbacks with it.
    explicit PluginRunner(const KernelSupport& allowed);

    RunResult run(const RunRequest& request);

private:
    KernelSupport support_ = kernelSupport();
};

// One line for the log saying what the runner uses, e.g. "plugin runner: using close_range and
// pidfd_open", or which fallback replaces a missing call and why.
std::string describeKernelSupport(const KernelSupport& support = PluginRunner::kernelSupport());

} // namespace agent::exec
