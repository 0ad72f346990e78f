// Parsing of /proc/net/dev and /sys/class/net/<if>/speed, and the rate rules of source-netif:
// a first read is a baseline, a counter that goes back or an impossible rate starts a new
// baseline instead of publishing, and no elapsed time means no rate.
#include "NetifCollector.h"

#include <agent/KernelFile.h>

#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace agent::netif {
namespace {

// /proc/net/dev has 8 receive then 8 transmit counters per interface.
constexpr std::size_t kCountersPerLine = 16;

std::string errnoText(int error) { return std::system_category().message(error); }

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view text) {
    while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
    while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
    return text;
}

bool validInterfaceName(std::string_view name) {
    // The kernel refuses these too (dev_valid_name); refusing them here also keeps a name from
    // escaping the /sys/class/net directory when it is used in a path.
    if (name.empty() || name == "." || name == "..") return false;
    for (char c : name) {
        if (c == '/' || c == ':' || isSpace(c)) return false;
    }
    return true;
}

// Parses one interface line; false when it is malformed.
bool parseInterfaceLine(std::string_view line, InterfaceCounters& counters) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = trim(line.substr(0, colon));
    if (!validInterfaceName(name)) return false;

    std::uint64_t values[kCountersPerLine] = {};
    std::size_t count = 0;
    std::string_view rest = line.substr(colon + 1);
    for (;;) {
        rest = trim(rest);
        if (rest.empty()) break;
        std::size_t end = 0;
        while (end < rest.size() && !isSpace(rest[end])) ++end;
        const std::string_view token = rest.substr(0, end);
        std::uint64_t value = 0;
        const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
        if (ec != std::errc() || ptr != token.data() + token.size()) return false;
        // Later kernels may append counters; the first 16 keep their meaning.
        if (count < kCountersPerLine) values[count] = value;
        ++count;
        rest.remove_prefix(end);
    }
    if (count < kCountersPerLine) return false;

    counters.name = std::string(name);
    counters.rxBytes = values[0];
    counters.rxPackets = values[1];
    counters.rxErrors = values[2];
    counters.rxDropped = values[3];
    counters.txBytes = values[8];
    counters.txPackets = values[9];
    counters.txErrors = values[10];
    counters.txDropped = values[11];
    return true;
}

bool isHeaderLine(std::string_view line) {
    // "Inter-|   Receive ...|  Transmit" and " face |bytes    packets ...": bars, no colon.
    return line.find(':') == std::string_view::npos && line.find('|') != std::string_view::npos;
}

// True when any counter is below its baseline: a reset, a wrap, or a re-created interface.
bool wentBack(const InterfaceCounters& before, const InterfaceCounters& now, std::string& which) {
    const struct {
        const char* name;
        std::uint64_t before;
        std::uint64_t now;
    } pairs[] = {
        {"rx bytes", before.rxBytes, now.rxBytes},       {"rx packets", before.rxPackets, now.rxPackets},
        {"rx errors", before.rxErrors, now.rxErrors},    {"rx dropped", before.rxDropped, now.rxDropped},
        {"tx bytes", before.txBytes, now.txBytes},       {"tx packets", before.txPackets, now.txPackets},
        {"tx errors", before.txErrors, now.txErrors},    {"tx dropped", before.txDropped, now.txDropped},
    };
    for (const auto& pair : pairs) {
        if (pair.now < pair.before) {
            which = std::string(pair.name) + " went from " + std::to_string(pair.before) + " to " +
                    std::to_string(pair.now);
            return true;
        }
    }
    return false;
}

double perSecond(std::uint64_t before, std::uint64_t now, double seconds) {
    return static_cast<double>(now - before) / seconds;
}

} // namespace

ProcNetDev parseProcNetDev(std::string_view content) {
    ProcNetDev result;
    while (!content.empty()) {
        const std::size_t newline = content.find('\n');
        const std::string_view line =
            newline == std::string_view::npos ? content : content.substr(0, newline);
        content.remove_prefix(newline == std::string_view::npos ? content.size() : newline + 1);

        if (trim(line).empty() || isHeaderLine(line)) continue;
        InterfaceCounters counters;
        bool ok = parseInterfaceLine(line, counters);
        if (ok) {
            for (const InterfaceCounters& seen : result.interfaces) {
                if (seen.name == counters.name) ok = false; // which of the two would be right?
            }
        }
        if (ok) {
            result.interfaces.push_back(std::move(counters));
        } else {
            if (result.malformedLines == 0) result.firstMalformedLine = std::string(trim(line));
            ++result.malformedLines;
        }
    }
    return result;
}

LinkSpeed readLinkSpeed(const std::string& sysClassNet, const std::string& iface) {
    LinkSpeed speed;
    const std::string path = sysClassNet + "/" + iface + "/speed";
    std::string content;
    const int error = readWholeFile(path, content);
    // ENOENT: no such device or no speed attribute; EINVAL: lo, virtual devices and links that
    // are down refuse the read. Both only mean "unknown".
    if (error == ENOENT || error == EINVAL) return speed;
    if (error != 0) {
        speed.problem = "cannot read " + path + ": " + errnoText(error);
        return speed;
    }
    const std::string_view text = trim(content);
    std::int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        speed.problem = path + " holds '" + std::string(text) + "', not a number of Mbit/s";
        return speed;
    }
    if (value > 0) speed.mbitPerSecond = static_cast<double>(value); // -1 (SPEED_UNKNOWN) or 0: unknown
    return speed;
}

NetifCollector::NetifCollector(std::string procNetDev, std::string sysClassNet,
                               std::vector<std::string> prefixes)
    : procNetDev_(std::move(procNetDev)), sysClassNet_(std::move(sysClassNet)), prefixes_(std::move(prefixes)) {}

bool NetifCollector::watched(const std::string& name) const {
    for (const std::string& prefix : prefixes_) {
        if (name.compare(0, prefix.size(), prefix) == 0) return true;
    }
    return false;
}

CollectReport NetifCollector::collect(double monotonicSeconds, std::int64_t timestamp, agent::Batch& out) {
    CollectReport report;
    std::string content;
    const int error = readWholeFile(procNetDev_, content);
    if (error != 0) {
        // The baselines stay: once the file is back, the rates cover the whole gap.
        report.error = "cannot read " + procNetDev_ + ": " + errnoText(error);
        report.errorIsNew = report.error != lastError_;
        lastError_ = report.error;
        return report;
    }
    if (!lastError_.empty()) report.notices.push_back("reading " + procNetDev_ + " again");
    lastError_.clear();

    ProcNetDev parsed = parseProcNetDev(content);
    report.malformedLines = parsed.malformedLines;
    malformedLinesTotal_ += parsed.malformedLines;
    if (parsed.malformedLines > 0 && !malformedLogged_) {
        malformedLogged_ = true;
        report.warnings.push_back(procNetDev_ + ": skipped " + std::to_string(parsed.malformedLines) +
                                  " malformed line(s), the first: '" + parsed.firstMalformedLine +
                                  "' (further ones are only counted)");
    }

    std::map<std::string, Baseline> next;
    for (InterfaceCounters& now : parsed.interfaces) {
        if (!watched(now.name)) continue;
        auto found = state_.find(now.name);
        if (found == state_.end()) {
            report.notices.push_back("interface " + now.name + " found; its first read is a baseline");
            Baseline baseline;
            baseline.counters = std::move(now);
            baseline.monotonicSeconds = monotonicSeconds;
            next.emplace(baseline.counters.name, std::move(baseline));
            continue;
        }
        Baseline baseline = std::move(found->second);
        state_.erase(found);
        publishRates(now, monotonicSeconds, timestamp, baseline, out, report);
        baseline.counters = std::move(now);
        baseline.monotonicSeconds = monotonicSeconds;
        next.emplace(baseline.counters.name, std::move(baseline));
    }
    // What is left in state_ was not in this read.
    for (const auto& [name, baseline] : state_) {
        report.notices.push_back("interface " + name + " is gone; forgetting its counters");
    }
    state_ = std::move(next);
    return report;
}

void NetifCollector::publishRates(const InterfaceCounters& now, double monotonicSeconds, std::int64_t timestamp,
                                  Baseline& baseline, agent::Batch& out, CollectReport& report) {
    const double seconds = monotonicSeconds - baseline.monotonicSeconds;
    // Not a rate; the caller makes this read the new baseline.
    if (!(seconds > 0)) return;

    const InterfaceCounters& before = baseline.counters;
    std::string which;
    if (wentBack(before, now, which)) {
        report.warnings.push_back("interface " + now.name + ": " + which +
                                  " (reset, wrap or re-created); no rates this round, new baseline");
        return;
    }

    const double inBits = perSecond(before.rxBytes, now.rxBytes, seconds) * 8.0;
    const double outBits = perSecond(before.txBytes, now.txBytes, seconds) * 8.0;

    const LinkSpeed speed = readLinkSpeed(sysClassNet_, now.name);
    if (!speed.problem.empty() && !baseline.speedProblemLogged) {
        baseline.speedProblemLogged = true;
        report.warnings.push_back("interface " + now.name + ": " + speed.problem + "; speed treated as unknown");
    }
    if (speed.mbitPerSecond) {
        const double linkBits = *speed.mbitPerSecond * 1e6;
        if (inBits > kImpossibleSpeedFactor * linkBits || outBits > kImpossibleSpeedFactor * linkBits) {
            report.warnings.push_back("interface " + now.name + ": " + std::to_string(inBits) + " bit/s in, " +
                                      std::to_string(outBits) + " bit/s out on a " +
                                      std::to_string(*speed.mbitPerSecond) +
                                      " Mbit/s link cannot be real (a 32-bit counter wrapped?); "
                                      "no rates this round, new baseline");
            return;
        }
    }

    auto point = [&](const char* name, double value) {
        agent::Metric metric = agent::makePoint("", name, value, timestamp);
        metric.setTag("interface", now.name);
        out.push_back(std::move(metric));
    };
    point("net.in", inBits);
    point("net.out", outBits);
    point("net.in.packets", perSecond(before.rxPackets, now.rxPackets, seconds));
    point("net.out.packets", perSecond(before.txPackets, now.txPackets, seconds));
    point("net.in.errors", perSecond(before.rxErrors, now.rxErrors, seconds));
    point("net.out.errors", perSecond(before.txErrors, now.txErrors, seconds));
    point("net.in.dropped", perSecond(before.rxDropped, now.rxDropped, seconds));
    point("net.out.dropped", perSecond(before.txDropped, now.txDropped, seconds));
    if (speed.mbitPerSecond) {
        const double linkBits = *speed.mbitPerSecond * 1e6;
        point("net.speed", *speed.mbitPerSecond);
        point("net.in.percent", inBits * 100.0 / linkBits);
        point("net.out.percent", outBits * 100.0 / linkBits);
    }
}

} // namespace agent::netif
