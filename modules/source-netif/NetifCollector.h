// Network interface counters turned into rates: parses /proc/net/dev, reads link speeds from
// /sys/class/net/<if>/speed and keeps one baseline per interface between reads.
//
// Touches only the two paths given to the constructor, reads no clock (the caller passes the
// monotonic time in, so tests control it) and logs nothing: what deserves a log line comes back
// in the CollectReport, already reduced to "once per event".
#pragma once

#include <agent/Metric.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agent::netif {

// The counters of one /proc/net/dev line that the module uses.
struct InterfaceCounters {
    std::string name;
    std::uint64_t rxBytes = 0;
    std::uint64_t rxPackets = 0;
    std::uint64_t rxErrors = 0;
    std::uint64_t rxDropped = 0;
    std::uint64_t txBytes = 0;
    std::uint64_t txPackets = 0;
    std::uint64_t txErrors = 0;
    std::uint64_t txDropped = 0;
};

struct ProcNetDev {
    std::vector<InterfaceCounters> interfaces; // in file order
    std::size_t malformedLines = 0;            // lines skipped (header and blank lines do not count)
    std::string firstMalformedLine;            // for the log, so an operator sees what was wrong
};

// Parses the whole content of /proc/net/dev. Tolerates the two header lines, any padding, names
// glued to their first counter ("eth0:1234 ..." once the counter is wider than the column) and
// skips, counting them, lines it cannot read: no colon, a bad name, fewer than 16 counters, a
// counter that is not an unsigned 64-bit number, or an interface listed twice. Never throws.
ProcNetDev parseProcNetDev(std::string_view content);

// A link speed in Mbit/s, or why there is none.
struct LinkSpeed {
    std::optional<double> mbitPerSecond; // set only for a positive number
    // Empty when the speed is simply unknown (no file, -1, or EINVAL, which is what lo and virtual
    // or down devices answer); otherwise an unexpected failure worth one log line.
    std::string problem;
};

// Reads <sysClassNet>/<iface>/speed.
LinkSpeed readLinkSpeed(const std::string& sysClassNet, const std::string& iface);

// What one collect() saw, for the caller to log and to put in the module's health.
struct CollectReport {
    // Why /proc/net/dev could not be read or parsed this round; "" when it was.
    std::string error;
    // True when `error` differs from the previous round's, so it is logged once, not every round.
    bool errorIsNew = false;
    std::vector<std::string> warnings; // anomalies (a counter went back, an impossible rate...)
    std::vector<std::string> notices;  // interfaces that appeared or vanished, recovery
    std::size_t malformedLines = 0;    // in this read
};

class NetifCollector {
public:
    // `prefixes`: an interface is watched when its name starts with one of them ("" matches all).
    NetifCollector(std::string procNetDev, std::string sysClassNet, std::vector<std::string> prefixes);

    // Reads once and appends the rates since the previous read of each interface to `out`, as
    // single-valued points with an empty namespace, tag `interface` and the given timestamp.
    // `monotonicSeconds` must come from a clock that never jumps (steady_clock).
    CollectReport collect(double monotonicSeconds, std::int64_t timestamp, agent::Batch& out);

    std::size_t interfaceCount() const { return state_.size(); }
    std::size_t malformedLinesTotal() const { return malformedLinesTotal_; }
    // The error of the latest round, "" when it read fine.
    const std::string& lastError() const { return lastError_; }

    // A bits/s rate above this many times the link speed cannot be real: it is what a counter
    // that wrapped at 32 bits (or a driver that jumped) looks like, and it is skipped.
    static constexpr double kImpossibleSpeedFactor = 10.0;

private:
    struct Baseline {
        InterfaceCounters counters;
        double monotonicSeconds = 0;
        bool speedProblemLogged = false; // an unexpected speed read failure is logged once
    };

    bool watched(const std::string& name) const;
    // Appends the points of one interface, or explains in the report why the round is skipped.
    void publishRates(const InterfaceCounters& now, double monotonicSeconds, std::int64_t timestamp,
                      Baseline& baseline, agent::Batch& out, CollectReport& report);

    std::string procNetDev_;
    std::string sysClassNet_;
    std::vector<std::string> prefixes_;
    std::map<std::string, Baseline> state_;
    std::size_t malformedLinesTotal_ = 0;
    bool malformedLogged_ = false; // the first malformed line is logged, the rest only counted
    std::string lastError_;
};

using NetifCollectorPtr = std::unique_ptr<NetifCollector>;

} // namespace agent::netif
