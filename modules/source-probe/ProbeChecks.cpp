#include "ProbeChecks.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/Exception.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace agent::probe {

bool tcpConnect(const std::string& host, int port, std::chrono::milliseconds timeout, std::string& error) {
    try {
        Poco::Net::StreamSocket socket;
        socket.connect(Poco::Net::SocketAddress(host, static_cast<Poco::UInt16>(port)),
                       Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000));
        socket.close();
        return true;
    } catch (const Poco::Exception& e) {
        error = host + ":" + std::to_string(port) + ": " + e.displayText();
        return false;
    }
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
