// The two checks of the Go agent's other registry types: PORT (can a TCP connection be made)
// and PROC (how many processes run a given executable, and what they use).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace agent::probe {

// Connects to host:port within `timeout`; false and the reason when it cannot.
bool tcpConnect(const std::string& host, int port, std::chrono::milliseconds timeout, std::string& error);

struct ProcessUsage {
    std::uint64_t count = 0;
    std::uint64_t cpuTicks = 0;  // utime + stime of all of them, in clock ticks
    std::uint64_t rssBytes = 0;
    std::uint64_t threads = 0;
};

// Every process under `procRoot` (normally /proc) whose executable is `binPath` (a process whose
// binary was replaced on disk, "<path> (deleted)", counts too). Processes that vanish while
// being read are skipped.
ProcessUsage scanProcesses(const std::string& procRoot, const std::string& binPath);

} // namespace agent::probe
