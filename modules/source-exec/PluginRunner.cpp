// Runs one plugin once (see PluginRunner.h), in the steps of PluginProcess.h. The parent prepares
// everything (argv, environment, user, groups, pipes) first; the child, started with
// clone(CLONE_VM | CLONE_VFORK) as posix_spawn does, makes raw system calls only and leaves a
// failure before or at execve() in the parent's memory. The run is then watched: stdout, stderr
// and a pidfd until the plugin exits, the deadline passes or stdout goes over the cap; the whole
// process group is cleaned up before the plugin is reaped. PluginRunner::run() drives one run
// with its own poll loop; PluginSupervisor drives many from one epoll thread.
// On kernels before 5.3/5.11 (see PluginRunner.h) a fallback replaces each missing system call;
// which one is used is decided once per process by probeKernel().
#include "PluginRunner.h"
#include "PluginProcess.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace agent::exec {

const char* toString(RunStatus status) {
    switch (status) {
    case RunStatus::Ok:
        return "ok";
    case RunStatus::Error:
        return "error";
    case RunStatus::Timeout:
        return "timeout";
    case RunStatus::BadOutput:
        return "bad_output";
    case RunStatus::NotRunnable:
        return "not_runnable";
    }
    return "unknown";
}

std::vector<std::string> splitParameters(const std::string& parameters) {
    static constexpr const char* kWhitespace = " \t\n\r\f\v";
    std::vector<std::string> result;
    std::string::size_type begin = parameters.find_first_not_of(kWhitespace);
    while (begin != std::string::npos) {
        const std::string::size_type end = parameters.find_first_of(kWhitespace, begin);
        result.push_back(parameters.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
        begin = end == std::string::npos ? end : parameters.find_first_not_of(kWhitespace, end);
    }
    return result;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kExitCheckInterval = PluginProcess::kExitCheckInterval;
constexpr std::size_t kReadChunk = std::size_t{64} * 1024;
constexpr std::size_t kChildStackSize = std::size_t{64} * 1024; // the child's few frames before execve()
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
constexpr const char* kDefaultLang = "C.UTF-8";

// std::strerror is not thread-safe; the category's message is.
std::string errnoText(const std::string& what, int error) {
    return what + ": " + std::system_category().message(error);
}

// The symbol of an errno value ("ENOSYS"); glibc has strerrorname_np since 2.32, below the
// agent's floor of 2.34 (COMPATIBILITY).
std::string errnoName(int error) {
    if (error == 0) return "disabled"; // not missing: a caller of PluginRunner(allowed) left it out
    const char* name = strerrorname_np(error);
    return name != nullptr ? name : std::system_category().message(error);
}

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    void reset() {
        // close() of a pipe or pidfd fails only with EBADF (a bug: double close) or EINTR (the fd
        // is closed anyway on Linux).
        if (fd_ >= 0 && ::close(fd_) != 0 && errno == EBADF) std::abort();
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

// A close-on-exec pipe with both ends above 2, so the child's dup2() onto 0/1/2 never clobbers
// one of its own pipe ends (possible only when the agent runs with 0, 1 or 2 closed).
std::optional<std::string> makePipe(Fd& readEnd, Fd& writeEnd) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return errnoText("pipe2", errno);
    readEnd = Fd(fds[0]);
    writeEnd = Fd(fds[1]);
    for (Fd* end : {&readEnd, &writeEnd}) {
        if (end->get() > 2) continue;
        const int moved = fcntl(end->get(), F_DUPFD_CLOEXEC, 3);
        if (moved < 0) return errnoText("fcntl(F_DUPFD_CLOEXEC)", errno);
        *end = Fd(moved);
    }
    return std::nullopt;
}

std::optional<std::string> setNonBlocking(const Fd& fd) {
    const int flags = fcntl(fd.get(), F_GETFL);
    if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) return errnoText("fcntl(O_NONBLOCK)", errno);
    return std::nullopt;
}

// True when this process may change its user and groups without being root: it holds CAP_SETUID
// and CAP_SETGID in its effective set, as the packaged systemd unit grants the agent (together
// with CAP_KILL, for the process groups of plugins that run as another user).
bool canSwitchUsers() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (syscall(SYS_capget, &header, data) != 0) return false;
    auto effective = [&data](int capability) {
        return (data[CAP_TO_INDEX(capability)].effective & CAP_TO_MASK(capability)) != 0;
    };
    return effective(CAP_SETUID) && effective(CAP_SETGID);
}

// Whom the plugin runs as.
struct Identity {
    bool switchUser = false; // false: the agent already is the plugins user
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups; // supplementary groups, as initgroups() would set them
    std::string home;
};

// Returns the reason the plugin cannot run as `user`, or nothing.
std::optional<std::string> resolveUser(const std::string& user, Identity& identity) {
    const long suggested = sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buffer(suggested > 0 ? static_cast<std::size_t>(suggested) : 16384);
    passwd entry{};
    passwd* found = nullptr;
    for (;;) {
        const int rc = getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
        if (rc == ERANGE && buffer.size() < (1u << 20)) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        // Some NSS modules say "not found" with an error code instead of a null result.
        if (rc == ENOENT || rc == ESRCH)
            found = nullptr;
        else if (rc != 0)
            return errnoText("cannot look up pluginsuser " + user, rc);
        break;
    }
    if (found == nullptr) return "pluginsuser " + user + " does not exist";
    if (entry.pw_uid == 0 || entry.pw_gid == 0) return "pluginsuser " + user + " is root; plugins never run as root";

    identity.uid = entry.pw_uid;
    identity.gid = entry.pw_gid;
    identity.home = entry.pw_dir != nullptr ? entry.pw_dir : "/";
    const uid_t self = geteuid();
    if (self != 0 && entry.pw_uid == self) {
        identity.switchUser = false; // the agent runs as the plugins user already
        return std::nullopt;
    }
    if (self != 0 && !canSwitchUsers())
        return "cannot run plugins as pluginsuser " + user + ": the agent runs as uid " + std::to_string(self) +
               ", not as root and without CAP_SETUID and CAP_SETGID";
    identity.switchUser = true;

    // initgroups() reads the group database, which the child must not do: list the groups here
    // and setgroups() them in the child.
    int capacity = 32;
    for (;;) {
        identity.groups.resize(static_cast<std::size_t>(capacity));
        int count = capacity;
        if (getgrouplist(entry.pw_name, entry.pw_gid, identity.groups.data(), &count) >= 0) {
            identity.groups.resize(static_cast<std::size_t>(count));
            break;
        }
        if (capacity >= 65536) return "cannot list the groups of pluginsuser " + user;
        capacity = std::max(capacity * 2, count);
    }
    if (std::find(identity.groups.begin(), identity.groups.end(), gid_t{0}) != identity.groups.end())
        return "pluginsuser " + user + " is in group 0 (root); plugins never run as root";
    return std::nullopt;
}

// What the child reports when a step before or at execve() fails.
enum ChildStage : int {
    kStageSetsid,
    kStageStdin,
    kStageDup,
    kStageCloseDescriptors,
    kStageSignals,
    kStageSetgid,
    kStageSetgroups,
    kStageSetuid,
    kStageDropCapabilities,
    kStageRootRegained,
    kStageChdir,
    kStageExec,
};

struct ChildFailure {
    int stage = -1; // -1: none
    int error = 0;
};

std::string describeChildFailure(const ChildFailure& failure) {
    static constexpr const char* kNames[] = {"setsid",
                                             "open /dev/null",
                                             "dup2",
                                             "closing the agent's descriptors",
                                             "sigaction",
                                             "setgid",
                                             "setgroups",
                                             "setuid",
                                             "dropping capabilities",
                                             "setuid(0) after dropping root",
                                             "chdir to the plugin's folder"};
    if (failure.stage == kStageExec) return errnoText("cannot execute plugin", failure.error);
    if (failure.stage == kStageRootRegained) return "could regain root after switching user; refusing to run";
    if (failure.stage < 0 || failure.stage >= kStageExec) return "unknown failure in the child";
    return errnoText(std::string("cannot start plugin: ") + kNames[failure.stage], failure.error);
}

// How the child closes the agent's descriptors: the first way the kernel offers (see
// probeKernel()); should that one fail after all, the child falls back to the next.
enum class DescriptorCloser {
    CloseRangeCloexec, // close_range(CLOSE_RANGE_CLOEXEC): Linux 5.11
    CloseRange,        // close_range(): Linux 5.9
    ProcSelfFd,        // close() each descriptor listed in /proc/self/fd
    UpToLimit,         // close() every number up to the RLIMIT_NOFILE hard limit
};

DescriptorCloser descriptorCloserFor(const KernelSupport& support) {
    if (support.closeRangeCloexec) return DescriptorCloser::CloseRangeCloexec;
    if (support.closeRange) return DescriptorCloser::CloseRange;
    if (support.procSelfFd) return DescriptorCloser::ProcSelfFd;
    return DescriptorCloser::UpToLimit;
}

// Everything the child needs, prepared before the clone (the child must not allocate).
struct ChildSetup {
    int stdoutFd;
    int stderrFd;
    DescriptorCloser closer;
    const Identity* identity;
    const char* directory;
    char* const* argv;
    char* const* envp;
    ChildFailure* failure; // written by the child, read by the parent once the clone returns
};

// The kernel's struct sigaction (not glibc's): for SIG_DFL no restorer is needed.
struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
};
constexpr unsigned long kKernelSigsetSize = sizeof(unsigned long);
constexpr int kKernelSignals = 64;

// The functions below run in the child (see runChild()): raw system calls, no allocation, no libc
// function that may take a lock, no sanitizer. Closing a descriptor there touches only the
// child's copy of the descriptor table (no CLONE_FILES); the child needs none above 2 any more,
// since it reports a failure through memory.

// Closes every descriptor the child lists in /proc/self/fd above 2. False when /proc cannot be
// read (not mounted, or hidden), for the caller to fall back.
__attribute__((no_sanitize("address", "undefined"))) bool closeListedDescriptors() {
    const long directory = syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) return false;
    // The kernel lists /proc/self/fd in descriptor order from the directory offset, so closing
    // descriptors already listed moves none of those still to come: one pass sees them all.
    alignas(dirent64) char buffer[4096];
    for (;;) {
        const long size = syscall(SYS_getdents64, directory, buffer, sizeof buffer);
        if (size < 0) return false; // the fallback closes `directory` as well
        if (size == 0) break;
        for (long offset = 0; offset < size;) {
            const auto* entry = reinterpret_cast<const dirent64*>(buffer + offset);
            offset += entry->d_reclen;
            long fd = 0;
            bool isNumber = entry->d_name[0] != '\0'; // "." and ".." are not
            for (const char* c = entry->d_name; isNumber && *c != '\0'; ++c) {
                isNumber = *c >= '0' && *c <= '9' && fd <= INT_MAX / 10;
                fd = fd * 10 + (*c - '0');
            }
            // close() fails only with EBADF (already gone), or EINTR/EIO after releasing the fd.
            if (isNumber && fd > 2 && fd != directory) syscall(SYS_close, fd);
        }
    }
    syscall(SYS_close, directory);
    return true;
}

// Closes every descriptor number from 3 below the RLIMIT_NOFILE hard limit, which no new
// descriptor can reach. (One opened before the agent lowered its own hard limit could lie above;
// the agent never lowers it.) Returns 0 or the errno of prlimit64.
__attribute__((no_sanitize("address", "undefined"))) int closeUpToLimit() {
    struct {
        std::uint64_t current;
        std::uint64_t maximum;
    } limit{}; // the kernel's struct rlimit64
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit) != 0) return errno;
    // The kernel keeps the limit at or below fs.nr_open (at most about 2^30).
    const long end = limit.maximum < INT_MAX ? static_cast<long>(limit.maximum) : long{INT_MAX};
    for (long fd = 3; fd < end; ++fd)
        syscall(SYS_close, fd);
    return 0;
}

// Leaves the plugin no descriptor of the agent above 2, starting with `closer` and falling back
// to the next way when one fails. Returns 0 or an errno.
__attribute__((no_sanitize("address", "undefined"))) int closeAgentDescriptors(DescriptorCloser closer) {
    switch (closer) {
    case DescriptorCloser::CloseRangeCloexec:
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
        [[fallthrough]];
    case DescriptorCloser::CloseRange:
        if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return 0;
        [[fallthrough]];
    case DescriptorCloser::ProcSelfFd:
        if (closeListedDescriptors()) return 0;
        [[fallthrough]];
    case DescriptorCloser::UpToLimit:
        return closeUpToLimit();
    }
    return EINVAL; // not reached: every enumerator is handled
}

// The child shares the parent's memory (CLONE_VM, like posix_spawn) and the parent's thread waits
// until execve() or the exit. So the child makes raw system calls only: glibc's setuid() and
// friends would broadcast to the parent's threads (setxid), and no sanitizer runtime may run on
// this borrowed stack. errno is the parent thread's, which is suspended meanwhile.
__attribute__((no_sanitize("address", "undefined"))) int runChild(void* argument) {
    const ChildSetup& setup = *static_cast<const ChildSetup*>(argument);
    auto fail = [&](int stage, int error) {
        setup.failure->error = error;
        setup.failure->stage = stage;
        syscall(SYS_exit_group, 127);
    };
    if (syscall(SYS_setsid) < 0) fail(kStageSetsid, errno);

    const long devNull = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
    if (devNull < 0) fail(kStageStdin, errno);
    // dup3 refuses equal fds; the pipe ends are above 2 and /dev/null is 0 only when 0 was closed.
    if ((devNull != 0 && syscall(SYS_dup3, devNull, 0, 0) < 0) || syscall(SYS_dup3, setup.stdoutFd, 1, 0) < 0 ||
        syscall(SYS_dup3, setup.stderrFd, 2, 0) < 0)
        fail(kStageDup, errno);
    // Every other fd of the agent (sockets, files, other runs' pipes) closes now or at execve().
    if (const int error = closeAgentDescriptors(setup.closer); error != 0) fail(kStageCloseDescriptors, error);

    // The agent ignores SIGPIPE and blocks the termination signals; both would survive execve().
    // All signals are blocked since before the clone: reset the dispositions first, then the mask.
    const KernelSigaction defaultAction{SIG_DFL, 0, nullptr, 0};
    for (int signal = 1; signal <= kKernelSignals; ++signal) {
        if (signal == SIGKILL || signal == SIGSTOP) continue;
        if (syscall(SYS_rt_sigaction, signal, &defaultAction, nullptr, kKernelSigsetSize) != 0)
            fail(kStageSignals, errno);
    }
    const unsigned long none = 0;
    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, kKernelSigsetSize) != 0) fail(kStageSignals, errno);

    const Identity& identity = *setup.identity;
    if (identity.switchUser) {
        if (syscall(SYS_setgid, identity.gid) != 0) fail(kStageSetgid, errno);
        if (syscall(SYS_setgroups, identity.groups.size(), identity.groups.data()) != 0) fail(kStageSetgroups, errno);
        if (syscall(SYS_setuid, identity.uid) != 0) fail(kStageSetuid, errno);
    }
    // Leaving root drops every capability, but an agent that is not root and was given some (the
    // systemd unit's AmbientCapabilities) keeps them across setuid() and, through the ambient
    // set, across execve(): the plugin must get none.
    __user_cap_header_struct capHeader{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct noCapabilities[_LINUX_CAPABILITY_U32S_3]{};
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 ||
        syscall(SYS_capset, &capHeader, noCapabilities) != 0)
        fail(kStageDropCapabilities, errno);
    if (identity.switchUser && syscall(SYS_setuid, 0) == 0) fail(kStageRootRegained, 0);
    // After the switch, so that the plugins user's own permissions decide.
    if (syscall(SYS_chdir, setup.directory) != 0) fail(kStageChdir, errno);
    syscall(SYS_execve, "./plugin", setup.argv, setup.envp);
    fail(kStageExec, errno);
    return 127; // not reached: fail() exits
}

std::chrono::milliseconds since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

RunResult notRunnable(std::string reason, Clock::time_point start) {
    RunResult result;
    result.status = RunStatus::NotRunnable;
    result.reason = std::move(reason);
    result.duration = since(start);
    return result;
}

std::string describeSignal(int signal) {
    // sigabbrev_np: glibc 2.32, below the agent's floor of 2.34 (COMPATIBILITY).
    const char* name = sigabbrev_np(signal);
    return name != nullptr ? "SIG" + std::string(name) : "signal " + std::to_string(signal);
}

// Asks the kernel, without side effects, which of the newer calls it has. Any failure counts as
// missing: ENOSYS on an old kernel, EINVAL for a flag it does not know, EPERM from a container's
// seccomp profile.
KernelSupport probeKernel() {
    KernelSupport support;
    // Descriptor ~0U lies above every descriptor table: these close nothing.
    if (syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        support.closeRangeCloexec = true;
    else
        support.closeRangeCloexecError = errno;
    if (syscall(SYS_close_range, ~0U, ~0U, 0U) == 0)
        support.closeRange = true;
    else
        support.closeRangeError = errno;
    if (const Fd directory(open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)); directory.valid())
        support.procSelfFd = true;
    else
        support.procSelfFdError = errno;
    if (const Fd own(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0))); own.valid())
        support.pidfd = true;
    else
        support.pidfdError = errno;
    return support;
}

} // namespace

const KernelSupport& PluginRunner::kernelSupport() {
    static const KernelSupport support = probeKernel();
    return support;
}

PluginRunner::PluginRunner(const KernelSupport& allowed) {
    support_.closeRangeCloexec = support_.closeRangeCloexec && allowed.closeRangeCloexec;
    support_.closeRange = support_.closeRange && allowed.closeRange;
    support_.procSelfFd = support_.procSelfFd && allowed.procSelfFd;
    support_.pidfd = support_.pidfd && allowed.pidfd;
}

std::string describeKernelSupport(const KernelSupport& support) {
    if (support.closeRangeCloexec && support.pidfd) return "plugin runner: using close_range and pidfd_open";
    std::string closing;
    if (support.closeRangeCloexec) {
        closing = "using close_range";
    } else if (support.closeRange) {
        closing = "close_range without CLOSE_RANGE_CLOEXEC (" + errnoName(support.closeRangeCloexecError) +
                  "), closing descriptors with close_range in the child";
    } else {
        closing = "close_range unavailable (" + errnoName(support.closeRangeError) + "), closing descriptors ";
        closing += support.procSelfFd ? "by walking /proc/self/fd"
                                      : "one by one up to the RLIMIT_NOFILE hard limit (/proc/self/fd unreadable: " +
                                            errnoName(support.procSelfFdError) + ")";
    }
    const std::string watching = support.pidfd ? "using pidfd_open"
                                               : "pidfd_open unavailable (" + errnoName(support.pidfdError) +
                                                     "), watching plugins by polling waitid every " +
                                                     std::to_string(kExitCheckInterval.count()) + " ms";
    return "plugin runner: " + closing + "; " + watching;
}


// ---------------------------------------------------------------------------------------------
// PluginProcess: the steps of one run

struct PluginProcess::Pipes {
    Fd stdoutRead;
    Fd stderrRead;
    Fd pidFd;
};

namespace {

// What prepare() leaves for spawn(): everything the child needs, allocated before the clone.
struct Prepared {
    Identity identity;
    std::vector<std::string> environmentStrings;
    std::vector<char*> envp;
    std::vector<std::string> arguments;
    std::vector<char*> argv;
    Fd stdoutRead, stdoutWrite, stderrRead, stderrWrite;
};

// Checks, user and groups, argv and envp, pipes. The reason the plugin cannot run, or nothing.
std::optional<std::string> prepare(const RunRequest& request, Prepared& prepared) {
    if (request.directory.empty()) return "no plugin directory";
    const std::string pluginPath = request.directory + "/plugin";
    struct stat info {};
    if (stat(pluginPath.c_str(), &info) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return "no plugin file";
        return errnoText("cannot access plugin file", errno);
    }
    if (!S_ISREG(info.st_mode) || (info.st_mode & 0111) == 0) return "plugin is not executable";

    if (auto reason = resolveUser(request.user, prepared.identity)) return reason;

    std::vector<std::pair<std::string, std::string>> variables = {
        {"PATH", kDefaultPath}, {"HOME", prepared.identity.home}, {"LANG", kDefaultLang}};
    for (const auto& variable : request.environment) {
        const std::string& name = variable.first;
        if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos)
            return "bad environment variable name '" + name + "'";
        auto same = std::find_if(variables.begin(), variables.end(), [&](const auto& v) { return v.first == name; });
        if (same != variables.end())
            same->second = variable.second;
        else
            variables.push_back(variable);
    }
    for (const auto& [name, value] : variables)
        prepared.environmentStrings.push_back(name + "=" + value);
    for (std::string& entry : prepared.environmentStrings)
        prepared.envp.push_back(entry.data());
    prepared.envp.push_back(nullptr);

    prepared.arguments = {"plugin"};
    prepared.arguments.insert(prepared.arguments.end(), request.args.begin(), request.args.end());
    for (std::string& argument : prepared.arguments)
        prepared.argv.push_back(argument.data());
    prepared.argv.push_back(nullptr);

    for (auto [readEnd, writeEnd] : {std::pair{&prepared.stdoutRead, &prepared.stdoutWrite},
                                     std::pair{&prepared.stderrRead, &prepared.stderrWrite}}) {
        if (auto problem = makePipe(*readEnd, *writeEnd)) return problem;
    }
    for (const Fd* fd : {&prepared.stdoutRead, &prepared.stderrRead}) {
        if (auto problem = setNonBlocking(*fd)) return problem;
    }
    return std::nullopt;
}

// Starts the child (see runChild()). Returns its pid, or -1 with `reason` set; a child that
// failed before or at execve() is reaped here.
pid_t spawn(const Prepared& prepared, const RunRequest& request, const KernelSupport& support, std::string& reason) {
    ChildFailure failure;
    const ChildSetup setup{prepared.stdoutWrite.get(),
                           prepared.stderrWrite.get(),
                           descriptorCloserFor(support),
                           &prepared.identity,
                           request.directory.c_str(),
                           const_cast<char* const*>(prepared.argv.data()),
                           const_cast<char* const*>(prepared.envp.data()),
                           &failure};
    const std::unique_ptr<char[]> childStack = std::make_unique<char[]>(kChildStackSize);
    // As posix_spawn does: the child borrows our memory and this thread waits until its execve()
    // (or exit), which saves fork()'s page-table copy and tells us at once how the start went.
    // With every signal blocked across the clone, no handler of the agent can run in the child
    // before the child has reset them all.
    sigset_t all, previous;
    sigfillset(&all);
    if (const int rc = pthread_sigmask(SIG_SETMASK, &all, &previous); rc != 0) {
        reason = errnoText("pthread_sigmask", rc);
        return -1;
    }
    char* const stackTop = childStack.get() + kChildStackSize; // stacks grow down on Linux's ABIs
    const pid_t pid = clone(runChild, stackTop, CLONE_VM | CLONE_VFORK | SIGCHLD, const_cast<ChildSetup*>(&setup));
    const int cloneError = errno;
    if (const int rc = pthread_sigmask(SIG_SETMASK, &previous, nullptr); rc != 0) std::abort(); // cannot fail
    if (pid < 0) {
        reason = errnoText("clone", cloneError);
        return -1;
    }
    if (failure.stage >= 0) {
        // The child exited before or at execve(); its pid is ours until reaped.
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        reason = describeChildFailure(failure);
        return -1;
    }
    return pid;
}

} // namespace

PluginProcess::PluginProcess(const RunRequest& request, Clock::time_point start)
    : request_(request), start_(start), deadline_(start + request.timeout), pipes_(std::make_unique<Pipes>()),
      killGrace_(request.killGrace) {}

std::unique_ptr<PluginProcess> PluginProcess::start(const RunRequest& request, const KernelSupport& support,
                                                    RunResult& failed) {
    const Clock::time_point start = Clock::now();
    Prepared prepared;
    std::string reason;
    pid_t pid = -1;
    if (auto problem = prepare(request, prepared))
        reason = std::move(*problem);
    else
        pid = spawn(prepared, request, support, reason);
    if (pid < 0) {
        failed = notRunnable(std::move(reason), start);
        return nullptr;
    }
    std::unique_ptr<PluginProcess> process(new PluginProcess(request, start));
    process->pid_ = pid;
    process->pipes_->stdoutRead = std::move(prepared.stdoutRead);
    process->pipes_->stderrRead = std::move(prepared.stderrRead);
    // Only the child holds the write ends now: EOF comes when the plugin's group closes them.
    prepared.stdoutWrite.reset();
    prepared.stderrWrite.reset();
    // Without a pidfd (Linux before 5.3) the driver calls checkExit() every kExitCheckInterval.
    if (support.pidfd) {
        process->pipes_->pidFd = Fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
        if (!process->pipes_->pidFd.valid()) process->fail(errnoText("pidfd_open", errno));
    }
    return process;
}

PluginProcess::~PluginProcess() {
    for (int which = 0; which < 3; ++which)
        closeWatched(which);
    if (pid_ <= 0 || reaped_) return;
    // The pid is not reaped yet, so it cannot name another process. Only an error path gets here
    // and its reason is already in the result; ESRCH (the group is gone) is expected, and nothing
    // else can be done.
    [[maybe_unused]] const int leader = kill(pid_, SIGKILL);
    [[maybe_unused]] const int group = kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
}

int PluginProcess::stdoutFd() const { return pipes_->stdoutRead.get(); }
int PluginProcess::stderrFd() const { return pipes_->stderrRead.get(); }
int PluginProcess::pidFd() const { return exited_ ? -1 : pipes_->pidFd.get(); }

void PluginProcess::closeWatched(int which) {
    Fd& fd = which == 0 ? pipes_->stdoutRead : which == 1 ? pipes_->stderrRead : pipes_->pidFd;
    if (!fd.valid()) return;
    if (epollFd_ >= 0) epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd.get(), nullptr); // ENOENT: never added
    fd.reset();
}

void PluginProcess::fail(std::string reason) {
    if (error_.empty()) error_ = std::move(reason);
}

void PluginProcess::readStdout() {
    if (!pipes_->stdoutRead.valid()) return;
    char chunk[kReadChunk];
    const ssize_t n = read(pipes_->stdoutRead.get(), chunk, sizeof chunk);
    if (n > 0 && !overCap_) {
        // Past the cap the reading goes on (and is thrown away) so a writer is not stuck.
        result_.output.append(chunk, static_cast<std::size_t>(n));
        if (result_.output.size() > request_.stdoutCap) {
            overCap_ = true;
            result_.output.resize(request_.stdoutCap);
        }
    } else if (n == 0) {
        closeWatched(0);
    } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
        fail(errnoText("read of the plugin's stdout", errno));
        closeWatched(0);
    }
}

void PluginProcess::readStderr() {
    if (!pipes_->stderrRead.valid()) return;
    char chunk[kReadChunk];
    const ssize_t n = read(pipes_->stderrRead.get(), chunk, sizeof chunk);
    if (n > 0) {
        result_.stderrTail.append(chunk, static_cast<std::size_t>(n));
        if (result_.stderrTail.size() > request_.stderrTail + kReadChunk)
            result_.stderrTail.erase(0, result_.stderrTail.size() - request_.stderrTail);
    } else if (n == 0) {
        closeWatched(1);
    } else if (errno != EINTR && errno != EAGAIN) {
        fail(errnoText("read of the plugin's stderr", errno));
        closeWatched(1);
    }
}

void PluginProcess::checkExit() {
    if (exited_ || !error_.empty()) return;
    siginfo_t state{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &state, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno != EINTR) fail(errnoText("waitid", errno));
    } else if (state.si_pid == pid_) {
        exited_ = true;
        closeWatched(2); // the pidfd has told all it can
    }
}

// The group exists: the child's setsid() came before its execve(). ESRCH: nobody is left.
void PluginProcess::signalGroup(int signal) {
    if (kill(-pid_, signal) != 0 && errno != ESRCH && cleanupProblem_.empty())
        cleanupProblem_ = errnoText("kill(" + describeSignal(signal) + ") of the process group", errno);
}

void PluginProcess::advance(Clock::time_point now) {
    if (!error_.empty()) return;
    const bool pipesOpen = pipes_->stdoutRead.valid() || pipes_->stderrRead.valid();
    // Once the plugin exited, what is left of its group goes too (it may hold the pipes open).
    if (!termSent_ && (exited_ || overCap_ || stopRequested_ || now >= deadline_)) {
        stopped_ = !exited_ && !overCap_ && stopRequested_;
        timedOut_ = !exited_ && !overCap_ && !stopRequested_;
        signalGroup(SIGTERM);
        termSent_ = true;
        graceEnd_ = now + killGrace_;
    }
    if (termSent_ && !killSent_ && (now >= graceEnd_ || (exited_ && !pipesOpen))) {
        signalGroup(SIGKILL);
        killSent_ = true;
        drainEnd_ = now + kDrainLimit;
    }
}

void PluginProcess::stopNow(std::chrono::milliseconds grace, Clock::time_point now) {
    stopRequested_ = true;
    killGrace_ = std::min(killGrace_, grace);
    if (termSent_ && !killSent_) graceEnd_ = std::min(graceEnd_, now + killGrace_);
    advance(now);
}

bool PluginProcess::done(Clock::time_point now) const {
    if (!error_.empty()) return true;
    const bool pipesOpen = pipes_->stdoutRead.valid() || pipes_->stderrRead.valid();
    return killSent_ && exited_ && (!pipesOpen || now >= drainEnd_);
}

std::optional<PluginProcess::Clock::time_point> PluginProcess::nextWake(Clock::time_point now) const {
    if (!error_.empty()) return now;
    if (!termSent_) return deadline_;
    if (!killSent_) return graceEnd_;
    // After SIGKILL: the drain limit while the pipes are open, else only the exit is awaited.
    if (exited_ || now < drainEnd_) return drainEnd_;
    return std::nullopt;
}

RunResult PluginProcess::finish() {
    for (int which = 0; which < 3; ++which)
        closeWatched(which);
    if (!error_.empty()) {
        // The destructor kills and reaps the plugin.
        RunResult result;
        result.status = RunStatus::Error;
        result.reason = error_;
        result.duration = since(start_);
        return result;
    }
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0) {
        if (errno != EINTR) {
            RunResult result;
            result.status = RunStatus::Error;
            result.reason = errnoText("waitpid", errno);
            result.duration = since(start_);
            return result;
        }
    }
    reaped_ = true;
    RunResult result = std::move(result_);
    result.duration = since(start_);
    if (result.stderrTail.size() > request_.stderrTail)
        result.stderrTail.erase(0, result.stderrTail.size() - request_.stderrTail);
    if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);

    if (overCap_) {
        result.status = RunStatus::BadOutput;
        result.reason = "output exceeds " + std::to_string(request_.stdoutCap) + " bytes";
    } else if (stopped_) {
        result.status = RunStatus::Error;
        result.reason = kAgentStopping;
    } else if (timedOut_) {
        result.status = RunStatus::Timeout;
        result.reason = "timed out after " + std::to_string(request_.timeout.count()) + " ms";
    } else if (result.exitCode == 0) {
        result.status = RunStatus::Ok;
    } else {
        result.status = RunStatus::Error;
        result.reason = result.signal != 0 ? "killed by " + describeSignal(result.signal)
                                           : "exit code " + std::to_string(result.exitCode);
    }
    if (!cleanupProblem_.empty()) result.reason += (result.reason.empty() ? "" : "; ") + cleanupProblem_;
    return result;
}

// ---------------------------------------------------------------------------------------------
// PluginRunner::run(): one run, driven by a poll loop on the calling thread

RunResult PluginRunner::run(const RunRequest& request) {
    RunResult failed;
    std::unique_ptr<PluginProcess> process = PluginProcess::start(request, support_, failed);
    if (!process) return failed;
    return driveToEnd(*process);
}

RunResult driveToEnd(PluginProcess& process) {
    for (;;) {
        Clock::time_point now = Clock::now();
        process.advance(now);
        if (process.done(now)) break;

        pollfd fds[3];
        nfds_t count = 0;
        int outIndex = -1, errIndex = -1, pidIndex = -1;
        if (process.stdoutFd() >= 0) {
            outIndex = static_cast<int>(count);
            fds[count++] = {process.stdoutFd(), POLLIN, 0};
        }
        if (process.stderrFd() >= 0) {
            errIndex = static_cast<int>(count);
            fds[count++] = {process.stderrFd(), POLLIN, 0};
        }
        if (process.pidFd() >= 0) {
            pidIndex = static_cast<int>(count);
            fds[count++] = {process.pidFd(), POLLIN, 0};
        }
        int waitMs = -1;
        if (const auto wake = process.nextWake(now)) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*wake - now).count();
            waitMs = static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
        }
        const bool polling = !process.exited() && pidIndex < 0; // no pidfd: check every 20 ms
        if (polling) {
            constexpr int kCheckMs = static_cast<int>(kExitCheckInterval.count());
            waitMs = waitMs < 0 ? kCheckMs : std::min(waitMs, kCheckMs);
        }
        const int ready = poll(fds, count, waitMs);
        if (ready < 0) {
            if (errno == EINTR) continue;
            RunResult result;
            result.status = RunStatus::Error;
            result.reason = errnoText("poll", errno);
            return result; // the process's destructor kills and reaps the plugin
        }
        if (outIndex >= 0 && fds[outIndex].revents != 0) process.readStdout();
        if (errIndex >= 0 && fds[errIndex].revents != 0) process.readStderr();
        if (polling || (pidIndex >= 0 && fds[pidIndex].revents != 0)) process.checkExit();
    }
    return process.finish();
}

} // namespace agent::exec
