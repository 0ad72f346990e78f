// Starting, watching and killing the git helper (see GitTransferProcess.h).
#include "GitTransferProcess.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

extern char** environ;

namespace agent::exec {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kAnswerCap = 64 * 1024;   // the answer is one short line
constexpr std::size_t kStderrTail = 2048;       // kept for a helper that dies without answering
constexpr int kPollSliceMs = 100;               // how soon a stop request is seen

std::string errnoText(const std::string& what, int error) {
    return what + ": " + std::system_category().message(error);
}

TransferResult failure(std::string text) {
    TransferResult result;
    result.outcome = TransferResult::Outcome::Failed;
    result.error = std::move(text);
    return result;
}

class Pipe {
public:
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
        read_ = fds[0];
        write_ = fds[1];
        const int flags = ::fcntl(read_, F_GETFL);
        if (flags < 0 || ::fcntl(read_, F_SETFL, flags | O_NONBLOCK) != 0) {
            const int error = errno;
            closeRead();
            closeWrite();
            throw std::system_error(error, std::system_category(), "fcntl(O_NONBLOCK)");
        }
    }
    ~Pipe() {
        closeRead();
        closeWrite();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    int readEnd() const { return read_; }
    int writeEnd() const { return write_; }
    void closeRead() { closeFd(read_); }
    void closeWrite() { closeFd(write_); }

private:
    static void closeFd(int& fd) {
        if (fd >= 0) ::close(fd); // a pipe's close fails only on a bad descriptor
        fd = -1;
    }
    int read_ = -1;
    int write_ = -1;
};

// Reads what is there; false at end of file.
bool drain(Pipe& pipe, std::string& into, std::size_t keep, bool tail) {
    char chunk[8192];
    for (;;) {
        const ssize_t n = ::read(pipe.readEnd(), chunk, sizeof chunk);
        if (n > 0) {
            into.append(chunk, static_cast<std::size_t>(n));
            if (into.size() > keep) {
                if (tail)
                    into.erase(0, into.size() - keep);
                else
                    into.resize(keep);
            }
            continue;
        }
        if (n == 0) {
            pipe.closeRead();
            return false;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return true;
        pipe.closeRead(); // a pipe read fails otherwise only on a bug; stop reading it
        return false;
    }
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> result;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) result.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return result;
}

// The last "stage: ..." line the helper wrote.
std::string lastStage(const std::string& errors) {
    std::string stage;
    for (const std::string& line : lines(errors))
        if (line.starts_with("stage: ")) stage = line.substr(7);
    return stage;
}

// What the helper wrote on stderr that is not a stage line, on one line.
std::string complaints(const std::string& errors) {
    std::string text;
    for (const std::string& line : lines(errors))
        if (!line.starts_with("stage: ")) text += (text.empty() ? "" : "; ") + line;
    return text;
}

TransferResult parseAnswer(const std::string& out) {
    const std::string line = out.substr(0, out.find('\n'));
    TransferResult result;
    auto word = [&line](std::size_t index) {
        std::size_t start = 0;
        for (std::size_t i = 0; i < index && start != std::string::npos; ++i) {
            start = line.find(' ', start);
            if (start != std::string::npos) ++start;
        }
        if (start == std::string::npos) return std::string();
        return line.substr(start, line.find(' ', start) - start);
    };
    const std::string status = word(0), kind = word(1);
    if (status == "ok" && (kind == "changed" || kind == "unchanged") && !word(2).empty()) {
        result.outcome = kind == "changed" ? TransferResult::Outcome::Changed : TransferResult::Outcome::Unchanged;
        result.commit = word(2);
        return result;
    }
    if (status == "error" && (kind == "branch" || kind == "timeout" || kind == "failed")) {
        result.outcome = kind == "branch"    ? TransferResult::Outcome::BranchNotFound
                         : kind == "timeout" ? TransferResult::Outcome::TimedOut
                                             : TransferResult::Outcome::Failed;
        const std::size_t message = line.find(' ', line.find(' ') + 1);
        result.error = message == std::string::npos ? std::string() : line.substr(message + 1);
        return result;
    }
    return failure("the git helper gave no answer");
}

std::string describeStatus(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

} // namespace

std::string describeTimeout(std::chrono::milliseconds timeout) {
    if (timeout.count() % 1000 == 0) return std::to_string(timeout.count() / 1000) + " s";
    return std::to_string(timeout.count()) + " ms";
}

TransferResult GitTransferProcess::run(const std::vector<std::string>& arguments, std::chrono::milliseconds timeout,
                                       const std::atomic<bool>& stop) const {
    if (stop.load()) return failure("agent is stopping");
    std::vector<std::string> words{helperPath_};
    words.insert(words.end(), arguments.begin(), arguments.end());
    words.push_back(std::to_string(timeout.count()));
    std::vector<char*> argv;
    for (std::string& word : words)
        argv.push_back(word.data());
    argv.push_back(nullptr);

    std::optional<Pipe> out, err;
    try {
        out.emplace();
        err.emplace();
    } catch (const std::system_error& e) {
        return failure(std::string("cannot start the git helper: ") + e.what());
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    if (const int rc = posix_spawn_file_actions_init(&actions); rc != 0)
        return failure(errnoText("posix_spawn_file_actions_init", rc));
    if (const int rc = posix_spawnattr_init(&attributes); rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return failure(errnoText("posix_spawnattr_init", rc));
    }
    // Its own process group, so the kill reaches anything it started (an ssh, say); default
    // signal dispositions and an empty mask (the agent ignores SIGPIPE and blocks others); no
    // descriptor of the agent but the three it is given.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    int rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, out->writeEnd(), 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, err->writeEnd(), 2);
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attributes,
                                      POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attributes, 0);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attributes, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attributes, &all);
    pid_t pid = -1;
    if (rc == 0) rc = posix_spawn(&pid, helperPath_.c_str(), &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0) return failure(errnoText("cannot start the git helper " + helperPath_, rc));
    out->closeWrite();
    err->closeWrite();

    const Clock::time_point deadline = Clock::now() + timeout;
    std::string answer, errors;
    bool killed = false;
    bool stopped = false;
    std::string pollError;
    // Exited but not reaped (waitid WNOWAIT): its pid, and so its group id, stays ours until the
    // group kill below, which ends anything it started that is still running.
    auto exited = [pid] {
        siginfo_t info{};
        return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
    };
    for (;;) {
        if (stop.load() || Clock::now() >= deadline) {
            stopped = stop.load();
            killed = true;
            break;
        }
        pollfd fds[2];
        nfds_t count = 0;
        if (out->readEnd() >= 0) fds[count++] = {out->readEnd(), POLLIN, 0};
        if (err->readEnd() >= 0) fds[count++] = {err->readEnd(), POLLIN, 0};
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        int wait = static_cast<int>(std::clamp<long long>(left, 0, kPollSliceMs));
        // Both pipes closed, or the answer is in: only its exit is awaited.
        const bool answered = count == 0 || answer.find('\n') != std::string::npos;
        if (answered) {
            if (exited()) break;
            wait = std::min(wait, 10);
        }
        if (::poll(count ? fds : nullptr, count, wait) < 0 && errno != EINTR) {
            pollError = errnoText("poll on the git helper", errno);
            break;
        }
        if (out->readEnd() >= 0) drain(*out, answer, kAnswerCap, false);
        if (err->readEnd() >= 0) drain(*err, errors, kStderrTail, true);
    }
    // The group exists (posix_spawn made it before the exec); ESRCH: everyone is gone already.
    ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    if (!pollError.empty()) return failure(pollError);
    if (stopped) return failure("agent is stopping");
    // Killed at the deadline, or the helper's own timeout (libgit2's or its callbacks').
    const std::string stage = lastStage(errors);
    auto timedOut = [&](const std::string& detail) {
        TransferResult result;
        result.outcome = TransferResult::Outcome::TimedOut;
        result.error = "timed out after " + describeTimeout(timeout) + (stage.empty() ? "" : " while " + stage) +
                       (detail.empty() ? "" : " (" + detail + ")");
        return result;
    };
    if (killed) return timedOut({});
    TransferResult result = parseAnswer(answer);
    if (result.outcome == TransferResult::Outcome::TimedOut) {
        result = timedOut(result.error);
    } else if (answer.empty()) {
        const std::string said = complaints(errors);
        result.error = "the git helper ended with " + describeStatus(status) + " and no answer" +
                       (said.empty() ? "" : ": " + said);
    }
    return result;
}

} // namespace agent::exec
