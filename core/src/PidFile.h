// A pid file held under an flock(2) for the agent's whole life. The lock, not the number in the
// file, says whether an agent runs: a stale file left by a crash is never mistaken for a live
// agent, and a recycled pid cannot fool `agent status`.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace agent {

class AlreadyRunning : public std::runtime_error {
public:
    AlreadyRunning(const std::string& path, pid_t pid);
    pid_t pid() const { return pid_; }

private:
    pid_t pid_;
};

class PidFile {
public:
    // Creates the directory and file, takes the lock, writes our pid. Throws AlreadyRunning when
    // another process holds the lock, std::system_error when the file cannot be created.
    explicit PidFile(std::string path);
    ~PidFile();
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

    // The pid of the agent holding the lock on `path`, or nothing when no agent holds it.
    static std::optional<pid_t> runningPid(const std::string& path);

private:
    std::string path_;
    int fd_ = -1;
};

} // namespace agent
