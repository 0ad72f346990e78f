#include "PidFile.h"

#include <Poco/File.h>
#include <Poco/Path.h>

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <system_error>
#include <unistd.h>

namespace agent {
namespace {

pid_t readPid(int fd) {
    char buffer[32] = {};
    const ssize_t n = pread(fd, buffer, sizeof buffer - 1, 0);
    if (n <= 0) return 0;
    return static_cast<pid_t>(std::strtol(buffer, nullptr, 10));
}

} // namespace

AlreadyRunning::AlreadyRunning(const std::string& path, pid_t pid)
    : std::runtime_error("agent is already running (pid " + std::to_string(pid) + ", pid file " + path + ")"),
      pid_(pid) {}

PidFile::PidFile(std::string path) : path_(std::move(path)) {
    Poco::File(Poco::Path(path_).parent()).createDirectories();
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot open pid file " + path_);
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        const pid_t other = readPid(fd_);
        close(fd_);
        fd_ = -1;
        if (error == EWOULDBLOCK) throw AlreadyRunning(path_, other);
        throw std::system_error(error, std::generic_category(), "cannot lock pid file " + path_);
    }
    const std::string text = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
        const int error = errno;
        close(fd_);
        fd_ = -1;
        throw std::system_error(error, std::generic_category(), "cannot write pid file " + path_);
    }
}

PidFile::~PidFile() {
    if (fd_ < 0) return;
    unlink(path_.c_str()); // while still locked, so no new agent's file is removed
    close(fd_);
}

std::optional<pid_t> PidFile::runningPid(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::optional<pid_t> result;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) result = readPid(fd);
    close(fd);
    return result;
}

} // namespace agent
