#include "ProbeChecks.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/Exception.h>
#include <Poco/Net/SocketAddress.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace agent::probe {

namespace {

using Clock = std::chrono::steady_clock;

// A connect in flight: its socket and when it gives up.
struct Pending {
    std::size_t index = 0;
    int fd = -1;
    Clock::time_point deadline;
};

std::string describe(const PortTarget& target, const std::string& reason) {
    return target.host + ":" + std::to_string(target.port) + ": " + reason;
}

// Starts a non-blocking connect to `target`. Returns the socket when it is in flight; -1 when it
// already ended, with `result` saying how.
int startConnect(const PortTarget& target, PortResult& result) {
    Poco::Net::SocketAddress address;
    try {
        address = Poco::Net::SocketAddress(target.host, static_cast<Poco::UInt16>(target.port));
    } catch (const Poco::Exception& e) {
        result.error = describe(target, e.displayText());
        return -1;
    }
    const int fd = ::socket(address.af(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        result.error = describe(target, std::string("socket: ") + std::strerror(errno));
        return -1;
    }
    if (::connect(fd, address.addr(), address.length()) == 0) {
        ::close(fd);
        result.up = true;
        return -1;
    }
    if (errno == EINPROGRESS) return fd;
    result.error = describe(target, std::strerror(errno));
    ::close(fd);
    return -1;
}

// The outcome of a connect whose socket poll() reported ready.
void finishConnect(const PortTarget& target, int fd, PortResult& result) {
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
    if (error == 0) result.up = true;
    else result.error = describe(target, std::strerror(error));
}

} // namespace

std::vector<PortResult> tcpConnectAll(const std::vector<PortTarget>& targets) {
    std::vector<PortResult> results(targets.size());
    std::vector<Pending> pending;
    std::size_t next = 0;
    while (next < targets.size() || !pending.empty()) {
        while (next < targets.size() && pending.size() < kMaxConnectsInFlight) {
            const std::size_t index = next++;
            const int fd = startConnect(targets[index], results[index]);
            if (fd >= 0) pending.push_back(Pending{index, fd, Clock::now() + targets[index].timeout});
        }
        if (pending.empty()) continue;

        Clock::time_point nearest = pending.front().deadline;
        std::vector<pollfd> fds;
        fds.reserve(pending.size());
        for (const Pending& p : pending) {
            fds.push_back(pollfd{p.fd, POLLOUT, 0});
            nearest = std::min(nearest, p.deadline);
        }
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(nearest - Clock::now());
        const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
        if (ready < 0 && errno != EINTR) {
            const std::string reason = std::string("poll: ") + std::strerror(errno);
            for (const Pending& p : pending) {
                results[p.index].error = describe(targets[p.index], reason);
                ::close(p.fd);
            }
            pending.clear();
            continue;
        }
        const Clock::time_point now = Clock::now();
        std::vector<Pending> still;
        for (std::size_t i = 0; i < pending.size(); ++i) {
            const Pending& p = pending[i];
            if (ready > 0 && fds[i].revents != 0) {
                finishConnect(targets[p.index], p.fd, results[p.index]);
                ::close(p.fd);
            } else if (now >= p.deadline) {
                results[p.index].error = describe(targets[p.index], "no connection within " +
                                                                        std::to_string(targets[p.index].timeout.count()) + " ms");
                ::close(p.fd);
            } else {
                still.push_back(p);
            }
        }
        pending.swap(still);
    }
    return results;
}

bool tcpConnect(const std::string& host, int port, std::chrono::milliseconds timeout, std::string& error) {
    PortResult result = tcpConnectAll({PortTarget{host, port, timeout}}).front();
    error = result.error;
    return result.up;
}

ProcessUsage scanProcesses(const std::string& procRoot, const std::string& binPath) {
    ProcessUsage usage;
    static const long pageSize = sysconf(_SC_PAGESIZE);
    for (Poco::DirectoryIterator it(procRoot), end; it != end; ++it) {
        const std::string& name = it.name();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const std::string dir = procRoot + "/" + name;
        char target[PATH_MAX];
        const ssize_t n = readlink((dir + "/exe").c_str(), target, sizeof target - 1);
        if (n <= 0) continue; // gone, a kernel thread, or not ours to read
        std::string exe(target, static_cast<std::size_t>(n));
        const std::string deleted = " (deleted)";
        if (exe.size() > deleted.size() && exe.compare(exe.size() - deleted.size(), deleted.size(), deleted) == 0)
            exe.resize(exe.size() - deleted.size());
        if (exe != binPath) continue;
        std::ifstream statFile(dir + "/stat");
        std::string stat;
        if (!std::getline(statFile, stat)) continue;
        // Fields after the command name, which is in parentheses and may hold spaces.
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream fields(stat.substr(close + 2));
        std::string field;
        std::uint64_t utime = 0, stime = 0, threads = 0, rssPages = 0;
        bool readable = true;
        auto number = [&readable](const std::string& text) -> std::uint64_t {
            char* end = nullptr;
            const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
            if (end == text.c_str() || *end != '\0') readable = false;
            return value;
        };
        int index = 3; // field 3 is the state
        for (; fields >> field && index <= 24; ++index) {
            if (index == 14) utime = number(field);
            else if (index == 15) stime = number(field);
            else if (index == 20) threads = number(field);
            else if (index == 24) rssPages = number(field);
        }
        if (!readable || index <= 24) continue; // not a stat line we understand
        ++usage.count;
        usage.cpuTicks += utime + stime;
        usage.threads += threads;
        usage.rssBytes += rssPages * static_cast<std::uint64_t>(pageSize);
    }
    return usage;
}

} // namespace agent::probe
