// The two checks of the Go agent's other registry types: PORT (can a TCP connection be made)
// and PROC (how many processes run a given executable, and what they use).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace agent::probe {

// One PORT check: can a TCP connection to host:port be made within `timeout`.
struct PortTarget {
    std::string host;
    int port = 0;
    std::chrono::milliseconds timeout{3000};
};

struct PortResult {
    bool up = false;
    std::string error; // why not, when not up: "<host>:<port>: <reason>"
};

// At most this many connects are in flight at once (each holds a file descriptor).
constexpr std::size_t kMaxConnectsInFlight = 128;

// Checks every target at once, each within its own timeout, so a round of unreachable ports takes
// about one timeout, not their sum. One result per target, in order. Host names are resolved
// first, one after another (numeric addresses need no lookup). The connection is closed as soon
// as it is made; nothing is sent.
std::vector<PortResult> tcpConnectAll(const std::vector<PortTarget>& targets);

// The same for one target: true when it connects; false and the reason when it cannot.
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
